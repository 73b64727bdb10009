"""Rate limits shared by every task of a run: the bandwidth cap and the per-prefix request budget.

One :class:`RateLimiter` per run and machine holds a table of limits (``bytes`` for the
bandwidth cap, ``req:<prefix>`` for the request budget of each top-level prefix of the target)
in a small file mapped into memory (``/dev/shm`` where it exists). Every thread and every
process of the run on that machine (worker processes, Spark's Python workers) opens the same
file, so one file alone gets the whole cap, many files share it, and the total never exceeds
it. Each limit is a GCRA ("virtual scheduling") cell: its *theoretical arrival time* advances
by ``amount / rate`` per use, and a caller waits until that time minus a small tolerance
(``tolerance_s``, default 0.25 s, the largest burst after an idle gap). A fresh cell starts a
tolerance ahead of now: no burst at the start of a run. The cell is updated under an
exclusive ``flock`` on the file (plus a thread lock); the wait happens outside it.

Example:
    >>> limiter = RateLimiter(None)  # in-process only
    >>> limiter.acquire("bytes", 4096, rate=1 << 30) >= 0
    True
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

SLOTS = 1 << 16  # limits per run (a sparse 1 MiB file; a full table reuses a cell)
_CELL = struct.Struct("<Qd")  # key hash, theoretical arrival time (monotonic seconds)
SIZE = SLOTS * _CELL.size


def limiter_path(run_id: str) -> str:
    """Where run ``run_id`` keeps its shared limits on this machine."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return os.path.join(base or tempfile.gettempdir(), f"lakeshift-files-{run_id}.limits")


def _hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") | 1


class RateLimiter:
    """Rate limits shared by the threads (and, with a ``path``, processes) of one machine.

    Args:
        path: the shared file (created when missing); ``None`` keeps the table in memory.
        tolerance_s: largest burst after an idle gap, in seconds of each limit's rate.
        clock: monotonic seconds (system-wide on Linux, so equal across processes).
        sleep: how to wait (tests pass a fake clock's).
    """

    def __init__(
        self,
        path: str | None,
        *,
        tolerance_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self.tolerance = tolerance_s
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._map: mmap.mmap | bytearray
        if path is None:
            self._map = bytearray(SIZE)
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if os.fstat(fd).st_size < SIZE:
            os.ftruncate(fd, SIZE)  # zeros; idempotent when two processes race here
        self._fd = fd
        self._map = mmap.mmap(fd, SIZE)

    def close(self) -> None:
        """Unmap and close the file (the file itself stays; see :func:`remove_limiter`)."""
        if isinstance(self._map, mmap.mmap):
            self._map.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def reserve(self, key: str, amount: float, rate: float) -> float:
        """Book ``amount`` units of limit ``key`` at ``rate`` units/s; seconds to wait first."""
        if rate <= 0 or amount <= 0:
            return 0.0
        h = _hash(key)
        with self._locked():
            now = self._clock()
            idx = h % SLOTS
            for _ in range(SLOTS):
                off = idx * _CELL.size
                cell_key, tat = _CELL.unpack_from(self._map, off)
                if cell_key in (h, 0):
                    break
                idx = (idx + 1) % SLOTS
            if cell_key != h:  # a new limit: no burst at its start
                tat = now + self.tolerance
            tat = max(tat, now) + amount / rate
            _CELL.pack_into(self._map, off, h, tat)
        return max(0.0, tat - self.tolerance - now)

    def acquire(self, key: str, amount: float, rate: float) -> float:
        """Like :meth:`reserve`, then wait; returns the seconds waited."""
        wait = self.reserve(key, amount, rate)
        if wait > 0:
            self._sleep(wait)
        return wait


def remove_limiter(path: str) -> None:
    """Delete a run's shared limits file (the driver does this at the end of the run)."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


_OPEN: dict[str, RateLimiter] = {}
_OPEN_LOCK = threading.Lock()


def shared_limiter(path: str) -> RateLimiter:
    """This process's handle on the limits file ``path`` (opened once per process)."""
    with _OPEN_LOCK:
        lim = _OPEN.get(path)
        if lim is None or not os.path.exists(path):
            lim = RateLimiter(path)
            _OPEN[path] = lim
            for old in [p for p in _OPEN if p != path]:  # an earlier run's file
                _OPEN.pop(old).close()
        return lim


class TokenBucket:
    """The bandwidth cap as seen by the copy loops: ``consume(n)`` after moving ``n`` bytes.

    Args:
        rate: bytes per second; ``None`` or 0 means unlimited.
        burst: largest burst in bytes (default: a quarter second of ``rate``).
        limiter: the run's shared limits (default: a private in-memory one).
    """

    def __init__(
        self, rate: float | None, burst: float | None = None, limiter: RateLimiter | None = None
    ) -> None:
        self.rate = float(rate or 0)
        if limiter is None and self.rate > 0:
            tolerance = (burst / self.rate) if burst else 0.25
            limiter = RateLimiter(None, tolerance_s=tolerance)
        self._limiter = limiter

    def consume(self, n: int) -> None:
        """Take ``n`` bytes' worth of the cap, sleeping until they are available."""
        if self.rate > 0 and n > 0 and self._limiter is not None:
            self._limiter.acquire("bytes", n, self.rate)

    def chunk(self, size: int) -> int:
        """A copy chunk of at most ``size`` bytes that keeps capped transfers smooth.

        With a cap, chunks are at most a tenth of a second's worth (at least 64 KiB), so the
        cap is met over short windows too, not just on average.
        """
        if self.rate <= 0:
            return size
        return max(64 << 10, min(size, int(self.rate / 10)))


class RequestBudget:
    """The per-prefix request budget of an S3 target (``--max-requests-per-s``).

    Every request lakeshift sends to the target bucket below the target root draws one token
    from the budget of its *top-level prefix*: the first folder of the key below the target
    (``s3://b/raw/2026-01-01/x`` under ``s3://b/raw`` is ``2026-01-01``; files directly in the
    root and listings of the root share the root's budget ``""``). Install it with
    :func:`lakeshift.sources.fs.set_request_observer`.

    Args:
        rate: requests per second per prefix.
        bucket: the target bucket.
        root: the target's key prefix (no slashes at the ends; "" for a whole bucket).
        limiter: the run's shared limits.
    """

    def __init__(self, rate: float, bucket: str, root: str, limiter: RateLimiter) -> None:
        self.rate, self.bucket, self.root, self.limiter = rate, bucket, root, limiter

    def prefix_of(self, key: str) -> str | None:
        """The top-level prefix of ``key`` below the root, or ``None`` when outside it."""
        if self.root:
            if key == self.root or key == self.root + "/":
                return ""
            if not key.startswith(self.root + "/"):
                return None
            key = key[len(self.root) + 1 :]
        return key.split("/", 1)[0] if "/" in key else ""

    def observe(self, method: str, url: str) -> None:
        """Draw one token for a request about to be sent (waits when the budget is spent)."""
        from lakeshift.sources.fs import s3_request_key

        del method  # every request counts alike
        key = s3_request_key(url, self.bucket)
        if key is None:
            return
        prefix = self.prefix_of(key)
        if prefix is not None:
            self.limiter.acquire(f"req:{prefix}", 1, self.rate)
