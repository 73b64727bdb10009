"""Lake path → Delta by manifest diff: new and changed files since the stored manifest are read
as rows and applied (appended, or merged by key); the manifest advances only after the apply
committed. Expected targets are written out by hand from the files the test writes.
"""

from __future__ import annotations

import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeshift.changeframe import live_rows
from lakeshift.config.base import validate_model
from lakeshift.errors import SinkError
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig
from lakeshift.sync.state import SyncState
from tests.services import mariadb_server, postgres_server  # noqa: F401


def _write(folder, name, rows, mtime):
    """A Parquet file of ``(id, name)`` rows with a given modification time (epoch seconds)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {"id": pa.array([r[0] for r in rows], pa.int64()), "name": [r[1] for r in rows]}
    )
    pq.write_table(table, path)
    os.utime(path, (mtime, mtime))
    return path


def _cfg(tmp_path, src, tgt, keys):
    return validate_model(
        SyncConfig,
        {
            "name": "lake",
            "keys": keys,
            "state_dir": str(tmp_path / "state"),
            "source": {"kind": "lake_files", "path": str(src), "format": "parquet"},
            "target": {"kind": "delta", "path": str(tgt)},
        },
        "test",
    )


def _live(spark, tgt):
    df = spark.read.format("delta").load(str(tgt)).transform(live_rows)
    return sorted((r["id"], r["name"]) for r in df.select("id", "name").collect())


T = int(time.time()) - 10_000


def test_keyed_manifest_diff_merges_new_and_changed_files(spark, tmp_path):
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    _write(src, "a.parquet", [(1, "a1"), (2, "a2")], T)
    _write(src, "b.parquet", [(3, "b3")], T)
    _write(src, "d.parquet", [(5, "d5")], T)
    cfg = _cfg(tmp_path, src, tgt, ["id"])
    assert engine.record_start_point(spark, cfg)["files"] == 3
    spark.read.parquet(str(src)).write.format("delta").save(str(tgt))  # the bulk copy

    # after the start point: a changed (2 updated, 1 kept), a new file with a space and a '+' in
    # its name updates 3 and adds 4; a hidden marker file is ignored
    _write(src, "a.parquet", [(1, "a1"), (2, "a2-new")], T + 60)
    _write(src, "sub dir/c part+1.parquet", [(3, "c3"), (4, "c4")], T + 120)
    (src / "_SUCCESS").write_text("")
    reports = list(engine.run_once(spark, cfg))
    assert len(reports) == 1 and reports[0].events == 4  # rows of the 2 new/changed files
    assert reports[0].behind == {"files": 0, "bytes": 0} and reports[0].lag_seconds == 0.0
    assert _live(spark, tgt) == [(1, "a1"), (2, "a2-new"), (3, "c3"), (4, "c4"), (5, "d5")]
    assert list(engine.run_once(spark, cfg)) == []  # nothing new: no batch, nothing re-read

    # b rewritten after c: its row for 3 is newer by file modification time (the version)
    _write(src, "b.parquet", [(3, "b3-late")], T + 180)
    assert [r.events for r in engine.run_once(spark, cfg)] == [1]
    assert _live(spark, tgt) == [(1, "a1"), (2, "a2-new"), (3, "b3-late"), (4, "c4"), (5, "d5")]

    # removed files: the lake path is the source of truth. b goes: key 3 is still held by the
    # c file, whose row shows through again; nothing else changes (5 is the bulk copy's row of
    # d, which is still there)
    (src / "b.parquet").unlink()
    assert [r.events for r in engine.run_once(spark, cfg)] == [1]
    assert _live(spark, tgt) == [(1, "a1"), (2, "a2-new"), (3, "c3"), (4, "c4"), (5, "d5")]
    # c and d go: keys 3 and 4 (synced from c) and 5 (bulk-copied from d) are held by no file
    (src / "sub dir" / "c part+1.parquet").unlink()
    (src / "d.parquet").unlink()
    reports = list(engine.run_once(spark, cfg))
    assert [r.events for r in reports] == [3] and reports[0].behind == {"files": 0, "bytes": 0}
    assert _live(spark, tgt) == [(1, "a1"), (2, "a2-new")]
    # a file written after the removed one brings a removed key back
    _write(src, "e.parquet", [(4, "e4")], T + 240)
    assert [r.events for r in engine.run_once(spark, cfg)] == [1]
    assert _live(spark, tgt) == [(1, "a1"), (2, "a2-new"), (4, "e4")]


def test_keyless_append_replace_and_manifest_after_commit(spark, tmp_path, monkeypatch):
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    _write(src, "a.parquet", [(1, "a1")], T)
    cfg = _cfg(tmp_path, src, tgt, [])
    engine.record_start_point(spark, cfg)
    spark.read.parquet(str(src)).write.format("delta").save(str(tgt))  # the bulk copy
    state = SyncState(cfg.state_dir, cfg.name)

    # a new file appears; the apply fails (disk full, killed…): the manifest must not advance
    _write(src, "b.parquet", [(2, "b2"), (3, "b3")], T + 60)
    import lakeshift.sinks.delta_merge as dm

    real = dm.replace_files

    def broken(*args, **kwargs):
        raise SinkError("simulated failure during the apply")

    monkeypatch.setattr(dm, "replace_files", broken)
    with pytest.raises(SinkError):
        list(engine.run_once(spark, cfg))
    assert state.position() is None  # still at the start-point manifest
    assert state.pending()["files"] == ["b.parquet"]
    assert _live(spark, tgt) == [(1, "a1")]
    monkeypatch.setattr(dm, "replace_files", real)

    # resumed: the pending batch applies once; a replay of the same batch id is skipped
    reports = list(engine.run_once(spark, cfg))
    assert [r.events for r in reports] == [2]
    assert state.position()["position"]["files"] == 2
    assert _live(spark, tgt) == [(1, "a1"), (2, "b2"), (3, "b3")]
    replay = {"files": ["b.parquet"], "gone": [], "batch_id": 1, "after": reports[0].position}
    assert engine.run_batch(spark, cfg, state, replay).applied is False
    assert _live(spark, tgt) == [(1, "a1"), (2, "b2"), (3, "b3")]

    # b changes: its earlier rows are replaced, not duplicated; then b is removed: rows go
    _write(src, "b.parquet", [(2, "b2-new")], T + 120)
    assert [r.events for r in engine.run_once(spark, cfg)] == [1]
    assert _live(spark, tgt) == [(1, "a1"), (2, "b2-new")]
    (src / "b.parquet").unlink()
    assert [r.events for r in engine.run_once(spark, cfg)] == [0]
    assert _live(spark, tgt) == [(1, "a1")]
    assert state.position()["position"]["files"] == 1


@pytest.mark.parametrize("db", ["postgres", "mariadb"])
def test_keyed_removed_files_delete_in_sql(spark, tmp_path, request, db):
    """Keyed lake path → SQL: a removed file deletes the keys no remaining file holds."""
    server = request.getfixturevalue(f"{db}_server")
    src = tmp_path / "src"
    src.mkdir()
    table = f"lake_rm_{db}"
    target = {"kind": db, "table": table, ("dsn" if db == "postgres" else "url"): server.dsn}
    cfg = validate_model(
        SyncConfig,
        {
            "name": table,
            "keys": ["id"],
            "state_dir": str(tmp_path / "state"),
            "source": {"kind": "lake_files", "path": str(src), "format": "parquet"},
            "target": target,
        },
        "test",
    )
    engine.record_start_point(spark, cfg)  # an empty lake path
    _write(src, "a.parquet", [(1, "a1"), (2, "a2")], T)
    _write(src, "b's file.parquet", [(2, "b2"), (3, "b3")], T + 60)
    assert [r.events for r in engine.run_once(spark, cfg)] == [4]
    assert _sql_rows(db, server, table) == [(1, "a1"), (2, "b2"), (3, "b3")]
    # a row the bulk copy wrote (no version) whose key no file holds
    _sql_exec(db, server, f"INSERT INTO {table} (id, name) VALUES (9, 'bulk9')")

    (src / "b's file.parquet").unlink()
    assert [r.events for r in engine.run_once(spark, cfg)] == [3]  # 2 shows a2; 3 and 9 go
    assert _sql_rows(db, server, table) == [(1, "a1"), (2, "a2")]


def _sql_exec(db, server, sql, fetch=False):
    if db == "postgres":
        import psycopg

        with psycopg.connect(server.dsn) as conn, conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if fetch else None

    conn = server.connect_mariadb(autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall()) if fetch else None
    finally:
        conn.close()


def _sql_rows(db, server, table):
    return [
        tuple(r) for r in _sql_exec(db, server, f"SELECT id, name FROM {table} ORDER BY id", True)
    ]
