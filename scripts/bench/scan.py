"""Benchmark `lakeshift scan` against `find -printf '%s\\n'` on the same tree, same run.

One command: generates a tree of 1,000,000 empty files (64 top-level folders of 100-file
folders; empty so that the tree costs inodes, not disk), then lists it alternately with
`find ROOT -type f -printf '%s\\n'` and with `lakeshift scan ROOT --out profile.json` (as a user
runs it, CLI start-up included), checks that both saw every file, and prints files per second and
the ratio lakeshift/find per round and the median. Target (issue #18): at least 0.5x find's rate.

    .venv/bin/python scripts/bench/scan.py [--files N] [--rounds N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_tree(root: Path, files: int, tops: int = 64, per_dir: int = 100) -> None:
    for i in range(0, files, per_dir):
        folder = root / f"top{(i // per_dir) % tops:02d}" / f"d{i // (per_dir * tops):05d}"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(min(per_dir, files - i)):
            fd = os.open(folder / f"f{k:03d}", os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)


def time_find(root: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    out = subprocess.run(
        ["find", str(root), "-type", "f", "-printf", "%s\n"],
        capture_output=True,
        check=True,
    ).stdout
    return time.perf_counter() - t0, out.count(b"\n")


def time_scan(root: Path, out: Path, threads: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lakeshift.cli", "scan", str(root), "--out", str(out),
         "--threads", str(threads)],
        capture_output=True,
        check=True,
        cwd=REPO,
    )  # fmt: skip
    return time.perf_counter() - t0, int(json.loads(out.read_text())["totals"]["files"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lakeshift-bench-scan-") as tmp:
        root = Path(tmp) / "tree"
        t0 = time.perf_counter()
        make_tree(root, args.files)
        print(f"tree: {args.files} files in {time.perf_counter() - t0:.1f} s")
        os.sync()  # the new inodes' writeback would otherwise run during the first rounds
        time_find(root)  # warm the dentry/inode caches for both
        ratios = []
        for r in range(args.rounds):
            f_s, f_n = time_find(root)
            s_s, s_n = time_scan(root, Path(tmp) / "profile.json", args.threads)
            assert f_n == s_n == args.files, (f_n, s_n)
            ratio = (s_n / s_s) / (f_n / f_s)
            ratios.append(ratio)
            print(
                f"round {r + 1}: find {f_n / f_s:,.0f} files/s ({f_s:.1f} s), "
                f"lakeshift scan {s_n / s_s:,.0f} files/s ({s_s:.1f} s): {ratio:.2f}x find"
            )
        median = statistics.median(ratios)
        print(f"scan/find rate ratio (median of {args.rounds}): {median:.2f}x (target >= 0.5x)")
        return 0 if median >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
