"""The planner: expected transfer time, what limits it, and whether it converges at all.

Pure functions; no I/O. The model:

* bandwidth time ``T_bw = bytes / bandwidth``;
* request time ``T_req = requests / request_limit`` — object stores cap requests per second per
  prefix; each file costs ``requests_per_file`` (list/head/complete) plus ``requests_per_part``
  per part of ``part_size`` (read + write);
* latency time ``T_lat = requests · latency / concurrency`` — small files are bound by round trips;
* window time ``T_win = bytes / (concurrency · window / rtt)`` — one TCP connection carries at
  most one window per round trip (``tcp_window`` bytes, ``latency`` as the RTT); off when no
  window is given;
* ``T0 = max(T_bw, T_req, T_lat, T_win)``; the largest term is the binding limit; the effective
  rate is ``e = bytes / T0``.

While the copy runs the source keeps changing at ``change_rate``; those changes must be copied
too, during which more accumulate: ``T = T0 · (1 + r + r^2 + …) = T0 / (1 - r)`` where ``r`` is
the share of the binding capacity the changes arriving in one second take. When ``r ≥ 1`` the
series diverges: the copy never catches up.

Without a known change mix the changes are assumed to look like the bulk (same requests per
byte): ``r = change_rate / e``. With ``change_files`` (files to copy again per second, e.g. the
``events_per_s`` of a ``lakeshift scan --since`` profile) of ``change_file_size`` (its median
changed size) and ``delete_rate`` (deletes per second, one request each), the changes' own
work is put against each limit and the largest share counts:
``r = max(change_rate / bandwidth, change_requests / (request_limit · prefixes),
change_requests · latency / concurrency, change_rate / (concurrency · window / rtt))`` —
so small, frequent changes can fail to converge on requests while bytes are no problem.

Example:
    >>> est = estimate_transfer(100 * 2**30, 1, bandwidth=100 * 2**20, change_rate=25 * 2**20)
    >>> round(est.base_seconds), round(est.total_seconds, 2), est.binding
    (1024, 1365.33, 'bandwidth')
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TransferEstimate:
    """The planner's answer.

    Attributes:
        bytes: bytes to move.
        files: files to move.
        requests: object-store requests needed.
        bandwidth_seconds: time if only bandwidth limited.
        request_seconds: time if only the request rate limited.
        latency_seconds: time if only round-trip latency limited.
        base_seconds: ``T0``, the time for a frozen source.
        binding: ``bandwidth``, ``requests`` or ``latency``.
        effective_rate: bytes per second actually achieved.
        change_ratio: ``r = change_rate / effective_rate``.
        converges: whether the copy catches up with the changes.
        total_seconds: ``T0 / (1 - r)``, ``inf`` when it does not converge.
        window_seconds: time if only the TCP window / RTT of each connection limited.
        bytes_sent: bytes sent in all rounds, ``bytes / (1 - r)`` (``inf`` when diverging).
        concurrency: requests (connections) in flight assumed.
        concurrency_needed: the smallest concurrency at which neither latency nor the TCP
            window binds any more (the other limits unchanged).
        change_requests: object-store requests per second the changes need (when
            ``change_files`` was given, else those of bulk-like changes).
    """

    bytes: int
    files: int
    requests: int
    bandwidth_seconds: float
    request_seconds: float
    latency_seconds: float
    base_seconds: float
    binding: str
    effective_rate: float
    change_ratio: float
    converges: bool
    total_seconds: float
    window_seconds: float = 0.0
    bytes_sent: float = 0.0
    concurrency: int = 1
    concurrency_needed: int = 1
    change_requests: float = 0.0

    def limits(self) -> dict[str, float]:
        """Every limit side by side: seconds each would take alone (frozen source)."""
        return {
            "bandwidth": self.bandwidth_seconds,
            "requests": self.request_seconds,
            "latency": self.latency_seconds,
            "window": self.window_seconds,
        }

    def describe(self) -> str:
        """One line for people."""
        if not self.converges:
            return (
                f"does not converge: changes arrive at {self.change_ratio:.2f}x the effective rate "
                f"({self.binding}-bound); the copy never catches up"
            )
        return (
            f"{format_duration(self.total_seconds)} ({format_duration(self.base_seconds)} for a "
            f"frozen source, x{1 / (1 - self.change_ratio):.2f} for changes), {self.binding}-bound"
            + (
                f"; concurrency {self.concurrency_needed} would lift the {self.binding} limit"
                if self.binding in ("latency", "window")
                and self.concurrency_needed > self.concurrency
                else ""
            )
        )


def requests_needed(
    files: int, parts: int, requests_per_file: float = 2.0, requests_per_part: float = 2.0
) -> int:
    """Object-store requests for ``files`` files split into ``parts`` parts in total.

    Example:
        >>> requests_needed(10, 30)
        80
    """
    return math.ceil(files * requests_per_file + parts * requests_per_part)


def parts_for(total_bytes: int, files: int, part_size: int) -> int:
    """Parts when each of ``files`` equal files is split into ``part_size`` chunks (≥ 1 each).

    Example:
        >>> parts_for(10 * 2**20, 2, 2 * 2**20)
        6
    """
    if files <= 0:
        return 0
    per_file = total_bytes / files
    return files * max(1, math.ceil(per_file / part_size))


def parts_for_buckets(buckets: list[tuple[int, int]], part_size: int) -> int:
    """Parts of a size distribution: ``(files, bytes)`` per bucket, each bucket's mean size.

    Example:
        >>> parts_for_buckets([(1000, 1000 * 2**10), (2, 2 * 300 * 2**20)], 128 * 2**20)
        1006
    """
    return sum(parts_for(nbytes, files, part_size) for files, nbytes in buckets)


def converging_total(base_seconds: float, change_ratio: float) -> float:
    """``T0 / (1 - r)``, the sum of the catch-up series; ``inf`` when ``r ≥ 1``.

    Example:
        >>> converging_total(100.0, 0.5)
        200.0
        >>> converging_total(100.0, 1.0)
        inf
    """
    if change_ratio >= 1:
        return math.inf
    return base_seconds / (1 - change_ratio)


def estimate_transfer(
    total_bytes: int,
    files: int,
    *,
    bandwidth: float,
    change_rate: float = 0.0,
    request_limit: float | None = None,
    latency: float = 0.0,
    concurrency: int = 1,
    part_size: int = 128 * 2**20,
    requests_per_file: float = 2.0,
    requests_per_part: float = 2.0,
    requests: int | None = None,
    prefixes: float = 1,
    tcp_window: int | None = None,
    change_files: float | None = None,
    change_file_size: float | None = None,
    delete_rate: float = 0.0,
) -> TransferEstimate:
    """Estimate a transfer (see the module docstring for the model).

    Args:
        total_bytes: bytes to move.
        files: number of files (or objects).
        bandwidth: bytes per second available.
        change_rate: bytes per second the source changes while being copied.
        request_limit: object-store requests per second allowed (``None``: unlimited).
        latency: seconds per request round trip.
        concurrency: requests in flight at once.
        part_size: bytes per part of a multipart transfer.
        requests_per_file: fixed requests per file.
        requests_per_part: requests per part.
        requests: the request count when known (e.g. counted PUTs); overrides the model.
        prefixes: prefixes the keys spread over; ``request_limit`` applies per prefix (a
            fraction is fine: with uneven prefixes, objects / objects of the busiest one).
        tcp_window: bytes one connection has in flight per round trip (``None``: no limit).
        change_files: files per second to copy again (``None``: changes look like the bulk).
        change_file_size: their typical (median) size; default ``change_rate / change_files``.
        delete_rate: files deleted per second (one request each; with ``change_files``).

    Raises:
        ValueError: non-positive bandwidth or concurrency, negative sizes.
    """
    if bandwidth <= 0 or concurrency <= 0 or part_size <= 0 or prefixes <= 0:
        raise ValueError("bandwidth, concurrency, part_size and prefixes must be positive")
    if total_bytes < 0 or files < 0 or change_rate < 0 or latency < 0 or delete_rate < 0:
        raise ValueError("sizes, counts, change rate and latency must not be negative")
    if (change_files or 0) < 0 or (change_file_size or 0) < 0:
        raise ValueError("sizes, counts, change rate and latency must not be negative")
    parts = parts_for(total_bytes, files, part_size)
    if requests is not None:
        reqs = requests
    else:
        reqs = requests_needed(files, parts, requests_per_file, requests_per_part)
    t_bw = total_bytes / bandwidth
    t_req = reqs / (request_limit * prefixes) if request_limit else 0.0
    t_lat = reqs * latency / concurrency
    per_conn = tcp_window / latency if tcp_window and latency > 0 else 0.0
    t_win = total_bytes / (concurrency * per_conn) if per_conn else 0.0
    terms = {"bandwidth": t_bw, "requests": t_req, "latency": t_lat, "window": t_win}
    binding = max(terms, key=lambda k: terms[k])
    base = terms[binding]
    rate = total_bytes / base if base > 0 else bandwidth
    if change_files is None:  # changes with the bulk's mix: the share of whatever binds
        ratio = change_rate / rate if rate > 0 else math.inf
        c_reqs = change_rate * reqs / total_bytes if total_bytes else 0.0
    else:
        size = change_file_size
        if size is None:
            size = change_rate / change_files if change_files else 0.0
        c_parts = change_files * max(1, math.ceil(size / part_size)) if change_files else 0.0
        c_reqs = change_files * requests_per_file + c_parts * requests_per_part + delete_rate
        shares = [
            change_rate / bandwidth,
            c_reqs / (request_limit * prefixes) if request_limit else 0.0,
            c_reqs * latency / concurrency,
            change_rate / (concurrency * per_conn) if per_conn else 0.0,
        ]
        ratio = max(shares)
    total = converging_total(base, ratio)
    floor = max(t_bw, t_req)
    needed = concurrency
    if floor > 0 and max(t_lat, t_win) > floor:
        needed = math.ceil(concurrency * max(t_lat, t_win) / floor)
    return TransferEstimate(
        bytes=total_bytes,
        files=files,
        requests=reqs,
        bandwidth_seconds=t_bw,
        request_seconds=t_req,
        latency_seconds=t_lat,
        base_seconds=base,
        binding=binding,
        effective_rate=rate,
        change_ratio=ratio,
        converges=math.isfinite(total),
        total_seconds=total,
        window_seconds=t_win,
        bytes_sent=total_bytes / (1 - ratio) if ratio < 1 else math.inf,
        concurrency=concurrency,
        concurrency_needed=needed,
        change_requests=c_reqs,
    )


def format_duration(seconds: float) -> str:
    """``3h 25m``-style duration; ``never`` for infinity.

    Example:
        >>> format_duration(3725)
        '1h 2m 5s'
    """
    if not math.isfinite(seconds):
        return "never"
    s = round(seconds)
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    parts = [
        f"{d}d" if d else "",
        f"{h}h" if h else "",
        f"{m}m" if m else "",
        f"{s}s" if s or not (d or h or m) else "",
    ]
    return " ".join(p for p in parts if p)
