"""`lakeshift copy` against real files and real Delta tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from lakeshift.cli import main
from lakeshift.copy import RewriteRule, TableCopy, copy_table
from tests.integration.copy_helpers import fingerprint, write_small_file_lake

KB = 1024


def _data_files(root: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(root).parts)
    ]


def test_small_file_lake_to_delta_is_compacted(spark, tmp_path: Path) -> None:
    src, dst = tmp_path / "lake", tmp_path / "delta"
    rows = write_small_file_lake(src, partitions=4, files_per_partition=500, rows_per_file=40)
    assert len(_data_files(src)) == 2000
    src_bytes = sum(p.stat().st_size for p in _data_files(src))
    table = TableCopy(
        source=str(src), target=str(dst), target_file_size="64KB", chunk_size=src_bytes * 5 // 8
    )
    result = copy_table(spark, table)

    totals = result.to_dict()["totals"]
    assert (totals["chunks"], totals["committed"], totals["files_in"]) == (2, 2, 2000)
    out = spark.read.format("delta").load(str(dst))
    assert out.count() == rows == 80_000
    assert fingerprint(out) == fingerprint(spark.read.parquet(str(src)))
    # compaction: the live files are bounded by output size / target (+1 partial file per
    # partition folder and chunk), whatever the input file count
    live = [Path(u.removeprefix("file:")) for u in out.inputFiles()]
    out_bytes = sum(p.stat().st_size for p in live)
    assert len(live) <= math.ceil(out_bytes / (64 * KB)) + 4 * 2, (len(live), out_bytes)
    assert sorted({p.parent.name for p in live}) == [
        "region=r0",
        "region=r1",
        "region=r2",
        "region=r3",
    ]
    assert max(p.stat().st_size for p in live) <= 2.5 * 64 * KB
    # a rerun of the same run skips every chunk and writes nothing
    again = copy_table(spark, table)
    assert [c.status for c in again.chunks] == ["skipped", "skipped"]
    assert spark.read.format("delta").load(str(dst)).count() == rows


def _make_source(spark, fmt: str, root: Path) -> None:
    from pyspark.sql import functions as F

    df = spark.range(0, 300, numPartitions=3).select(
        F.col("id"),
        F.concat(F.lit("k"), (F.col("id") % 5).cast("string")).alias("k"),
        (F.col("id") * 1.5).alias("x"),
        F.when(F.col("id") % 2 == 0, "2026-01-01").otherwise("2026-01-02").alias("dt"),
    )
    writer = df.write.partitionBy("dt")
    if fmt == "delta":
        writer.format("delta").save(str(root))
    elif fmt == "csv":
        writer.option("header", "true").csv(str(root))
    else:
        writer.format(fmt).save(str(root))


@pytest.mark.parametrize(
    ("fmt", "partition_by", "expected_dirs"),
    [
        ("csv", None, {"dt=2026-01-01", "dt=2026-01-02"}),
        ("json", None, {"dt=2026-01-01", "dt=2026-01-02"}),
        ("orc", ["k"], {f"k=k{i}" for i in range(5)}),
        ("delta", None, {"dt=2026-01-01", "dt=2026-01-02"}),
    ],
)
def test_formats_to_parquet(spark, tmp_path: Path, fmt: str, partition_by, expected_dirs) -> None:
    src, dst = tmp_path / f"src_{fmt}", tmp_path / "out"
    _make_source(spark, fmt, src)
    table = TableCopy(
        source=f"{fmt}:{src}",
        target=str(dst),
        format="parquet",
        partition_by=partition_by,
        chunk_size="2KB",
        target_file_size="64KB",
    )
    result = copy_table(spark, table)
    assert result.count("committed") == len(result.chunks) >= 2
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true")
    expected = reader.load(str(src))
    got = spark.read.parquet(str(dst))
    assert got.count() == 300
    assert fingerprint(got.select(*expected.columns)) == fingerprint(expected)
    assert {p.name for p in dst.iterdir() if not p.name.startswith(("_", "."))} == expected_dirs
    # nothing left in staging, one ledger record per chunk
    run = dst / "_lakeshift" / "runs" / result.run_id
    assert sorted(p.name for p in (run / "ledger").glob("c*.json")) == [
        f"{c.chunk}.json" for c in result.chunks
    ]
    assert not any((dst / "_lakeshift" / "staging").rglob("*.parquet"))


def test_include_exclude_rewrite_register(spark, tmp_path: Path) -> None:
    src = tmp_path / "lake"
    write_small_file_lake(src, partitions=3, files_per_partition=2, rows_per_file=10)
    table = TableCopy(
        source=f"parquet:{src}",
        target="virtual://old/events",
        include=["region=r[01]"],
        exclude=["region=r1/part-00001.parquet"],
        rewrite=[RewriteRule.parse(f"virtual://old/={tmp_path}/new/")],
        register_table="copytest.events",
    )
    result = copy_table(spark, table)
    assert result.target == f"file:{tmp_path}/new/events"
    got = spark.table("copytest.events")
    # r0: 2 files, r1: 1 file (one excluded), r2 not included; 10 rows a file
    assert got.count() == 30
    assert sorted(r[0] for r in got.groupBy("region").count().orderBy("region").collect()) == [
        "r0",
        "r1",
    ]


def test_dry_run_prints_plan_and_writes_nothing(spark, tmp_path: Path, capsys) -> None:
    src, dst = tmp_path / "lake", tmp_path / "never"
    write_small_file_lake(src, partitions=3, files_per_partition=4, rows_per_file=5)
    summary = tmp_path / "plan.json"
    code = main(
        ["copy", str(src), str(dst), "--dry-run", "--chunk-size", "4KB", "--json", str(summary)]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "12 files" in out and "c00001:" in out and "dry run, nothing written" in out
    assert not dst.exists()
    data = json.loads(summary.read_text())["tables"][0]
    assert data["dry_run"] is True
    assert {c["status"] for c in data["chunks"]} == {"planned"}
    assert sum(c["files_in"] for c in data["chunks"]) == 12


def test_python_murmur3_matches_spark_hash(spark) -> None:
    from lakeshift.copy.plan import spark_hash_int

    values = [0, 1, -1, 42, 123456, 2**31 - 1, -(2**31)]
    got = spark.sql("SELECT " + ", ".join(f"hash(CAST({v} AS INT))" for v in values)).first()
    assert list(got) == [spark_hash_int(v) for v in values]
