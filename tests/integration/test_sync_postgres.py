"""Replayed MongoDB change events → PostgreSQL (parent + child table) through staging tables and
one version-guarded transaction per batch.

The change-stream path is tested by replaying recorded events in the documented change-event
shape (FerretDB, the MongoDB-compatible server that runs here, has no change streams); see
``tests/integration/sync_helpers.py``. Expected end state is computed by plain Python replay.
"""

from __future__ import annotations

import random

import pytest

from lakeshift.config.base import validate_model
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig
from tests.integration.sync_helpers import COLUMNS, expected_state, make_events, write_events
from tests.services import postgres_server  # noqa: F401

psycopg = pytest.importorskip("psycopg")


def _cfg(tmp_path, dsn, name, folder):
    return validate_model(
        SyncConfig,
        {
            "name": name,
            "keys": ["_id"],
            "columns": COLUMNS,
            "state_dir": str(tmp_path / "state"),
            "source": {"kind": "mongo_events", "path": str(folder)},
            "target": {
                "kind": "postgres",
                "dsn": dsn,
                "table": name,
                "children": [
                    {"field": "items", "table": f"{name}_items", "key_columns": ["order_id"]}
                ],
            },
        },
        "test",
    )


def _db_state(dsn, table):
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT _id, customer, total, status, updated_at FROM {table} ORDER BY _id")
        parents = [(r[0], r[1], r[2], r[3], r[4].replace(tzinfo=None)) for r in cur.fetchall()]
        cur.execute(f"SELECT order_id, idx, sku, qty FROM {table}_items ORDER BY order_id, idx")
        children = cur.fetchall()
        cur.execute(f"SELECT count(*) FROM {table}__lakeshift_tombstones")
        tombstones = cur.fetchone()[0]
    return parents, children, tombstones


def _expected(events):
    state = expected_state(events)
    parents = sorted(
        (k, d["customer"], d["total"], d["status"], d["updated_at"]) for k, d in state.items()
    )
    children = sorted(
        (k, i, it["sku"], it["qty"]) for k, d in state.items() for i, it in enumerate(d["items"])
    )
    return parents, children


def test_replayed_events_to_postgres(spark, tmp_path, postgres_server):
    dsn = postgres_server.dsn
    events = make_events(240, seed=11)
    folder = tmp_path / "events"
    folder.mkdir()
    for n, chunk in enumerate((events[:100], events[100:180], events[180:])):
        write_events(folder / f"events-{n:04d}.jsonl", chunk)
    cfg = _cfg(tmp_path, dsn, "orders", folder)
    cfg.state_dir = str(tmp_path / "state")
    engine.SyncState(cfg.state_dir, cfg.name).save_start_point(
        {"kind": "mongo_events", "after_file": None}
    )
    cfg.source.max_files_per_batch = 2
    reports = list(engine.run_once(spark, cfg))
    assert [r.events for r in reports] == [180, 60]
    parents, children = _expected(events)
    got_parents, got_children, tombstones = _db_state(dsn, "orders")
    assert got_parents == parents
    assert got_children == children
    assert tombstones > 0  # deletes were recorded, not dropped

    # replaying an already applied batch: same id is skipped, a new id changes nothing
    frame = engine.read_batch(spark, cfg, {"files": sorted(str(p) for p in folder.glob("*.jsonl"))})
    assert engine.apply_batch(spark, cfg, frame, "once", 2) == (0, False)
    keys, committed = engine.apply_batch(spark, cfg, frame, "once", 3)
    assert committed and keys == 0
    assert _db_state(dsn, "orders") == (got_parents, got_children, tombstones)

    # shuffled events (out of order across and within batches) converge to the same state
    shuffled = list(events)
    random.Random(5).shuffle(shuffled)
    folder2 = tmp_path / "shuffled"
    folder2.mkdir()
    write_events(folder2 / "a.jsonl", shuffled[:120])
    write_events(folder2 / "b.jsonl", shuffled[120:])
    cfg2 = _cfg(tmp_path, dsn, "orders_shuffled", folder2)
    engine.SyncState(cfg2.state_dir, cfg2.name).save_start_point(
        {"kind": "mongo_events", "after_file": None}
    )
    cfg2.source.max_files_per_batch = 1
    assert len(list(engine.run_once(spark, cfg2))) == 2
    p2, c2, _ = _db_state(dsn, "orders_shuffled")
    assert (p2, c2) == (parents, children)
