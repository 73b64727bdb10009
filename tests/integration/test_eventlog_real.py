"""Event-log metrics from REAL Spark applications run in a subprocess (own SparkContext).

Oracles are independent of the code under test: bytes of the part files on disk, the row count
written, and the one failed attempt the job injects.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lakeshift.ops.eventlog import JobMetrics, advice, read_event_log

JOB = textwrap.dedent(
    """
    import sys
    from pyspark import TaskContext
    from pyspark.sql import SparkSession

    logs, out, compress = sys.argv[1], sys.argv[2], sys.argv[3]
    spark = (
        SparkSession.builder.master("local[2,2]")  # 2 threads, 2 attempts per task
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", logs)
        .config("spark.eventLog.compress", compress)
        .config("spark.executor.instances", "8")
        .config("spark.executor.cores", "4")
        .config("spark.sql.shuffle.partitions", "3")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )

    def fail_once(it):
        ctx = TaskContext.get()
        if ctx.partitionId() == 0 and ctx.attemptNumber() == 0:
            raise RuntimeError("injected failure")
        return it

    rdd = spark.sparkContext.parallelize(range(1000), 4).mapPartitions(fail_once)
    rdd.count()
    df = spark.range(20000).selectExpr("id % 7 AS k", "id AS v").groupBy("k").count()
    df.write.mode("overwrite").parquet(out)
    spark.stop()
    """
)


def _run(tmp_path: Path, compress: str) -> tuple[JobMetrics, Path, Path]:
    logs, out = tmp_path / "logs", tmp_path / "out"
    logs.mkdir()
    script = tmp_path / "job.py"
    script.write_text(JOB, encoding="utf-8")
    subprocess.run(
        [sys.executable, str(script), logs.as_uri(), str(out), compress],
        check=True,
        timeout=240,
        capture_output=True,
    )
    (log,) = list(logs.iterdir())
    return read_event_log(log), out, log


@pytest.mark.parametrize("compress", ["false", "true"])
def test_real_job_metrics(tmp_path: Path, compress: str) -> None:
    m, out, log = _run(tmp_path, compress)
    # Spark 4 writes rolling logs by default: a folder eventlog_v2_<app> of events_<n>_<app> files,
    # zstd-compressed (the default codec) when spark.eventLog.compress=true
    assert log.is_dir() and log.name.startswith("eventlog_v2_")
    suffixes = {p.suffix for p in log.glob("events_*")}
    assert suffixes == ({".zstd"} if compress == "true" else {""})
    written = sum(p.stat().st_size for p in out.glob("part-*"))
    assert m.output_bytes == written
    assert m.output_records == 7  # seven groups of id % 7
    assert m.failed_tasks == 1  # the one injected failure
    assert m.shuffle_write_bytes > 0 and m.shuffle_read_bytes > 0
    assert m.wall_seconds > 0 and m.task_seconds > 0
    assert m.slowest_stage is not None
    assert m.requested_executors == 8 and m.requested_cores == 4
    assert m.peak_executors == 1  # local mode: the driver is the one executor
    lines = advice(m)
    assert any("asked 8 executors x 4 cores, peak 1 alive" in line for line in lines)
    assert any("1 of" in line and "failed" in line for line in lines)
    assert JobMetrics.from_dict(m.to_dict()) == m
