"""Live sync into PostgreSQL through the MongoDB path, end to end, proved by ``lakeshift validate``.

A writer process changes a MongoDB-shaped source while the bulk copy runs and while sync runs;
after a final catch-up, ``lakeshift validate`` reports zero differences between the final source
state and the target's parent and child tables.

* Source: MongoDB change events. FerretDB, the MongoDB-compatible server that runs here, has no
  change streams, so the writer records events in exactly the documented change-stream shape
  (operationType, documentKey, fullDocument, clusterTime, lsid/txnNumber) as Extended JSON files
  in the event folder, as the live recorder does; sync replays them through the same apply code.
  Inserts, updates, replaces, deletes and re-inserts of deleted keys are all there.
* Bulk phase: ``lakeshift transform`` (MongoDB → SQL mapping: parent ``orders`` plus child
  ``orders_items``) of the collection snapshot the writer exposes *after* the start point, while
  it goes on writing events (the overlap is re-applied by sync: bulk rows have no version).
* Sync: ``--once`` batches while the writer writes the second half of the events, then a final
  catch-up after it stopped.
* Proof: the writer computes the final documents itself (plain Python replay of its events) and
  writes them as the expected parent and child tables; ``lakeshift validate`` compares them with
  the PostgreSQL tables over JDBC.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lakeshift.changeframe import ORD, TS
from lakeshift.cli import main
from lakeshift.config.base import validate_model
from lakeshift.nosql.mapping import MappingSpec
from lakeshift.nosql.transform import TransformConfig, run_transform
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig
from lakeshift.sync.state import SyncState
from tests.integration.sync_helpers import COLUMNS, make_events, write_events
from tests.services import postgres_server  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "tests" / "e2e" / "sync_writer.py"
FILES, PER_FILE, SEED = 8, 40, 29

MAPPING = {
    "collections": [
        {
            "source": "shop.orders",
            "table": "orders",
            "unmapped": "ignore",
            "columns": [
                {"path": "_id", "type": "objectid"},
                {"path": "customer", "type": "string"},
                {"path": "total", "type": "double"},
                {"path": "status", "type": "string"},
                {"path": "updated_at", "type": "timestamp"},
            ],
            "children": [
                {
                    "path": "items",
                    "table": "orders_items",
                    "unmapped": "ignore",
                    "columns": [{"path": "sku", "type": "string"}, {"path": "qty", "type": "int"}],
                }
            ],
        }
    ]
}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'lib'}"
    env["SYNC_WRITER_PAUSE"] = "0.3"
    return env


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, f"the writer stopped before writing {path}"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def _query(server, sql):
    import psycopg

    with psycopg.connect(server.dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.mark.slow
def test_mongo_to_postgres_live_sync_validates(spark, tmp_path, postgres_server, monkeypatch):
    server = postgres_server
    folder, out = tmp_path / "events", tmp_path / "source"
    folder.mkdir()
    events = make_events(FILES * PER_FILE, seed=SEED)
    write_events(folder / "events-0000.jsonl", events[:PER_FILE])  # history before the start
    cfg = validate_model(
        SyncConfig,
        {
            "name": "orders-pg",
            "keys": ["_id"],
            "columns": COLUMNS,
            "state_dir": str(tmp_path / "state"),
            "source": {"kind": "mongo_events", "path": str(folder), "max_files_per_batch": 3},
            "target": {
                "kind": "postgres",
                "dsn": server.dsn,
                "table": "orders",
                "children": [
                    {
                        "field": "items",
                        "table": "orders_items",
                        "key_columns": ["_id"],
                        "index_column": "_ord1",
                    }
                ],
            },
        },
        "test",
    )
    # 1. start point before the bulk copy
    assert engine.record_start_point(spark, cfg)["after_file"] == "events-0000.jsonl"
    writer = subprocess.Popen(
        [
            sys.executable,
            str(WRITER),
            "mongo-sql",
            str(folder),
            *map(str, (FILES, PER_FILE, SEED)),
            str(out),
        ],
        env=_env(),
    )
    try:
        # 2. bulk copy (lakeshift transform) of the collection while the writer goes on
        snapshot = out / "bulk" / "shop" / "orders.json"
        _wait_for(snapshot, writer)
        tcfg = TransformConfig.model_validate(
            {
                "source": {"spec": f"extjson:{snapshot}"},
                "mapping": MAPPING,
                "target": {"url": server.url, "mode": "replace"},
            }
        )
        summary = run_transform(
            spark, tcfg, MappingSpec.model_validate(MAPPING), progress=lambda _: None
        )
        assert summary["ok"] and summary["documents_quarantined"] == 0, summary

        # 3. sync while the writer writes the second half of the events
        (out / "go").touch()
        reports, while_writing = [], 0
        while writer.poll() is None:
            batch = list(engine.run_once(spark, cfg))
            while_writing += len(batch) if batch and writer.poll() is None else 0
            reports += batch
            if reports:
                (out / "go2").touch()  # the writer goes on while sync keeps applying
            time.sleep(0.2)
        assert writer.wait() == 0
    finally:
        if writer.poll() is None:
            writer.kill()
    assert while_writing >= 1, "no sync batch ran while the writer was writing"
    # 4. final catch-up
    reports += list(engine.run_once(spark, cfg))
    assert reports[-1].behind == {"files": 0, "bytes": 0}
    assert sum(r.events for r in reports) == (FILES - 1) * PER_FILE  # every event after the start
    assert SyncState(cfg.state_dir, cfg.name).pending() is None
    assert list(engine.run_once(spark, cfg)) == []

    # 5. lakeshift validate: final source state (written by the writer) vs. the PostgreSQL tables
    monkeypatch.setenv("LAKESHIFT_JDBC_USER", server.user)
    monkeypatch.setenv("LAKESHIFT_JDBC_PASSWORD", server.password)
    checks = [
        ("orders", "_id", f"{TS},{ORD}"),
        ("orders_items", "_id,_ord1", None),
    ]
    for table, keys, exclude in checks:
        report = tmp_path / f"{table}.json"
        argv = ["validate", f"parquet:{out / 'final' / (table + '.parquet')}"]
        argv += [f"{server.jdbc_url}?table=public.{table}", "--keys", keys, "--json", str(report)]
        argv += ["--exclude", exclude] if exclude else []
        assert main(argv) == 0, report.read_text() if report.exists() else table
        result = json.loads(report.read_text())
        result = result[0] if isinstance(result, list) else result.get("tables", [result])[0]
        assert result["passed"] and result["differing_rows"] == 0, result
        assert result["left_rows"] == result["right_rows"] > 0

    # deletes were applied (not dropped) and recorded; no staging tables left behind
    deletes = sum(1 for e in events if e["operationType"] == "delete")
    tombstones = _query(server, "SELECT count(*) FROM orders__lakeshift_tombstones")[0][0]
    assert deletes > 0 and tombstones > 0
    stages = _query(
        server, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'lakeshift_stage_%'"
    )
    assert stages[0][0] == 0
