"""Live sync end to end: a writer process changes the source while the bulk copy and the sync
run; a sync process is killed with SIGKILL mid-batch and resumed; after a final catch-up the
target equals the source.

Delta path: CDF-enabled Delta source → Delta target (bulk = plain Spark copy of the snapshot at
the start version); the writer runs as a thread on the test's own Spark session (the same
INSERT / UPDATE / DELETE / MERGE commits as ``sync_writer.py delta``, without a second JVM start:
the test's cost), concurrently with the bulk copy and the sync; the sync is a separate process,
killed with SIGKILL while its batch is pending. MongoDB path: recorded change events in the
documented change-stream shape (FerretDB, which runs here, has no change streams) replayed from
Extended JSON files while a writer process adds files, applied by the continuous (Structured
Streaming) mode.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from lakeshift.changeframe import live_rows
from lakeshift.config.base import validate_model
from lakeshift.sources.changes import delta_latest_version
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig
from lakeshift.sync.state import SyncState
from tests.e2e.sync_writer import delta_round
from tests.integration.sync_helpers import COLUMNS, expected_state, make_events, write_events

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "tests" / "e2e" / "sync_writer.py"
pytestmark = pytest.mark.slow


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'lib'}"
    env["LAKESHIFT_DRIVER_MEMORY"] = "1g"
    env["PYSPARK_PYTHON"] = sys.executable
    return env


def _fingerprint(df):
    """count + sums of 32-bit halves of two seeded 64-bit row hashes (independent of lakeshift)."""
    from pyspark.sql import functions as F

    cols = [F.col(c) for c in sorted(df.columns)]
    h1, h2 = F.xxhash64(F.lit(1), *cols), F.xxhash64(F.lit(2), *cols)
    parts = [F.sum(F.shiftrightunsigned(h, 32)) for h in (h1, h2)] + [
        F.sum(h.bitwiseAND(F.lit(0xFFFFFFFF))) for h in (h1, h2)
    ]
    return tuple(df.agg(F.count(F.lit(1)), *parts).first())


def _equal(spark, left, right, keys):
    try:
        from lakeshift.validate import compare
    except ImportError:
        compare = None
    if compare is not None:
        return compare(left, right, keys=keys).passed
    return _fingerprint(left) == _fingerprint(right)


def test_delta_cdf_live_sync_with_sigkill(spark, tmp_path):
    src, tgt = str(tmp_path / "src"), str(tmp_path / "tgt")
    spark.range(0, 300).selectExpr(
        "id", "concat('n', id) AS name", "CAST(id % 50 AS DOUBLE) AS amount"
    ).write.format("delta").option("delta.enableChangeDataFeed", "true").save(src)
    conf = {
        "name": "orders",
        "keys": ["id"],
        "state_dir": str(tmp_path / "state"),
        "source": {"kind": "delta_cdf", "path": src, "max_versions_per_batch": 4},
        "target": {"kind": "delta", "path": tgt},
    }
    cfg_file = tmp_path / "sync.yaml"
    cfg_file.write_text(yaml.safe_dump(conf))
    cfg = validate_model(SyncConfig, conf, str(cfg_file))
    start = engine.record_start_point(spark, cfg)["version"]

    failures: list[BaseException] = []

    def write() -> None:
        try:
            for k in (1, 2):
                delta_round(spark, src, k)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    writer = threading.Thread(target=write, name="sync-writer", daemon=True)
    writer.start()
    try:
        # bulk copy of the snapshot at the start version, while the writer commits
        deadline = time.monotonic() + 240
        while delta_latest_version(spark, src) < start + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        spark.read.format("delta").option("versionAsOf", start).load(src).write.format(
            "delta"
        ).save(tgt)

        # a sync process, killed with SIGKILL in the middle of a batch
        state = SyncState(cfg.state_dir, cfg.name)
        sync = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lakeshift.cli",
                "sync",
                "--config",
                str(cfg_file),
                "--once",
                "--master",
                "local[1]",
            ],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        while state.pending() is None and sync.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        os.kill(sync.pid, signal.SIGKILL)
        assert sync.wait() == -signal.SIGKILL  # killed, not finished
        killed = state.pending()
        assert killed is not None  # mid-batch: planned, not committed

        # resume while the writer is still writing, then a final catch-up after it stopped
        reports = list(engine.run_once(spark, cfg, max_batches=2))
        assert reports[0].batch_id == killed["batch_id"]  # the killed batch re-runs, same id
        writer.join(timeout=400)
        assert not writer.is_alive() and not failures, failures
        reports += list(engine.run_once(spark, cfg))
    finally:
        writer.join(timeout=60)
    assert state.pending() is None
    assert reports and reports[-1].behind == {"versions": 0, "events": 0}
    assert state.position()["position"]["version"] == delta_latest_version(spark, src)

    source = spark.read.format("delta").load(src)
    target = spark.read.format("delta").load(tgt).transform(live_rows)
    assert target.count() == target.select("id").distinct().count()  # no duplicates
    assert _equal(spark, source, target, ["id"])
    assert _fingerprint(source) == _fingerprint(target)


def test_mongo_events_continuous(spark, tmp_path):
    from pyspark.sql.types import StructType

    folder = tmp_path / "events"
    folder.mkdir()
    files, per_file, seed = 6, 60, 21
    events = make_events(files * per_file, seed=seed)
    write_events(folder / "events-0000.jsonl", events[:per_file])  # history before the start point
    tgt = str(tmp_path / "orders")
    conf = {
        "name": "mongo-orders",
        "keys": ["_id"],
        "columns": COLUMNS,
        "state_dir": str(tmp_path / "state"),
        "trigger_seconds": 1,
        "source": {"kind": "mongo_events", "path": str(folder)},
        "target": {"kind": "delta", "path": tgt},
    }
    cfg = validate_model(SyncConfig, conf, "test")
    assert engine.record_start_point(spark, cfg)["after_file"] == "events-0000.jsonl"

    writer = subprocess.Popen(
        [sys.executable, str(WRITER), "mongo", str(folder), str(files), str(per_file), str(seed)],
        env=_env(),
    )
    # bulk copy: it ran while the writer changed documents, so it already saw the first file after
    # the start point (overlap); its rows carry no version, so every later event still applies
    bulk = expected_state(events[: 2 * per_file])
    schema = StructType.fromDDL(COLUMNS)
    rows = [
        (
            k,
            d["customer"],
            d["total"],
            d["status"],
            [(i["sku"], i["qty"]) for i in d["items"]],
            d["updated_at"],
        )
        for k, d in bulk.items()
    ]
    spark.createDataFrame(rows, schema).write.format("delta").save(tgt)

    seen = []
    # continuous mode until it applied a batch and the writer is done (bounded wait)
    engine.run_continuous(
        spark,
        cfg,
        stop_after=400,
        on_batch=seen.append,
        stop_when=lambda: bool(seen) and writer.poll() is not None,
    )
    assert writer.wait(timeout=120) == 0
    list(engine.run_once(spark, cfg))  # final catch-up
    assert seen, "the streaming query applied no batch"

    want = expected_state(events)
    target = spark.read.format("delta").load(tgt).transform(live_rows)
    got = {r["_id"]: (r["customer"], r["total"], r["status"]) for r in target.collect()}
    assert got == {k: (d["customer"], d["total"], d["status"]) for k, d in want.items()}
