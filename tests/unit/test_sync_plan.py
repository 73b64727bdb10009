"""Planning ``--once`` batches of an event folder from the processed-files log (no Spark needed).

A file is applied once its name, size and modification time are in the log, whatever its name:
a late file with a lower name is still applied, a rewritten file is applied again, an unchanged
one never. Expectations are written out by hand from the files each case creates.
"""

from __future__ import annotations

import os
from pathlib import Path

from lakeshift.config.base import validate_model
from lakeshift.sync import engine
from lakeshift.sync.config import SyncConfig
from lakeshift.sync.state import SyncState

T = 1_700_000_000


def _file(folder: Path, name: str, text: str, mtime: int) -> None:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))


def _cfg(tmp_path: Path, folder: Path, max_files: int | None = None) -> SyncConfig:
    source = {"kind": "mongo_events", "path": str(folder), "max_files_per_batch": max_files}
    return validate_model(
        SyncConfig,
        {
            "name": "ev",
            "keys": ["_id"],
            "columns": "_id STRING",
            "state_dir": str(tmp_path / "state"),
            "source": source,
            "target": {"kind": "delta", "path": str(tmp_path / "t")},
        },
        "test",
    )


def _names(plan):
    return None if plan is None else [Path(f).name for f in plan["files"]]


def _apply(state: SyncState, plan) -> None:
    """What run_batch does after a successful apply: commit the planned position."""
    state.commit(int(plan["batch_id"]), plan["after"], {})


def test_late_lower_named_and_rewritten_files_are_applied(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    _file(folder, "e-0001.jsonl", "history\n", T)
    _file(folder, "e-0003.jsonl.tmp", "being written\n", T)  # not an event file yet
    cfg = _cfg(tmp_path, folder)
    state = SyncState(cfg.state_dir, cfg.name)
    point = engine.record_start_point(None, cfg)  # type: ignore[arg-type]
    assert point["after_file"] == "e-0001.jsonl" and point["manifest"]
    assert engine.plan_next(None, cfg, state) is None  # history is in the log

    _file(folder, "e-0005.jsonl", "a\n", T + 5)
    plan = engine.plan_next(None, cfg, state)  # type: ignore[arg-type]
    assert _names(plan) == ["e-0005.jsonl"] and plan["batch_id"] == 1
    _apply(state, plan)

    # late arrivals named before the last applied file, plus a rewritten (appended) file
    _file(folder, "e-0002.jsonl", "late\n", T + 9)
    _file(folder, "e-0004.jsonl", "late too\n", T + 9)
    _file(folder, "e-0005.jsonl", "a\nb\n", T + 10)
    plan = engine.plan_next(None, cfg, state)  # type: ignore[arg-type]
    assert _names(plan) == ["e-0002.jsonl", "e-0004.jsonl", "e-0005.jsonl"]
    assert plan["after"]["after_file"] == "e-0005.jsonl"

    # not committed (killed mid-batch): the same batch is planned again, nothing new skipped
    again = engine.plan_next(None, cfg, state)  # type: ignore[arg-type]
    assert (_names(again), again["batch_id"]) == (_names(plan), 2)
    _apply(state, again)
    assert engine.plan_next(None, cfg, state) is None
    assert state.position()["position"]["manifest"] == f"manifest-{2:012d}.parquet"


def test_max_files_and_positions_from_before_the_log(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    for n in range(1, 6):
        _file(folder, f"e-{n:04d}.jsonl", f"{n}\n", T + n)
    cfg = _cfg(tmp_path, folder, max_files=2)
    state = SyncState(cfg.state_dir, cfg.name)
    # a start point written before the processed-files log: only a name
    state.save_start_point({"kind": "mongo_events", "after_file": "e-0002.jsonl"})
    plan = engine.plan_next(None, cfg, state)  # type: ignore[arg-type]
    assert _names(plan) == ["e-0003.jsonl", "e-0004.jsonl"]
    _apply(state, plan)
    _file(folder, "e-0001b.jsonl", "late\n", T + 9)  # sorts before the old position
    plan = engine.plan_next(None, cfg, state)  # type: ignore[arg-type]
    assert _names(plan) == ["e-0001b.jsonl", "e-0005.jsonl"]
    _apply(state, plan)
    assert engine.plan_next(None, cfg, state) is None
