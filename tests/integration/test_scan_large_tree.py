"""``lakeshift scan`` of a generated tree of 200,000 files whose sizes are drawn from a known
distribution (log-uniform from 1 B to 20 GiB, seeded; sparse files, so the tree costs no disk):
the profile's bucket counts and bytes equal an independent ``os.walk`` + ``os.stat`` count, with
the bucket bounds written out here, not taken from lakeshift."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

N_FILES = 200_000
KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
BOUNDS = [0, KIB, 64 * KIB, MIB, 16 * MIB, 128 * MIB, GIB, 10 * GIB]  # lower bounds, inclusive


def _bucket(size: int) -> int:
    return max(i for i, low in enumerate(BOUNDS) if size >= low)


def _build(root: Path) -> None:
    rng = random.Random(20261203)
    top = [f"region={r}" for r in range(8)]
    for i in range(N_FILES):
        size = int(math.exp(rng.uniform(0, math.log(20 * GIB))))
        folder = root / top[i % len(top)] / f"day={i // 5000:03d}"
        if i % 5000 < len(top):
            folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"part-{i:06d}.bin", "wb") as fh:
            fh.truncate(size)


def test_scan_of_200k_files_matches_os_walk(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    _build(root)
    files = [0] * len(BOUNDS)
    sizes = [0] * len(BOUNDS)
    per_top: dict[str, int] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            size = os.stat(os.path.join(dirpath, name)).st_size
            b = _bucket(size)
            files[b] += 1
            sizes[b] += size
            top = os.path.relpath(dirpath, root).split(os.sep)[0]
            per_top[top] = per_top.get(top, 0) + 1
    assert sum(files) == N_FILES and all(files), files  # every bucket is populated

    out = tmp_path / "profile.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lakeshift.cli", "scan", str(root), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    profile = json.loads(out.read_text())
    assert [b["files"] for b in profile["buckets"]] == files
    assert [b["bytes"] for b in profile["buckets"]] == sizes
    assert [b["min"] for b in profile["buckets"]] == BOUNDS
    assert profile["totals"]["files"] == N_FILES and profile["totals"]["bytes"] == sum(sizes)
    assert {p["prefix"]: p["files"] for p in profile["prefixes"]} == per_top
