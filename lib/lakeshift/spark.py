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
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from lakeshift.config.base import StrictModel
from lakeshift.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}

JarsMode = Literal["auto", "local", "packages", "cluster"]

S3_SCHEMES = ("s3", "s3a", "s3n")
#: The class that serves ``s3a://`` (and ``s3://``, mapped to it) in Spark's Hadoop client.
S3A_CLASS = "org.apache.hadoop.fs.s3a.S3AFileSystem"
#: What to install when it is missing (one line, for error messages).
S3A_HINT = (
    "the S3A connector (org.apache.hadoop:hadoop-aws, pom profile s3 in conf/jars/pom.xml) is "
    "not installed: run `make setup` (or `--jars packages`, or put it in the cluster's image)"
)


class S3Settings(StrictModel):
    """How Spark's S3A client reaches S3. Credentials never live here (environment/AWS chain).

    Attributes:
        endpoint: endpoint URL such as ``http://127.0.0.1:8333`` (default: the environment's
            ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, else AWS itself).
        region: signing region (default: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``).
        path_style: path-style requests (default: on for a custom endpoint, off for AWS).
        map_s3: serve ``s3://`` and ``s3n://`` with S3A too (off on EMR, where EMRFS serves them).
    """

    endpoint: str | None = None
    region: str | None = None
    path_style: bool | None = None
    map_s3: bool = True

    def hadoop_conf(self) -> dict[str, str]:
        """``spark.hadoop.fs.s3a.*`` settings (empty values left to S3A's defaults)."""
        conf: dict[str, str] = {}
        if self.map_s3:
            for scheme in ("s3", "s3n"):
                conf[f"spark.hadoop.fs.{scheme}.impl"] = S3A_CLASS
                conf[f"spark.hadoop.fs.AbstractFileSystem.{scheme}.impl"] = (
                    "org.apache.hadoop.fs.s3a.S3A"
                )
        endpoint = (
            self.endpoint
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if endpoint:
            conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
                endpoint.startswith("https://")
            ).lower()
        path_style = self.path_style if self.path_style is not None else bool(endpoint)
        if path_style:
            conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        if region:
            conf["spark.hadoop.fs.s3a.endpoint.region"] = region
        return conf


def metastore_conf(metastore: str | None) -> dict[str, str]:
    """Spark settings for a persistent Hive metastore (``None``: Spark's in-memory catalog).

    ``thrift://host:port[,…]`` uses a running metastore service; anything else is a folder that
    holds an embedded Derby metastore (``DIR/metastore_db``) and the warehouse
    (``DIR/warehouse``). Embedded Derby serves one JVM at a time: concurrent jobs (the
    coordinator's) need a metastore service.

    Example:
        >>> metastore_conf("thrift://hms:9083")["spark.hadoop.hive.metastore.uris"]
        'thrift://hms:9083'
    """
    if not metastore:
        return {}
    conf = {"spark.sql.catalogImplementation": "hive"}
    if metastore.startswith("thrift://"):
        conf["spark.hadoop.hive.metastore.uris"] = metastore
        return conf
    folder = Path(metastore).expanduser().resolve()
    conf.update(
        {
            "spark.hadoop.javax.jdo.option.ConnectionURL": (
                f"jdbc:derby:;databaseName={folder / 'metastore_db'};create=true"
            ),
            "spark.hadoop.datanucleus.schema.autoCreateAll": "true",
            "spark.hadoop.hive.metastore.schema.verification": "false",
            "spark.sql.warehouse.dir": str(folder / "warehouse"),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={folder}",
        }
    )
    return conf


