"""Continuous mode on an event folder: Structured Streaming with a checkpoint reads every file
once — not the files before the start point on the first start, not the already processed files
after a restart (even when one is rewritten under the same name) — and every micro-batch reports
lag, events behind, throughput and the applied position.

The change-stream path is exercised with recorded change events in the documented change-stream
shape (FerretDB, the MongoDB-compatible server that runs here, has no change streams).
"""

from __future__ import annotations

import json
import time

import yaml
from pyspark.sql.types import StructType

from lakeshift.changeframe import live_rows
from lakeshift.cli import main as cli_main
from lakeshift.config.base import validate_model
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig
from lakeshift.sync.state import SyncState
from tests.integration.sync_helpers import COLUMNS, expected_state, make_events, write_events


def _bulk_rows(state):
    return [
        (
            k,
            d["customer"],
            d["total"],
            d["status"],
            [(i["sku"], i["qty"]) for i in d["items"]],
            d["updated_at"],
        )
        for k, d in state.items()
    ]


def _run_until(spark, cfg, n_events, grace=3.0):
    """Continuous mode until ``n_events`` were applied, plus ``grace`` seconds for stray batches."""
    seen, reached = [], []

    def done():
        if not reached and sum(r.events for r in seen) >= n_events:
            reached.append(time.monotonic())
        return bool(reached) and time.monotonic() - reached[0] > grace

    engine.run_continuous(spark, cfg, stop_after=300, on_batch=seen.append, stop_when=done)
    return seen


def _target(spark, path):
    df = spark.read.format("delta").load(path).transform(live_rows)
    return {r["_id"]: (r["customer"], r["total"], r["status"]) for r in df.collect()}


def test_continuous_restart_never_rereads_files(spark, tmp_path, capsys):
    folder = tmp_path / "events"
    folder.mkdir()
    events = make_events(200, seed=31)
    write_events(folder / "events-0000.jsonl", events[:50])  # history: the bulk copy has it
    conf = {
        "name": "stream",
        "keys": ["_id"],
        "columns": COLUMNS,
        "state_dir": str(tmp_path / "state"),
        "trigger_seconds": 1,
        "source": {"kind": "mongo_events", "path": str(folder)},
        "target": {"kind": "delta", "path": str(tmp_path / "orders")},
    }
    cfg = validate_model(SyncConfig, conf, "test")
    engine.record_start_point(spark, cfg)
    bulk = _bulk_rows(expected_state(events[:50]))
    spark.createDataFrame(bulk, StructType.fromDDL(COLUMNS)).write.format("delta").save(
        conf["target"]["path"]
    )
    write_events(folder / "events-0001.jsonl", events[50:100])
    write_events(folder / "events-0002.jsonl", events[100:150])

    seen = _run_until(spark, cfg, 100)
    assert sum(r.events for r in seen) == 100  # events-0000 (before the start point) not read
    last = seen[-1]
    assert last.position["after_file"] == "events-0002.jsonl"
    assert last.behind == {"files": 0, "bytes": 0} and last.lag_seconds == 0.0
    assert all(r.events_per_second > 0 and r.seconds > 0 for r in seen if r.events)
    state = SyncState(cfg.state_dir, cfg.name)
    committed = state.position()
    assert committed["position"]["after_file"] == "events-0002.jsonl"
    assert committed["metrics"]["behind"] == {"files": 0, "bytes": 0}

    # a processed file rewritten under its old name (with inserts of keys nobody else has) and
    # one new file; the restarted query must read the new file only
    stray = make_events(30, seed=99)
    write_events(folder / "events-0001.jsonl", stray)
    write_events(folder / "events-0003.jsonl", events[150:])
    seen2 = _run_until(spark, cfg, 50)
    assert sum(r.events for r in seen2) == 50
    assert _target(spark, conf["target"]["path"]) == {
        k: (d["customer"], d["total"], d["status"]) for k, d in expected_state(events).items()
    }

    # the status command shows the committed position and the last batch's metrics
    cfg_file = tmp_path / "sync.yaml"
    cfg_file.write_text(yaml.safe_dump(conf))
    capsys.readouterr()
    assert cli_main(["sync", "status", "--config", str(cfg_file)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["committed"]["position"]["after_file"] == "events-0003.jsonl"
    metrics = status["committed"]["metrics"]
    assert metrics["events"] == seen2[-1].events
    assert set(metrics) >= {"events", "events_per_second", "lag_seconds", "behind", "seconds"}
