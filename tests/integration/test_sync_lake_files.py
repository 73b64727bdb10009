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

from lakeshift.config.base import validate_model
from lakeshift.errors import SinkError
from lakeshift.sync import engine
from lakeshift.sync.columns import live_rows
from lakeshift.sync.config import SyncConfig
from lakeshift.sync.state import SyncState


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
    cfg = _cfg(tmp_path, src, tgt, ["id"])
    assert engine.record_start_point(spark, cfg)["files"] == 2
    spark.read.parquet(str(src)).write.format("delta").save(str(tgt))  # the bulk copy

    # after the start point: a changed (2 updated, 1 kept), a new file with a space and a '+' in
    # its name updates 3 and adds 4; a hidden marker file is ignored
    _write(src, "a.parquet", [(1, "a1"), (2, "a2-new")], T + 60)
    _write(src, "sub dir/c part+1.parquet", [(3, "c3"), (4, "c4")], T + 120)
    (src / "_SUCCESS").write_text("")
    reports = list(engine.run_once(spark, cfg))
    assert len(reports) == 1 and reports[0].events == 4  # rows of the 2 new/changed files
    assert reports[0].behind == {"files": 0, "bytes": 0} and reports[0].lag_seconds == 0.0
    assert _live(spark, tgt) == [(1, "a1"), (2, "a2-new"), (3, "c3"), (4, "c4")]
    assert list(engine.run_once(spark, cfg)) == []  # nothing new: no batch, nothing re-read

    # b rewritten after c: its row for 3 is newer by file modification time (the version)
    _write(src, "b.parquet", [(3, "b3-late")], T + 180)
    assert [r.events for r in engine.run_once(spark, cfg)] == [1]
    assert _live(spark, tgt) == [(1, "a1"), (2, "a2-new"), (3, "b3-late"), (4, "c4")]


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
