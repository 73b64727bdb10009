"""Crash and resume of `lakeshift copy` as a real subprocess: no row lost, none duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.copy_helpers import fingerprint, write_small_file_lake

pytestmark = pytest.mark.slow


def _cmd(src: Path, dst: Path, fmt: str, chunk: int, summary: Path | None = None) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "lakeshift.cli",
        "copy",
        str(src),
        str(dst),
        "--format",
        fmt,
        "--chunk-size",
        str(chunk),
        "--target-file-size",
        "64KB",
        "--run-id",
        "e2e-run",
        "--master",
        "local[2]",
        "--no-progress",
        "--spark-conf",
        "spark.sql.shuffle.partitions=4",
    ]
    if summary is not None:
        cmd += ["--json", str(summary)]
    return cmd


def _lake(tmp_path: Path) -> tuple[Path, int, int]:
    src = tmp_path / "lake"
    rows = write_small_file_lake(src, partitions=4, files_per_partition=6, rows_per_file=50)
    one_partition = sum(p.stat().st_size for p in (src / "region=r0").glob("*.parquet"))
    return src, rows, one_partition + one_partition // 4  # one partition per chunk: 4 chunks


def _committed(ledger: Path) -> list[str]:
    return sorted(p.name for p in ledger.glob("c*.json") if not p.name.endswith(".moving.json"))


def _check_target(spark, src: Path, dst: Path, fmt: str, rows: int) -> None:
    got = spark.read.format(fmt).load(str(dst))
    assert got.count() == rows
    assert got.select("id").distinct().count() == rows  # no duplicates
    assert fingerprint(got) == fingerprint(spark.read.parquet(str(src)))


def test_sigkill_after_a_committed_chunk_then_resume(spark, tmp_path: Path) -> None:
    src, rows, chunk = _lake(tmp_path)
    dst = tmp_path / "delta"
    ledger = dst / "_lakeshift" / "runs" / "e2e-run" / "ledger"
    env = {**os.environ, "LAKESHIFT_COPY_TEST_SLEEP": "60"}
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(
        _cmd(src, dst, "delta", chunk),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 480
        while not _committed(ledger) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _committed(ledger) == ["c00001.json"], (tmp_path / "first.log").read_text()[-2000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the CLI and its JVM
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert spark.read.format("delta").load(str(dst)).count() == 50 * 6  # exactly chunk 1

    summary = tmp_path / "summary.json"
    rerun = subprocess.run(
        _cmd(src, dst, "delta", chunk, summary),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    table = json.loads(summary.read_text())["tables"][0]
    assert [c["status"] for c in table["chunks"]] == [
        "skipped",
        "committed",
        "committed",
        "committed",
    ]
    assert table["resumed"] is True
    assert table["totals"]["rows_written"] == rows - 300
    assert _committed(ledger) == [f"c0000{i}.json" for i in range(1, 5)]
    _check_target(spark, src, dst, "delta", rows)


def test_parquet_crash_between_move_and_record_rolls_forward(spark, tmp_path: Path) -> None:
    src, rows, chunk = _lake(tmp_path)
    dst = tmp_path / "pq"
    env = {**os.environ, "LAKESHIFT_COPY_TEST_CRASH_BEFORE_RECORD": "c00002"}
    first = subprocess.run(
        _cmd(src, dst, "parquet", chunk),
        env=env,
        capture_output=True,
        check=False,
        text=True,
        timeout=600,
        start_new_session=True,
    )
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    ledger = dst / "_lakeshift" / "runs" / "e2e-run" / "ledger"
    assert _committed(ledger) == ["c00001.json"]
    assert (ledger / "c00002.moving.json").exists()

    summary = tmp_path / "summary.json"
    rerun = subprocess.run(
        _cmd(src, dst, "parquet", chunk, summary),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    table = json.loads(summary.read_text())["tables"][0]
    assert [c["status"] for c in table["chunks"]] == [
        "skipped",
        "skipped",
        "committed",
        "committed",
    ]
    _check_target(spark, src, dst, "parquet", rows)
    assert not (dst / "_lakeshift" / "staging" / "e2e-run").exists()


def test_changed_plan_is_refused(spark, tmp_path: Path) -> None:
    src, _, chunk = _lake(tmp_path)
    dst = tmp_path / "delta"
    from lakeshift.cli import main

    base = [
        "copy",
        str(src),
        str(dst),
        "--run-id",
        "same",
        "--chunk-size",
        str(chunk),
        "--no-progress",
    ]
    assert main([*base, "--include", "region=r0"]) == 0
    assert main([*base, "--include", "region=r[01]"]) == 2  # same run id, different inputs
    assert spark.read.format("delta").load(str(dst)).count() == 300
