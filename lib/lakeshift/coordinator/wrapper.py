"""Runs one job command detached from the coordinator and records how it ended.

``python -m lakeshift.coordinator.wrapper --dir DIR --token TOKEN -- CMD...``

1. Claims ``DIR/TOKEN.pid`` atomically (``os.link`` of a temp file: fails if it exists). A second
   wrapper with the same token — a coordinator that restarted and could not tell whether its
   launch happened — exits at once without running anything, so a job never runs twice.
2. Runs the command (its output goes to the wrapper's own stdout/stderr, the job's log).
3. Writes ``DIR/TOKEN.exit`` atomically (temp file + rename) with the exit code.

SIGTERM/SIGINT are forwarded to the command; the exit file then records the signal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ALREADY_CLAIMED = 75


def _atomic_write(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def claim(folder: Path, token: str) -> bool:
    """Create ``TOKEN.pid`` with this process's id; False if another wrapper has it."""
    target = folder / f"{token}.pid"
    tmp = folder / f".{token}.{os.getpid()}.claim"
    tmp.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}), encoding="utf-8")
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="lakeshift-job-wrapper")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not claim(folder, args.token):
        print(f"wrapper: token {args.token} already claimed; not running twice", file=sys.stderr)
        return ALREADY_CLAIMED
    started = time.time()
    try:
        child = subprocess.Popen(cmd)
    except OSError as exc:
        print(f"wrapper: cannot start {cmd[:1]}: {exc}", file=sys.stderr)
        _atomic_write(
            folder / f"{args.token}.exit",
            {"code": 127, "started": started, "finished": time.time()},
        )
        return 127

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    _atomic_write(
        folder / f"{args.token}.exit",
        {"code": code, "child_pid": child.pid, "started": started, "finished": time.time()},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
