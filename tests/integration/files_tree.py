"""Test trees for lakeshift files: awkward names, zero-byte files, empty folders; SHA-256 maps."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

LONG = "l" * 190 + "-long.dat"  # ~200 characters, under the 255-byte limit of most filesystems
AWKWARD = [
    "plain.txt",
    "with space/file name.txt",
    "unicodé/数据/ファイル.bin",
    "hash#and%percent/a#b%20c.log",
    f"deep/{LONG}",
    "zero/empty.bin",
    "a/b/c/d/e/nested.csv",
    "sizes/one_chunk.bin",
]
EMPTY_DIRS = ["empty_dir", "nested/empty/leaf"]


def make_tree(root: Path, seed: int = 7, big: int = 300_000) -> dict[str, str]:
    """Write the awkward tree under ``root``; return rel path -> SHA-256 of what was written."""
    rng = random.Random(seed)
    expected: dict[str, str] = {}
    for i, rel in enumerate(AWKWARD):
        size = (
            0 if rel.startswith("zero/") else (big if rel.startswith("sizes/") else 100 + i * 997)
        )
        data = rng.randbytes(size)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expected[rel] = hashlib.sha256(data).hexdigest()
    for d in EMPTY_DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    return expected


def sha_tree(
    root: Path, skip: tuple[str, ...] = ("_lakeshift_files", ".lakeshift-tmp")
) -> dict[str, str]:
    """rel path -> SHA-256 of every file under ``root`` (lakeshift's own folders left out)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == root and d in skip)]
        for name in filenames:
            p = Path(dirpath) / name
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
