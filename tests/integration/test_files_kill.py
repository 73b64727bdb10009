"""SIGKILL a running ``lakeshift files`` mid-copy, rerun it, prove nothing was lost or redone."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.integration.files_tree import make_tree, sha_tree

REPO = Path(__file__).resolve().parents[2]


def _descendants(root: int) -> list[int]:
    """Pids of every process below ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _journaled(state: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for seg in sorted((state / "runs").glob("*/seg-*.parquet")):
        rows += pq.read_table(seg).to_pylist()
    return rows


def _alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("mode", ["local", "processes", "spark"])
def test_sigkill_mid_copy_then_rerun(tmp_path: Path, mode: str) -> None:
    """Kill the whole process group (driver, and with Spark the JVM and Python workers).

    With worker processes only the driver is killed: its workers must die with it.
    """
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(src)
    for i in range(60):
        data = bytes([i]) * (5000 + 137 * i)
        (src / "bulk" / f"part {i:03d}.dat").parent.mkdir(parents=True, exist_ok=True)
        (src / "bulk" / f"part {i:03d}.dat").write_bytes(data)
    expected = sha_tree(src)
    base = [sys.executable, "-m", "lakeshift.cli", "files", str(src), str(dst), "--no-progress"]
    local = ["--local", "--workers", "2", "--threads", "2"]
    first = {
        "local": [*base, *local],
        "processes": [*base, "--executor", "processes", "--workers", "2"],
        "spark": [*base, "--master", "local[2]", "--executor", "spark", "--threads", "2"],
    }[mode]
    env = {**os.environ, "LAKESHIFT_FILES_TEST_DELAY": "0.3"}
    log = tmp_path / "first.log"
    with open(log, "wb") as sink:  # a file, not a pipe: Spark's logging must never block
        proc = subprocess.Popen(
            first, cwd=REPO, env=env, start_new_session=True, stdout=sink, stderr=sink
        )
    state = dst / "_lakeshift_files"
    deadline = time.monotonic() + 240
    while len(_journaled(state)) < 8:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        assert time.monotonic() < deadline, "copy made no progress"
        time.sleep(0.05)
    doomed = _descendants(proc.pid)
    if mode == "processes":  # only the driver: its worker processes must follow it
        assert len(doomed) == 2, doomed
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in doomed):
            assert time.monotonic() < deadline, "worker processes outlived their driver"
            time.sleep(0.05)
        doomed = []
    # SIGKILL the driver's tree at once: PySpark's worker daemon runs in its own process group,
    # so kill every descendant by pid as well as the driver's group
    groups = {proc.pid} if mode != "processes" else set()
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(pid))  # the daemon's group also holds workers it forks later
    groups.discard(os.getpgrp())  # never our own group
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()

    # no partial file under a final name: everything present is byte-identical to the source
    present = sha_tree(dst)
    assert 8 <= len(present) < len(expected)
    assert all(expected[rel] == digest for rel, digest in present.items())
    verified_before = {str(r["rel"]) for r in _journaled(state) if r["status"] == "verified"}
    assert verified_before <= set(present)

    out = tmp_path / "rerun.json"
    rerun = subprocess.run(
        [*base, *local, "--json", str(out)], check=False, cwd=REPO, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    summary = json.loads(out.read_text())

    assert sha_tree(dst) == expected
    assert not (dst / ".lakeshift-tmp").exists()
    assert summary["unchanged"] == len(verified_before)
    assert summary["copied"] + summary["adopted"] == len(expected) - len(verified_before)
    versions = sorted((state / "manifest").glob("v-*.parquet"))
    rows = pq.read_table(versions[-1]).to_pylist()
    assert {r["rel"] for r in rows} == set(expected)
    assert all(r["status"] == "verified" for r in rows)
    copied_again = {
        r["rel"] for r in rows if r["run_id"] == summary["run_id"] and r["action"] == "copied"
    }
    assert not copied_again & verified_before  # nothing verified was copied twice
