"""A thread-safe token bucket that caps bytes per second.

The whole job's cap is shared by its concurrent tasks: each task gets ``cap / slots`` (see
:func:`per_task_rate`), and the threads inside one task share that task's bucket.

Example:
    >>> bucket = TokenBucket(rate=1 << 20)  # 1 MiB/s
    >>> bucket.consume(4096)
"""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """Blocks callers so that no more than ``rate`` bytes per second pass on average.

    Args:
        rate: bytes per second; ``None`` or 0 means unlimited.
        burst: bucket capacity in bytes (default: a quarter second of ``rate``, at least 64 KiB).
    """

    def __init__(self, rate: float | None, burst: float | None = None) -> None:
        self.rate = float(rate or 0)
        self.capacity = float(burst or max(self.rate / 4, 64 * 1024))
        self._tokens = 0.0  # start empty: a fresh task's bucket adds no burst to the job's cap
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def consume(self, n: int) -> None:
        """Take ``n`` bytes' worth of tokens, sleeping until they are available."""
        if self.rate <= 0 or n <= 0:
            return
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)


def per_task_rate(cap_bytes_per_s: float | None, slots: int) -> float | None:
    """Each concurrent task's share of the job-wide cap (``None`` when uncapped)."""
    if not cap_bytes_per_s:
        return None
    return cap_bytes_per_s / max(1, slots)
