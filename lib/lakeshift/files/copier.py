"""Executor side: copy the files of one task with streaming checksums, verify, commit atomically.

For each file:

1. stat the source (size, mtime) — gone means ``vanished``;
2. with ``adopt`` (or ``--update``) and a target of the same size: checksum both sides; equal
   means the file is recorded as verified without writing (``adopted``);
3. stream source → staging file under ``<dst>/.lakeshift-tmp/`` while computing the checksum,
   throttled by the task's token bucket;
4. stat the source again: if the bytes read, the size or the mtime differ from step 1, the file
   changed while being copied: the staging file is dropped and the copy retried (up to
   ``retries`` times), then reported failed;
5. verify: ``readback`` re-reads the staging file and compares checksum and size with the
   stream's; ``stream`` compares the staged file's size with the bytes streamed;
6. commit: move the staging file to the final name (rename / S3 copy), optionally set mtime,
   and (on S3, where the move is a server-side copy) check the final size.

This module runs inside Spark tasks (``rdd.mapPartitions``) or in a local thread pool.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeshift.files.checksum import new_hasher
from lakeshift.files.manifest import JournalWriter, Record
from lakeshift.files.throttle import TokenBucket
from lakeshift.sinks import fs as sink_fs
from lakeshift.sources import fs as source_fs

if TYPE_CHECKING:
    from lakeshift.files.plan import PlannedFile, Task
    from lakeshift.sources.fs import Location

# Test-only: seconds to sleep after each file (lets a test kill a run mid-copy).
DELAY_ENV = "LAKESHIFT_FILES_TEST_DELAY"

# Test-only, in-process: called as hook(rel, bytes_so_far) after each chunk read.
_HOOK: Callable[[str, int], None] | None = None


def set_test_hook(hook: Callable[[str, int], None] | None) -> None:
    """Install (or clear) an in-process hook called after each chunk read (tests only)."""
    global _HOOK  # noqa: PLW0603
    _HOOK = hook


@dataclass(frozen=True)
class CopyContext:
    """Everything a task needs; small and picklable (no filesystem objects, no secrets)."""

    src: str
    dst: str
    state: str
    run_id: str
    checksum: str = "crc32c"
    verify: str = "readback"
    update: bool = False
    preserve: bool = False
    retries: int = 2
    chunk_bytes: int = 8 << 20
    threads: int = 4
    rate: float | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None

    def locations(self) -> tuple[Location, Location, Location]:
        """Resolve source, target and state locations (filesystems are cached per process)."""
        opts = source_fs.S3Options(self.s3_endpoint, self.s3_region)
        return (
            source_fs.resolve(self.src, opts),
            source_fs.resolve(self.dst, opts),
            source_fs.resolve(self.state, opts),
        )


_FREE = TokenBucket(None)  # read-back of our own staged bytes is not transfer: not throttled


class _Vanished(Exception):
    pass


def _checksum_of(
    loc: Location, path: str, algo: str, chunk: int, bucket: TokenBucket
) -> tuple[str, int]:
    h = new_hasher(algo)
    n = 0
    with source_fs.open_path(loc, path) as inp:
        while True:
            buf = inp.read(chunk)
            if not buf:
                break
            bucket.consume(len(buf))
            h.update(buf)
            n += len(buf)
    return h.hexdigest(), n


def _stream(
    ctx: CopyContext, src: Location, dst: Location, rel: str, *, staging: str, bucket: TokenBucket
) -> tuple[str, int]:
    h = new_hasher(ctx.checksum)
    n = 0
    hook = _HOOK
    try:
        inp = source_fs.open_input(src, rel)
    except FileNotFoundError as exc:
        raise _Vanished from exc
    with inp, sink_fs.open_output(dst, staging) as out:
        while True:
            buf = inp.read(ctx.chunk_bytes)
            if not buf:
                break
            bucket.consume(len(buf))
            h.update(buf)
            out.write(buf)
            n += len(buf)
            if hook is not None:
                hook(rel, n)
    return h.hexdigest(), n


def _put_small(
    ctx: CopyContext,
    src: Location,
    dst: Location,
    rel: str,
    *,
    st0: source_fs.FileEntry,
    bucket: TokenBucket,
) -> dict[str, str] | None:
    """Object-store fast path for a file that fits one buffer: a single PUT to the final key.

    One PUT is atomic on S3 (the object appears whole or not at all), so no staging copy is
    needed. Returns the record fields, or ``None`` when the source changed while being read.
    """
    h = new_hasher(ctx.checksum)
    parts: list[bytes] = []
    n = 0
    try:
        inp = source_fs.open_input(src, rel)
    except FileNotFoundError as exc:
        raise _Vanished from exc
    with inp:
        while True:
            buf = inp.read(ctx.chunk_bytes)
            if not buf:
                break
            bucket.consume(len(buf))
            h.update(buf)
            parts.append(buf)
            n += len(buf)
            if _HOOK is not None:
                _HOOK(rel, n)
    st1 = source_fs.stat(src, rel)
    if st1 is None:
        raise _Vanished
    if n != st0.size or not _same(st0, st1):
        return None
    digest = h.hexdigest()
    _test_delay()
    sink_fs.put_object(dst, rel, b"".join(parts))
    if ctx.verify == "readback":
        back, back_n = _checksum_of(dst, dst.path(rel), ctx.checksum, ctx.chunk_bytes, _FREE)
        ok = back == digest and back_n == n
    else:
        final = source_fs.stat(dst, rel)
        ok = final is not None and final.size == n
    if not ok:
        sink_fs.remove(dst, dst.path(rel))
        return {"status": "failed", "action": "failed", "reason": "target checksum mismatch"}
    _test_delay()
    return {"checksum": digest, "status": "verified", "action": "copied"}


def _test_delay() -> None:
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay > 0:
        time.sleep(delay / 2)


def _same(a: source_fs.FileEntry, b: source_fs.FileEntry | None) -> bool:
    return b is not None and a.size == b.size and a.mtime_ns == b.mtime_ns


def copy_file(
    ctx: CopyContext,
    locs: tuple[Location, Location, Location],
    f: PlannedFile,
    bucket: TokenBucket,
) -> Record:
    """Copy one file (see the module docstring) and return its manifest record."""
    src, dst, _ = locs

    def rec(st: source_fs.FileEntry | None, **kw: object) -> Record:
        size = st.size if st else f.size
        mtime = st.mtime_ns if st else f.mtime_ns
        r = Record(f.rel, size, mtime, algo=ctx.checksum, run_id=ctx.run_id, **kw)  # type: ignore[arg-type]
        r.updated_ns = time.time_ns()
        return r

    changed = 0
    error = ""
    for _attempt in range(ctx.retries + 1):
        staging = ""
        try:
            st0 = source_fs.stat(src, f.rel)
            if st0 is None or st0.is_dir:
                return rec(None, status="failed", action="failed", reason="vanished from source")
            if f.adopt or ctx.update:
                cur = source_fs.stat(dst, f.rel)
                if cur is not None and not cur.is_dir and cur.size == st0.size:
                    s_sum, _ = _checksum_of(
                        src, src.path(f.rel), ctx.checksum, ctx.chunk_bytes, bucket
                    )
                    d_sum, _ = _checksum_of(
                        dst, dst.path(f.rel), ctx.checksum, ctx.chunk_bytes, bucket
                    )
                    if s_sum == d_sum and _same(st0, source_fs.stat(src, f.rel)):
                        if ctx.preserve:
                            sink_fs.set_mtime(dst, f.rel, st0.mtime_ns)
                        return rec(st0, checksum=s_sum, status="verified", action="adopted")
            if dst.kind == "s3" and st0.size <= ctx.chunk_bytes:
                r = _put_small(ctx, src, dst, f.rel, st0=st0, bucket=bucket)
                if r is None:
                    changed += 1
                    continue
                return rec(st0, **r)
            staging = sink_fs.new_staging_path(dst, ctx.run_id)
            digest, n = _stream(ctx, src, dst, f.rel, staging=staging, bucket=bucket)
            st1 = source_fs.stat(src, f.rel)
            if st1 is None:
                sink_fs.remove(dst, staging)
                return rec(st0, status="failed", action="failed", reason="vanished from source")
            if n != st0.size or not _same(st0, st1):
                sink_fs.remove(dst, staging)
                changed += 1
                continue
            if ctx.verify == "readback":
                back, back_n = _checksum_of(dst, staging, ctx.checksum, ctx.chunk_bytes, _FREE)
                ok = back == digest and back_n == n
            else:
                staged = dst.fs.get_file_info(staging)
                ok = staged.size == n
            if not ok:
                sink_fs.remove(dst, staging)
                return rec(st0, status="failed", action="failed", reason="target checksum mismatch")
            _test_delay()  # staged, not committed: a kill here leaves only a staging file
            sink_fs.commit(dst, staging, f.rel, st0.mtime_ns if ctx.preserve else None)
            if dst.kind == "s3":  # a server-side copy, not a rename: check what landed
                final = source_fs.stat(dst, f.rel)
                if final is None or final.size != n:
                    return rec(st0, status="failed", action="failed", reason="target size mismatch")
            _test_delay()  # committed, not yet journaled: the next run adopts it
            return rec(st0, checksum=digest, status="verified", action="copied")
        except _Vanished:
            return rec(None, status="failed", action="failed", reason="vanished from source")
        except Exception as exc:  # one file's failure must not stop the task
            if staging:
                with contextlib.suppress(OSError):
                    sink_fs.remove(dst, staging)
            error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            if _attempt < ctx.retries:  # transient store errors (timeouts, throttling): retry
                time.sleep(0.5 * (_attempt + 1))
                continue
            return rec(None, status="failed", action="failed", reason=error)
    reason = f"source changed during copy ({changed} attempts)" if changed else error
    return rec(None, status="failed", action="failed", reason=reason)


def run_task(ctx: CopyContext, task: Task) -> dict[str, int]:
    """Copy every file of ``task``; journal each record; return counts for the driver."""
    locs = ctx.locations()
    bucket = TokenBucket(ctx.rate)
    journal = JournalWriter(locs[2], ctx.run_id, task.task_id)
    counts = {"files": 0, "copied": 0, "adopted": 0, "failed": 0, "bytes": 0}
    lock = threading.Lock()

    def one(f: PlannedFile) -> None:
        r = copy_file(ctx, locs, f, bucket)
        journal.add(r)
        with lock:
            counts["files"] += 1
            counts[r.action if r.action in counts else "failed"] += 1
            if r.action == "copied":
                counts["bytes"] += r.size

    if ctx.threads <= 1 or len(task.files) <= 1:
        for f in task.files:
            one(f)
    else:
        with ThreadPoolExecutor(max_workers=min(ctx.threads, len(task.files))) as pool:
            list(pool.map(one, task.files))
    journal.flush()
    return counts
