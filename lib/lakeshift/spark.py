"""Spark session builder shared by entry points, tests, local runs and cluster profiles.

Nothing here runs at import time. Entry points call :func:`session` (a context manager that stops
only a session it created); library functions take ``spark: SparkSession`` as an argument.

Jars (Delta, JDBC drivers, MongoDB connector) are declared once in ``conf/jars/pom.xml``.
``jars="auto"`` (the default) uses the Maven-resolved folder ``.jars/`` when it holds jars,
otherwise ``spark.jars.packages`` built from the same pom; ``jars="cluster"`` adds nothing
(the cluster image or ``--packages`` provides them).

Example:
    >>> from lakeshift.spark import SparkProfile, session
    >>> with session(SparkProfile(master="local[2]")) as spark:  # doctest: +SKIP
    ...     spark.range(3).count()
    3
"""

from __future__ import annotations

import logging
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from lakeshift.config.base import StrictModel
from lakeshift.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}

JarsMode = Literal["auto", "local", "packages", "cluster"]


class SparkProfile(StrictModel):
    """How to build a session. Every field maps to Spark configuration.

    Attributes:
        master: Spark master URL; ``None`` leaves it to spark-submit or the environment.
        app_name: application name shown in the Spark UI and cluster managers.
        jars: where the JVM jars come from (see the module docstring).
        jars_dir: the Maven-resolved jar folder (default ``$LAKESHIFT_JARS_DIR`` or ``.jars/``).
        shuffle_partitions: ``spark.sql.shuffle.partitions``; ``None`` keeps Spark's value on
            clusters and uses a small number for ``local`` masters.
        ui: whether to start the Spark UI.
        conf: any further Spark configuration.
    """

    master: str | None = None
    app_name: str = "lakeshift"
    jars: JarsMode = "auto"
    jars_dir: str | None = None
    shuffle_partitions: int | None = Field(default=None, ge=1)
    ui: bool | None = None
    conf: dict[str, str] = Field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        """True for ``local``/``local[n]`` masters."""
        return (self.master or os.environ.get("MASTER", "")).startswith("local")


def sql_string(text: str) -> str:
    """``text`` as a Spark SQL string literal (quotes and backslashes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_name(name: str) -> str:
    """A column, field or path name as one quoted Spark SQL identifier (any characters)."""
    return "`" + name.replace("`", "``") + "`"


def jars_dir(profile: SparkProfile | None = None) -> Path:
    """The folder that holds Maven-resolved jars."""
    if profile is not None and profile.jars_dir:
        return Path(profile.jars_dir)
    env = os.environ.get("LAKESHIFT_JARS_DIR")
    return Path(env) if env else REPO_ROOT / ".jars"


def pom_path() -> Path:
    """The single list of jar coordinates (``conf/jars/pom.xml``)."""
    env = os.environ.get("LAKESHIFT_JARS_POM")
    return Path(env) if env else REPO_ROOT / "conf" / "jars" / "pom.xml"


def maven_coordinates(pom: Path | None = None) -> list[str]:
    """Read ``group:artifact:version`` coordinates from the jars pom.

    Raises:
        ConfigError: the pom is missing or malformed.
    """
    path = pom or pom_path()
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"{path}: cannot read jar coordinates: {exc}") from exc
    coords = []
    for dep in root.iterfind("m:dependencies/m:dependency", POM_NS):
        parts = [
            dep.findtext(f"m:{tag}", default="", namespaces=POM_NS)
            for tag in ("groupId", "artifactId", "version")
        ]
        if not all(parts):
            raise ConfigError(f"{path}: a dependency lacks groupId, artifactId or version")
        coords.append(":".join(p.strip() for p in parts))
    return coords


def _jar_conf(profile: SparkProfile) -> dict[str, str]:
    mode = profile.jars
    if mode == "cluster":
        return {}
    folder = jars_dir(profile)
    jars = sorted(folder.glob("*.jar")) if folder.is_dir() else []
    if mode == "local" and not jars:
        raise ConfigError(
            f"spark.jars: no jars in {folder}; run `make setup` (Maven resolves them)"
        )
    if jars and mode in ("auto", "local"):
        return {"spark.jars": ",".join(str(j) for j in jars)}
    if mode in ("auto", "packages") and pom_path().is_file():
        return {"spark.jars.packages": ",".join(maven_coordinates())}
    if mode == "packages":
        raise ConfigError(f"spark.jars.packages: jar list {pom_path()} not found")
    return {}


def spark_conf(profile: SparkProfile) -> dict[str, str]:
    """All Spark settings for ``profile``: Delta, jars, UTC, local defaults, then ``conf``."""
    conf: dict[str, str] = {
        "spark.app.name": profile.app_name,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
    }
    if profile.master:
        conf["spark.master"] = profile.master
    conf.update(_jar_conf(profile))
    if profile.is_local:
        conf.update(
            {
                "spark.sql.shuffle.partitions": str(profile.shuffle_partitions or 8),
                "spark.default.parallelism": str(max(2, os.cpu_count() or 2)),
                "spark.databricks.delta.snapshotPartitions": "2",
                "spark.ui.enabled": "true" if profile.ui else "false",
                "spark.ui.showConsoleProgress": "false",
                "spark.driver.memory": os.environ.get("LAKESHIFT_DRIVER_MEMORY", "4g"),
                # executors in local mode run this interpreter (same venv, same packages)
                "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
                "spark.pyspark.driver.python": sys.executable,
            }
        )
    else:
        if profile.shuffle_partitions:
            conf["spark.sql.shuffle.partitions"] = str(profile.shuffle_partitions)
        if profile.ui is not None:
            conf["spark.ui.enabled"] = str(profile.ui).lower()
    conf.update(profile.conf)
    return conf


def configure(
    builder: SparkSession.Builder, profile: SparkProfile | None = None
) -> SparkSession.Builder:
    """Apply lakeshift's settings to a ``SparkSession.builder`` and return it.

    Like Delta's ``configure_spark_with_delta_pip(builder)``: tests, local runs and cluster
    profiles share this one definition.
    """
    for key, value in spark_conf(profile or SparkProfile()).items():
        builder = builder.config(key, value)
    return builder


def get_or_create(profile: SparkProfile | None = None) -> tuple[SparkSession, bool]:
    """Return ``(spark, created)``: the active session if there is one, else a new one."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    prof = profile or SparkProfile()
    if prof.is_local:
        # A session started in-process reads the executors' interpreter from the environment,
        # not from spark.pyspark.python: point it at this interpreter (same venv, same packages)
        # so mapInArrow/mapPartitions code can import lakeshift.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = configure(SparkSession.builder, prof).getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("LAKESHIFT_SPARK_LOG_LEVEL", "ERROR"))
    log.debug("started Spark %s (master %s)", spark.version, spark.sparkContext.master)
    return spark, True


@contextmanager
def session(profile: SparkProfile | None = None) -> Iterator[SparkSession]:
    """A session for an entry point; stopped on exit only if this call created it."""
    spark, created = get_or_create(profile)
    try:
        yield spark
    finally:
        if created:
            spark.stop()
