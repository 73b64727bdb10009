"""The shared rate limits of ``lakeshift files`` on a fake clock: bandwidth cap, request budget.

Expected times are ``amount / rate``, worked out by hand, never with the limiter's own code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeshift.files.throttle import RateLimiter, RequestBudget, TokenBucket

MIB = 1 << 20


class FakeClock:
    """Monotonic seconds that move only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _limiter(path: Path | None, clock: FakeClock, tolerance: float = 0.25) -> RateLimiter:
    return RateLimiter(
        None if path is None else str(path), tolerance_s=tolerance, clock=clock, sleep=clock.sleep
    )


@pytest.mark.parametrize("chunk", [64 << 10, MIB, 8 * MIB])
def test_one_consumer_gets_the_whole_cap(tmp_path: Path, clock: FakeClock, chunk: int) -> None:
    lim = _limiter(tmp_path / "limits", clock)
    n = 100 * MIB // chunk
    for _ in range(n):
        lim.acquire("bytes", chunk, rate=10 * MIB)
    # n chunks at 10 MiB/s from a fresh limit (no burst at the start): n * chunk / rate
    assert clock.now - 1000.0 == pytest.approx(n * chunk / (10 * MIB), abs=1e-6)


def test_processes_sharing_the_file_share_one_cap(tmp_path: Path, clock: FakeClock) -> None:
    """Two handles on one file (two processes) reserving at the same instant queue up."""
    a, b = _limiter(tmp_path / "limits", clock), _limiter(tmp_path / "limits", clock)
    waits = [a.reserve("bytes", MIB, 10 * MIB), b.reserve("bytes", MIB, 10 * MIB)]
    assert waits == pytest.approx([0.1, 0.2])
    # 40 tasks over 4 handles, all starting now: the last one may go after 40 MiB / 10 MiB/s
    handles = [a, b, _limiter(tmp_path / "limits", clock), _limiter(tmp_path / "limits", clock)]
    last = max(handles[i % 4].reserve("bytes", MIB, 10 * MIB) for i in range(38))
    assert last == pytest.approx(4.0)


def test_an_idle_gap_allows_one_tolerance_of_burst_not_more(clock: FakeClock) -> None:
    lim = _limiter(None, clock, tolerance=0.25)
    lim.acquire("bytes", 10 * MIB, 10 * MIB)  # 1 s
    clock.now += 5.0  # idle
    assert lim.reserve("bytes", 2.5 * MIB, 10 * MIB) == pytest.approx(0.0)  # 0.25 s of cap
    assert lim.reserve("bytes", MIB, 10 * MIB) == pytest.approx(0.1)


def test_request_budget_is_per_top_level_prefix(tmp_path: Path, clock: FakeClock) -> None:
    lim = _limiter(tmp_path / "limits", clock)
    budget = RequestBudget(30.0, "lake", "raw/files", lim)
    base = "http://127.0.0.1:9000/lake/raw/files"
    for i in range(300):  # interleaved, one thread: prefixes a and b, 300 requests each
        budget.observe("PUT", f"{base}/a/day%20{i}/x.bin")
        budget.observe("GET", f"{base}/b/y-{i}.bin?partNumber=1")
    # each prefix has its own 30 req/s: 300 requests each take 10 s, not 20
    assert clock.now - 1000.0 == pytest.approx(300 / 30, abs=0.05)
    before = clock.now
    for _ in range(100):  # outside the target root, or another bucket: not counted
        budget.observe("GET", "http://127.0.0.1:9000/lake/raw/other/x")
        budget.observe("GET", "http://127.0.0.1:9000/elsewhere/raw/files/a/x")
    assert clock.now == before


def test_request_budget_prefixes(tmp_path: Path, clock: FakeClock) -> None:
    budget = RequestBudget(1.0, "b", "root", _limiter(None, clock))
    assert budget.prefix_of("root/a/b/c") == "a"
    assert budget.prefix_of("root/file.txt") == ""
    assert budget.prefix_of("root/") == ""  # a listing of the root
    assert budget.prefix_of("rootless/a") is None
    whole = RequestBudget(1.0, "b", "", _limiter(None, clock))
    assert whole.prefix_of("x/y") == "x"


def test_token_bucket_chunks_stay_small_under_a_cap() -> None:
    assert TokenBucket(None).chunk(8 * MIB) == 8 * MIB
    assert TokenBucket(10 * MIB).chunk(8 * MIB) == MIB  # a tenth of a second
    assert TokenBucket(100 << 10).chunk(8 * MIB) == 64 << 10  # never below 64 KiB