def describe_metastore(metastore: str | None) -> str:
    """Where tables get registered, in words (for stdout)."""
    if not metastore:
        return "Spark's in-memory catalog (not persisted; pass --metastore DIR|thrift://…)"
    if metastore.startswith("thrift://"):
        return f"the Hive metastore at {metastore}"
    return f"the Hive metastore in {Path(metastore).expanduser().resolve()} (embedded Derby)"


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
        s3: how S3A reaches S3 (endpoint, region, path style); credentials from the environment.
        metastore: a persistent Hive metastore, see :func:`metastore_conf` (default
            ``$LAKESHIFT_METASTORE``, else Spark's in-memory catalog).
        event_log: a folder for Spark event logs (``spark.eventLog.*``); ``None``: off.
        conf: any further Spark configuration.
    """

    master: str | None = None
    app_name: str = "lakeshift"
    jars: JarsMode = "auto"
    jars_dir: str | None = None
    shuffle_partitions: int | None = Field(default=None, ge=1)
    ui: bool | None = None
    s3: S3Settings = Field(default_factory=S3Settings)
    metastore: str | None = None
    event_log: str | None = None
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


def col(name: str, *fields: str) -> Column:
    """The column ``name`` (or its nested field ``fields[0]``, …), whatever characters they hold.

    ``F.col("a.b")`` means field ``b`` of a struct ``a``, and ``F.col(f"`{name}`")`` breaks on a
    name holding a backtick; every part here is quoted with :func:`sql_name`.

    Example:
        >>> df.select(col("we`ird"), col("a.b"), col("s", "x y"))  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    return F.col(".".join(sql_name(n) for n in (name, *fields)))


def jars_dir(profile: SparkProfile | None = None) -> Path:
    """The folder that holds Maven-resolved jars."""
    if profile is not None and profile.jars_dir:
        return Path(profile.jars_dir)
    env = os.environ.get("LAKESHIFT_JARS_DIR")
    return Path(env) if env else REPO_ROOT / ".jars"


def classpath_jars(profile: SparkProfile | None = None) -> list[Path]:
    """Jars that go on the JVM class path instead of ``spark.jars`` (``.jars/s3/``: S3A).

    They are links into the local Maven repository, too big to ship to every executor
    (the AWS SDK bundle is ~690 MB); executors on this machine (local, standalone, the mini
    YARN cluster) read them in place.
    """
    folder = jars_dir(profile) / "s3"
    return sorted(p for p in folder.glob("*.jar") if p.exists()) if folder.is_dir() else []


def classpath_conf(profile: SparkProfile | None = None) -> dict[str, str]:
    """``spark.{driver,executor}.extraClassPath`` holding :func:`classpath_jars`.

    Values the profile already sets are kept, the jars appended. spark-submit callers must pass
    these on the command line: a driver's class path is fixed when its JVM starts.
    """
    extra = ":".join(str(j) for j in classpath_jars(profile))
    if not extra:
        return {}
    given = profile.conf if profile is not None else {}
    return {
        key: ":".join(x for x in (given.get(key), extra) if x)
        for key in ("spark.driver.extraClassPath", "spark.executor.extraClassPath")
    }


def s3_connector_available(profile: SparkProfile | None = None) -> bool:
    """Whether a session built from ``profile`` can serve ``s3a://``.

    ``cluster`` and ``packages`` jars are trusted to bring it (the image, or Maven at start).
    """
    mode = profile.jars if profile is not None else "auto"
    if mode in ("cluster", "packages"):
        return True
    if any(p.name.startswith("hadoop-aws-") for p in classpath_jars(profile)):
        return True
    folder = jars_dir(profile)
    return folder.is_dir() and any(folder.glob("hadoop-aws-*.jar"))


def check_filesystems(profile: SparkProfile | None, locations: Iterable[str | None]) -> None:
    """Fail early, in one line, when a location needs a connector the session will not have.

    Raises:
        ConfigError: an ``s3``/``s3a``/``s3n`` location without the S3A connector.
    """
    for loc in locations:
        if not loc:
            continue
        path = loc.split(":", 1)[1] if re.match(r"^[a-z]+:(?!//)", loc) else loc
        scheme = path.split("://", 1)[0].lower() if "://" in path else ""
        if scheme in S3_SCHEMES and not s3_connector_available(profile):
            raise ConfigError(f"{loc}: {S3A_HINT}")


def friendly_java_error(exc: BaseException) -> ConfigError | None:
    """A one-line :class:`ConfigError` for JVM errors that mean "a connector is missing"."""
    text = str(exc)
    if "ClassNotFoundException" in text and "S3AFileSystem" in text:
        return ConfigError(S3A_HINT)
    m = re.search(r'No FileSystem for scheme "?([A-Za-z0-9+.-]+)"?', text)
    if m:
        scheme = m.group(1)
        hint = S3A_HINT if scheme.lower() in S3_SCHEMES else "no Hadoop connector serves it"
        return ConfigError(f"{scheme}:// paths: {hint}")
    return None


def pom_path() -> Path:
    """The single list of jar coordinates (``conf/jars/pom.xml``)."""
    env = os.environ.get("LAKESHIFT_JARS_POM")
    return Path(env) if env else REPO_ROOT / "conf" / "jars" / "pom.xml"


def maven_coordinates(pom: Path | None = None, profiles: Iterable[str] = ()) -> list[str]:
    """Read ``group:artifact:version`` coordinates from the jars pom (and named profiles).

    Raises:
        ConfigError: the pom is missing or malformed.
    """
    path = pom or pom_path()
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"{path}: cannot read jar coordinates: {exc}") from exc
    coords = []
    deps = list(root.iterfind("m:dependencies/m:dependency", POM_NS))
    for prof in root.iterfind("m:profiles/m:profile", POM_NS):
        if prof.findtext("m:id", default="", namespaces=POM_NS) in set(profiles):
            deps += list(prof.iterfind("m:dependencies/m:dependency", POM_NS))
    for dep in deps:
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
        return {"spark.jars": ",".join(str(j) for j in jars), **classpath_conf(profile)}
    if mode in ("auto", "packages") and pom_path().is_file():
        return {"spark.jars.packages": ",".join(maven_coordinates(profiles=("s3",)))}
    if mode == "packages":
        raise ConfigError(f"spark.jars.packages: jar list {pom_path()} not found")
    return {}


def event_log_conf(folder: str) -> dict[str, str]:
    """The Spark conf that writes an event log into ``folder`` (one file or folder per app).

    Example:
        >>> event_log_conf("/tmp/ev")["spark.eventLog.enabled"]
        'true'
    """
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": folder}


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
    conf.update(profile.s3.hadoop_conf())
    for key, value in metastore_conf(profile.metastore).items():
        joined = f"{conf.get(key, '')} {value}".strip() if key.endswith("JavaOptions") else value
        conf[key] = joined
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
    if profile.event_log:
        conf.update(event_log_conf(profile.event_log))
    conf.update(profile.conf)
    if profile.jars in ("auto", "local"):
        conf.update(classpath_conf(profile))  # after conf: the profile's own entries are kept
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
