"""Test job for the coordinator: records that it ran, optionally sleeps and fails.

    marker_job.py OUT_DIR TABLE STEP ATTEMPT [--sleep S] [--fail-attempts N] [--exit CODE]

Appends ``TABLE STEP ATTEMPT`` to ``OUT_DIR/runs.txt`` (one line per execution, so a test can see
whether anything ran twice), sleeps, then exits 1 with a transient-looking error while ATTEMPT ≤ N,
or with CODE (default 0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("table")
    ap.add_argument("step")
    ap.add_argument("attempt", type=int)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--fail-attempts", type=int, default=0)
    ap.add_argument("--exit", type=int, default=0)
    args = ap.parse_args(argv)
    with (Path(args.out) / "runs.txt").open("a", encoding="utf-8") as fh:
        fh.write(f"{args.table} {args.step} {args.attempt}\n")
    time.sleep(args.sleep)
    if args.attempt <= args.fail_attempts:
        print("java.net.ConnectException: Connection refused (simulated)", file=sys.stderr)
        return 1
    if args.exit:
        print(f"simulated failure, exit {args.exit}", file=sys.stderr)
    return args.exit


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
