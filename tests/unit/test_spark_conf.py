"""The session builder's configuration (no JVM needed) and the source factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.errors import ConfigError, SourceError, UsageError
from lakeshift.sources import from_spec
from lakeshift.sources.lake import LakeSource
from lakeshift.spark import SparkProfile, maven_coordinates, spark_conf


def test_delta_and_utc_always_set() -> None:
    conf = spark_conf(SparkProfile(master="yarn", jars="cluster"))
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"].endswith("DeltaCatalog")
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert "-Duser.timezone=UTC" in conf["spark.executor.extraJavaOptions"]
    assert "spark.jars" not in conf
    assert "spark.jars.packages" not in conf
    assert "spark.sql.shuffle.partitions" not in conf  # clusters keep their own


def test_local_jar_folder_used_when_present(tmp_path: Path) -> None:
    (tmp_path / "b.jar").write_bytes(b"")
    (tmp_path / "a.jar").write_bytes(b"")
    conf = spark_conf(SparkProfile(master="local[2]", jars_dir=str(tmp_path)))
    assert conf["spark.jars"] == f"{tmp_path}/a.jar,{tmp_path}/b.jar"
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert conf["spark.ui.enabled"] == "false"


def test_packages_from_pom_when_no_jar_folder(tmp_path: Path) -> None:
    conf = spark_conf(SparkProfile(master="local[1]", jars_dir=str(tmp_path / "none")))
    packages = conf["spark.jars.packages"].split(",")
    assert "io.delta:delta-spark_4.2_2.13:4.4.0" in packages
    assert any(p.startswith("org.postgresql:postgresql:") for p in packages)


def test_local_mode_requires_jars(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no jars in"):
        spark_conf(SparkProfile(master="local[1]", jars="local", jars_dir=str(tmp_path)))


def test_user_conf_wins() -> None:
    conf = spark_conf(
        SparkProfile(master="local[1]", jars="cluster", conf={"spark.sql.shuffle.partitions": "3"})
    )
    assert conf["spark.sql.shuffle.partitions"] == "3"


def test_pom_coordinates_match_python_pins() -> None:
    coords = maven_coordinates()
    import importlib.metadata as md

    delta_py = md.version("delta-spark")
    pyspark = md.version("pyspark")
    major_minor = ".".join(pyspark.split(".")[:2])
    assert f"io.delta:delta-spark_{major_minor}_2.13:{delta_py}" in coords


@pytest.mark.parametrize(
    ("spec", "fmt", "path"),
    [
        ("delta:/lake/t", "delta", "/lake/t"),
        ("parquet:s3a://bucket/t", "parquet", "s3a://bucket/t"),
        ("csv:/raw/x.csv", "csv", "/raw/x.csv"),
        ("orc:hdfs://nn:8020/t", "orc", "hdfs://nn:8020/t"),
        ("s3a://bucket/t", "parquet", "s3a://bucket/t"),
        ("/plain/path", "parquet", "/plain/path"),
    ],
)
def test_from_spec(spec: str, fmt: str, path: str) -> None:
    src = from_spec(spec)
    assert isinstance(src, LakeSource)
    assert (src.format, src.path) == (fmt, path)


def test_from_spec_guesses_delta(tmp_path: Path) -> None:
    (tmp_path / "_delta_log").mkdir()
    src = from_spec(str(tmp_path))
    assert isinstance(src, LakeSource)
    assert src.format == "delta"


def test_from_spec_errors() -> None:
    with pytest.raises(UsageError, match="unknown source scheme 'avrox'"):
        from_spec("avrox:/x")
    with pytest.raises(UsageError, match="empty"):
        from_spec("")
    with pytest.raises(SourceError, match="unknown source format 'xls'"):
        LakeSource("xls", "/x")
