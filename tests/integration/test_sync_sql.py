"""Replayed MongoDB change events → SQL targets (PostgreSQL and MariaDB, table-driven): a parent
and a child table through staging tables and one version-guarded transaction per batch.

The change-stream path is tested by replaying recorded events in the documented change-event
shape (FerretDB, the MongoDB-compatible server that runs here, has no change streams); see
``tests/integration/sync_helpers.py``. The expected end state is computed by plain Python replay
of the events in stream order, independent of lakeshift.
"""

from __future__ import annotations

import random

import pytest

from lakeshift.config.base import validate_model
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig
from tests.integration.sync_helpers import COLUMNS, expected_state, make_events, write_events
from tests.services import mariadb_server, postgres_server  # noqa: F401

DBS = ["postgres", "mariadb"]


def _server(request, db):
    return request.getfixturevalue(f"{db}_server")


def _target(db, server, name):
    target = {
        "kind": db,
        "table": name,
        "children": [{"field": "items", "table": f"{name}_items", "key_columns": ["order_id"]}],
    }
    target["dsn" if db == "postgres" else "url"] = server.dsn
    return target


def _cfg(tmp_path, db, server, name, folder):
    cfg = validate_model(
        SyncConfig,
        {
            "name": name,
            "keys": ["_id"],
            "columns": COLUMNS,
            "state_dir": str(tmp_path / "state"),
            "source": {"kind": "mongo_events", "path": str(folder)},
            "target": _target(db, server, name),
        },
        "test",
    )
    engine.SyncState(cfg.state_dir, cfg.name).save_start_point(
        {"kind": "mongo_events", "after_file": None}
    )
    return cfg


def _query(db, server, sql):
    if db == "postgres":
        import psycopg

        with psycopg.connect(server.dsn) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    conn = server.connect_mariadb()
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def _db_state(db, server, table):
    parents = [
        (r[0], r[1], r[2], r[3], r[4].replace(tzinfo=None))
        for r in _query(
            db, server, f"SELECT _id, customer, total, status, updated_at FROM {table} ORDER BY _id"
        )
    ]
    children = [
        tuple(r)
        for r in _query(
            db, server, f"SELECT order_id, idx, sku, qty FROM {table}_items ORDER BY order_id, idx"
        )
    ]
    tombstones = _query(db, server, f"SELECT count(*) FROM {table}__lakeshift_tombstones")[0][0]
    return parents, children, int(tombstones)


def _expected(events):
    state = expected_state(events)
    parents = sorted(
        (k, d["customer"], d["total"], d["status"], d["updated_at"]) for k, d in state.items()
    )
    children = sorted(
        (k, i, it["sku"], it["qty"]) for k, d in state.items() for i, it in enumerate(d["items"])
    )
    return parents, children


def _reinserted_keys(events):
    """Keys whose last events (in stream order) are a delete followed by an insert."""
    seen: dict[str, list[str]] = {}
    for ev in sorted(events, key=lambda e: (e["clusterTime"].time, e["clusterTime"].inc)):
        seen.setdefault(str(ev["documentKey"]["_id"]), []).append(ev["operationType"])
    return {k for k, ops in seen.items() if "delete" in ops and ops[-1] != "delete"}


