"""Worker processes for ``--executor processes``: copy tasks outside the driver's interpreter.

On one machine, copy tasks are CPU and page-cache bound, so tasks run in separate Python
processes (no interpreter lock shared between them). Each worker is a fresh interpreter started
as ``python -m lakeshift.files.worker``: unlike :mod:`multiprocessing`'s spawn, it never
re-imports the caller's main module (a script without an ``if __name__ == "__main__"`` guard
is not run again). The driver sends pickled ``(CopyContext, Task)`` pairs on the worker's
standard input and reads back pickled ``(ok, counts-or-error)`` answers; standard output is
kept for those answers only (anything printed goes to standard error). A worker is killed with
its driver (Linux ``PR_SET_PDEATHSIG``): a killed run leaves no copier behind it.
"""

from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from lakeshift.files.copier import CopyContext
    from lakeshift.files.plan import Task


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker ends when its input closes
        pass


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer ``(ctx, task)`` requests from ``inp`` until it closes."""
    from lakeshift.files.copier import run_task

    while True:
        try:
            ctx, task = pickle.load(inp)
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, run_task(ctx, task))
        except Exception as exc:  # reported to the driver, which fails the job
            answer = (False, f"task {task.task_id}: {type(exc).__name__}: {exc}")
        pickle.dump(answer, out)
        out.flush()


def run_tasks(ctx: CopyContext, tasks: list[Task], workers: int) -> list[dict[str, int]]:
    """Run ``tasks`` on ``workers`` worker processes; counts in task order.

    Raises:
        RuntimeError: a task raised, or a worker died.
    """
    todo: queue.SimpleQueue[tuple[int, Task]] = queue.SimpleQueue()
    for item in enumerate(tasks):
        todo.put(item)
    results: list[dict[str, int] | None] = [None] * len(tasks)
    errors: list[str] = []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))

    def drive() -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lakeshift.files.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            while not errors:
                try:
                    i, task = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    pickle.dump((ctx, task), proc.stdin)
                    proc.stdin.flush()
                    ok, value = pickle.load(proc.stdout)
                except (EOFError, OSError, pickle.UnpicklingError) as exc:
                    errors.append(f"worker process died (exit {proc.poll()}): {exc}")
                    return
                if ok:
                    results[i] = value
                else:
                    errors.append(value)
        finally:
            proc.stdin.close()
            if proc.wait(timeout=60) != 0 and not errors:
                errors.append(f"worker process exited with {proc.returncode}")

    threads = [
        threading.Thread(target=drive, name=f"lakeshift-files-worker-{n}", daemon=True)
        for n in range(max(1, min(workers, len(tasks))))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    return [r for r in results if r is not None]


def main() -> None:
    """Worker entry point: requests on standard input, answers on a private standard output."""
    _die_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to standard error, never into the answer stream
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
