"""Catalog tables in a persistent Hive metastore (Spark's Hive support, embedded Derby).

Through the real command line, each step its own process (as a scheduler would run them): a
Hive-partitioned Parquet table is registered, copied to Delta by ``lakeshift copy``, switched,
rolled back and finalized; an unchanged reader job (plain pyspark, ``spark.table(NAME)``) sees the
old data, then the new, then the old again. Bad requests change nothing and exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeshift.spark import SparkProfile, spark_conf
from tests.cli import lakeshift, reader_output, spark_submit

pytestmark = pytest.mark.slow

READER = Path(__file__).parent / "jobs" / "table_reader.py"


def _old_lake(root: Path) -> None:
    """3 Hive partitions (dt=…), 4 rows each, marker 'old'."""
    for d in range(3):
        folder = root / f"dt=2026-01-0{d + 1}"
        folder.mkdir(parents=True)
        pq.write_table(
            pa.table({"id": list(range(d * 4, d * 4 + 4)), "marker": ["old"] * 4}),
            folder / "part-0.parquet",
        )


def _read(metastore: Path, name: str) -> dict[str, object]:
    conf = spark_conf(SparkProfile(master="local[1]", metastore=str(metastore)))
    return reader_output(spark_submit(READER, "table", name, "marker", conf=conf))


def test_register_switch_rollback_finalize(spark, tmp_path: Path) -> None:
    old, new, ms = tmp_path / "old", tmp_path / "new", tmp_path / "metastore"
    _old_lake(old)
    m = ["--metastore", str(ms)]

    out = lakeshift("catalog", "register", "db.sales", str(old), "--format", "parquet", *m)
    assert f"registered db.sales in the Hive metastore in {ms} (embedded Derby)" in out.stdout
    assert "parquet at file:" in out.stdout and "3 partitions" in out.stdout

    # the copy is a real lakeshift copy to Delta; one row is added to the copy afterwards so that
    # the reader can tell the two apart
    lakeshift("copy", f"parquet:{old}", str(new), "--format", "delta", "--no-progress", *m)
    from pyspark.sql import functions as F

    one = spark.read.format("delta").load(str(new)).limit(1)
    one.withColumn("id", F.lit(99).cast("long")).withColumn("marker", F.lit("new")).write.format(
        "delta"
    ).mode("append").save(str(new))

    before = _read(ms, "db.sales")
    assert before["count"] == 12 and before["values"] == ["old"]

    res = tmp_path / "switch.json"
    out = lakeshift(
        "catalog",
        "switch",
        "db.sales",
        "--to",
        str(new),
        "--format",
        "delta",
        "--json",
        str(res),
        *m,
    )
    assert "switched db.sales" in out.stdout and "(was parquet at file:" in out.stdout
    record = json.loads(res.read_text())
    assert record["before"]["partitions"] == 3 and record["after"]["provider"] == "delta"
    assert record["backup"] == "db.sales__lakeshift_old"

    after = _read(ms, "db.sales")
    assert after["count"] == 13 and after["values"] == ["new", "old"]
    assert all("/new/" in f for f in after["files"])  # type: ignore[union-attr]

    # a second switch is a no-op; a switch of a missing table changes nothing, exit 2
    again = lakeshift("catalog", "switch", "db.sales", "--to", str(new), "--format", "delta", *m)
    assert "already on the target" in again.stdout
    bad = lakeshift("catalog", "switch", "db.nope", "--to", str(new), *m, expect=2)
    assert [ln for ln in bad.stderr.splitlines() if ln.startswith("lakeshift")] == [
        "lakeshift catalog: error: cannot switch db.nope: no such table in the catalog"
    ]

    lakeshift("catalog", "rollback", "db.sales", *m)
    back = _read(ms, "db.sales")
    assert back["count"] == 12 and back["values"] == ["old"]
    # registering the name over another location is refused, and changes nothing
    taken = lakeshift(
        "catalog", "register", "db.sales", str(new), "--format", "delta", *m, expect=2
    )
    assert f"db.sales already exists at file:{old}" in taken.stderr
    shown = lakeshift("catalog", "show", "db.sales", *m)
    assert f"parquet at file:{old}, 3 partitions" in shown.stdout

    lakeshift("catalog", "switch", "db.sales", "--to", str(new), "--format", "delta", *m)
    out = lakeshift("catalog", "finalize", "db.sales", *m)
    assert "dropped db.sales__lakeshift_old" in out.stdout
    gone = lakeshift("catalog", "rollback", "db.sales", *m, expect=2)
    assert "no earlier definition (db.sales__lakeshift_old) is kept" in gone.stderr
    assert sorted(p.name for p in old.iterdir()) == [f"dt=2026-01-0{d}" for d in (1, 2, 3)]


def test_in_memory_catalog_says_so(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _old_lake(src)
    out = lakeshift(
        "copy",
        f"parquet:{src}",
        str(tmp_path / "dst"),
        "--register-table",
        "db.t",
        "--no-progress",
        env={"LAKESHIFT_METASTORE": ""},
    )
    assert "registered db.t in Spark's in-memory catalog (not persisted" in out.stdout
    assert sys.executable  # the child ran this venv
