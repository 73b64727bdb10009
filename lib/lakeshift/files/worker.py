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

import contextlib
import logging
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

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker ends when its input closes
        pass


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer ``(ctx, task)`` requests from ``inp`` until it closes.

    The cyclic garbage collector runs once after each task instead of every few hundred
    allocations inside it (a task's objects are records and buffers, not cycles), and the
    modules imported before the first request are frozen out of its scans.
    """
    import gc

    import pyarrow.parquet  # noqa: F401 - the journals' writer, imported before work arrives

    from lakeshift.files.checksum import _native
    from lakeshift.files.copier import run_task

    _native()  # loads the CRC32C library
    gc.collect()
    gc.freeze()
    while True:
        try:
            ctx, task = pickle.load(inp)
        except EOFError:
            return
        gc.disable()
        try:
            answer: tuple[bool, Any] = (True, run_task(ctx, task))
        except Exception as exc:  # reported to the driver, which fails the job
            answer = (False, f"task {task.task_id}: {type(exc).__name__}: {exc}")
        finally:
            gc.enable()
        pickle.dump(answer, out)
        out.flush()
        gc.collect()


class Pool:
    """``workers`` worker processes, started at once so their start overlaps the driver's work.

    The driver starts a pool before it lists the source: each worker's interpreter start and
    imports (the copier, pyarrow for the journals) then run while the driver lists, plans and
    saves the manifest. :meth:`run` may be called more than once; :meth:`close` (or leaving
    the ``with`` block) ends the workers.
    """

    def __init__(self, workers: int) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._procs = [
            subprocess.Popen(
                [sys.executable, "-m", "lakeshift.files.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            for _ in range(max(1, workers))
        ]

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, ctx: CopyContext, tasks: list[Task]) -> list[dict[str, int]]:
        """Run ``tasks`` on the pool's workers (largest first, as planned); counts in task order.

        Raises:
            RuntimeError: a task raised, or a worker died.
        """
        todo: queue.SimpleQueue[tuple[int, Task]] = queue.SimpleQueue()
        for item in enumerate(tasks):
            todo.put(item)
        results: list[dict[str, int] | None] = [None] * len(tasks)
        errors: list[str] = []

        def drive(proc: subprocess.Popen[bytes]) -> None:
            assert proc.stdin is not None and proc.stdout is not None
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

        live = [p for p in self._procs if p.poll() is None]
        if not live and tasks:
            raise RuntimeError("worker processes died before any task was sent")
        threads = [
            threading.Thread(target=drive, args=(p,), name=f"lakeshift-files-worker-{n}")
            for n, p in enumerate(live[: max(1, len(tasks))])
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            self.close()
            raise RuntimeError("; ".join(errors[:3]))
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Close the workers' input and wait for them to end (a worker that hangs is killed)."""
        errors = []
        for proc in self._procs:
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):  # its end is gone already
                    proc.stdin.close()
        for proc in self._procs:
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
            if code != 0:
                errors.append(code)
        self._procs = []
        if errors:
            log.debug("files: worker processes exited with %s", errors)


def run_tasks(ctx: CopyContext, tasks: list[Task], workers: int) -> list[dict[str, int]]:
    """Run ``tasks`` on a new pool of ``workers`` processes (see :class:`Pool`).

    Raises:
        RuntimeError: a task raised, or a worker died.
    """
    with Pool(min(workers, max(1, len(tasks)))) as pool:
        return pool.run(ctx, tasks)


def main() -> None:
    """Worker entry point: requests on standard input, answers on a private standard output."""
    _die_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to standard error, never into the answer stream
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