@pytest.mark.parametrize("db", DBS)
def test_replayed_events_to_sql(spark, tmp_path, request, db):
    server = _server(request, db)
    events = make_events(240, seed=11)
    folder = tmp_path / "events"
    folder.mkdir()
    for n, chunk in enumerate((events[:100], events[100:180], events[180:])):
        write_events(folder / f"events-{n:04d}.jsonl", chunk)
    cfg = _cfg(tmp_path, db, server, "orders", folder)
    cfg.source.max_files_per_batch = 2
    reports = list(engine.run_once(spark, cfg))
    assert [r.events for r in reports] == [180, 60]
    size = (folder / "events-0002.jsonl").stat().st_size
    assert reports[0].behind == {"files": 1, "bytes": size}
    assert reports[-1].behind == {"files": 0, "bytes": 0}
    parents, children = _expected(events)
    got_parents, got_children, tombstones = _db_state(db, server, "orders")
    assert got_parents == parents
    assert got_children == children
    assert tombstones > 0  # deletes were recorded, not dropped
    reinserted = _reinserted_keys(events)
    assert reinserted, "the event generator made no delete followed by a re-insert"
    assert reinserted <= {p[0] for p in got_parents}  # delete then re-insert: present

    # replaying an already applied batch: same id is skipped, a new id changes nothing
    frame = engine.read_batch(spark, cfg, {"files": sorted(str(p) for p in folder.glob("*.jsonl"))})
    assert engine.apply_batch(spark, cfg, frame, "once", 2) == (0, False)
    keys, committed = engine.apply_batch(spark, cfg, frame, "once", 3)
    assert committed and keys == 0
    assert _db_state(db, server, "orders") == (got_parents, got_children, tombstones)

    # shuffled events (out of order across and within batches) converge to the same state
    shuffled = list(events)
    random.Random(5).shuffle(shuffled)
    folder2 = tmp_path / "shuffled"
    folder2.mkdir()
    write_events(folder2 / "a.jsonl", shuffled[:120])
    write_events(folder2 / "b.jsonl", shuffled[120:])
    cfg2 = _cfg(tmp_path, db, server, "orders_shuffled", folder2)
    cfg2.source.max_files_per_batch = 1
    assert len(list(engine.run_once(spark, cfg2))) == 2
    p2, c2, _ = _db_state(db, server, "orders_shuffled")
    assert (p2, c2) == (parents, children)


class _FailingCursor:
    """A DB-API cursor that fails on the first statement containing ``needle``."""

    def __init__(self, cur, needle, error):
        self._cur, self._needle, self._error = cur, needle, error

    def execute(self, query, *args):
        text = query if isinstance(query, str) else query.as_string(self._cur)
        if self._needle in text:
            raise self._error
        return self._cur.execute(query, *args)

    def __getattr__(self, name):
        return getattr(self._cur, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._cur.close()


class _FailingConn:
    def __init__(self, conn, needle, error):
        self._conn, self._needle, self._error = conn, needle, error

    def cursor(self):
        return _FailingCursor(self._conn.cursor(), self._needle, self._error)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _fail_parent_upsert(monkeypatch, db, table):
    """Make the apply fail after its deletes ran, at the parent upsert, inside the transaction."""
    if db == "postgres":
        import psycopg

        real = psycopg.connect
        error = psycopg.OperationalError("simulated connection loss")
        needle = f'INSERT INTO "{table}" ('
        monkeypatch.setattr(
            psycopg, "connect", lambda *a, **k: _FailingConn(real(*a, **k), needle, error)
        )
        return
    import pymysql

    import lakeshift.sinks.sql as sql_sink

    real_from_url = sql_sink.connection_from_url
    error = pymysql.err.OperationalError(2013, "simulated connection loss")
    needle = f"INSERT INTO `{table}` ("

    class _Conn:
        def __init__(self, inner):
            self._inner = inner

        def connect(self):
            return _FailingConn(self._inner.connect(), needle, error)

    monkeypatch.setattr(
        sql_sink, "connection_from_url", lambda *a, **k: _Conn(real_from_url(*a, **k))
    )


@pytest.mark.parametrize("db", DBS)
def test_failed_transaction_changes_nothing_and_resumes(spark, tmp_path, request, db, monkeypatch):
    from lakeshift.errors import SinkError

    server = _server(request, db)
    events = make_events(120, seed=17)
    folder = tmp_path / "events"
    folder.mkdir()
    write_events(folder / "events-0000.jsonl", events[:60])
    write_events(folder / "events-0001.jsonl", events[60:])
    cfg = _cfg(tmp_path, db, server, "crash", folder)
    cfg.source.max_files_per_batch = 1
    assert [r.events for r in engine.run_once(spark, cfg, max_batches=1)] == [60]
    after_first = _db_state(db, server, "crash")
    assert after_first[:2] == _expected(events[:60])

    # batch 2 dies inside its transaction after deleting rows: all of it is rolled back
    with monkeypatch.context() as patch:
        _fail_parent_upsert(patch, db, "crash")
        with pytest.raises(SinkError, match="simulated connection loss"):
            list(engine.run_once(spark, cfg))
    assert _db_state(db, server, "crash") == after_first
    state = engine.SyncState(cfg.state_dir, cfg.name)
    assert state.pending()["batch_id"] == 2 and state.position()["batch_id"] == 1

    # resumed: the pending batch applies once and the target converges
    assert [r.events for r in engine.run_once(spark, cfg)] == [60]
    assert _db_state(db, server, "crash")[:2] == _expected(events)
