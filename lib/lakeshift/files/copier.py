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
import errno
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from lakeshift.files.checksum import Hasher, combine, new_hasher
from lakeshift.files.manifest import JournalWriter, Record
from lakeshift.files.plan import ConcatUnit
from lakeshift.files.throttle import TokenBucket
from lakeshift.sinks import fs as sink_fs
from lakeshift.sources import fs as source_fs

if TYPE_CHECKING:
    import pyarrow as pa

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
    split_bytes: int = 256 << 20
    part_bytes: int = 64 << 20
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


@dataclass(frozen=True)
class _Job:
    """One file being copied: locations, path, its stat before copying, the task's bucket."""

    src: Location
    dst: Location
    rel: str
    st0: source_fs.FileEntry
    bucket: TokenBucket


_TLS = threading.local()


def _buffer(size: int) -> memoryview:
    """This thread's reusable read buffer of ``size`` bytes (no allocation per chunk)."""
    buf: memoryview | None = getattr(_TLS, "buf", None)
    if buf is None or len(buf) != size:
        buf = memoryview(bytearray(size))
        _TLS.buf = buf
    return buf


def _write_all(out: object, view: memoryview) -> None:
    while len(view):
        n = out.write(view)  # type: ignore[attr-defined]
        if n is None or n >= len(view):
            return
        view = view[n:]


def _hash_stream(
    inp: object, algo: str, buf: memoryview, bucket: TokenBucket, limit: int | None = None
) -> tuple[str, int]:
    """Checksum ``inp`` to its end, or its first ``limit`` bytes."""
    h = new_hasher(algo)
    n = 0
    while True:
        k = inp.readinto(buf if limit is None else buf[: min(len(buf), limit - n)])  # type: ignore[attr-defined]
        if not k:
            break
        bucket.consume(k)
        h.update(buf[:k])
        n += k
    return h.hexdigest(), n


def _pump(
    inp: object,
    out: object,
    buf: memoryview,
    hashers: list[Hasher],
    *,
    bucket: TokenBucket,
    rel: str,
    limit: int,
    done: int = 0,
) -> tuple[int, bytes]:
    """Copy ``inp`` to ``out`` through ``buf``, feeding ``hashers``; throttled, test-hooked.

    Copies at most ``limit`` bytes (callers pass the listed size plus one: a file that keeps
    growing is detected as changed instead of being read forever). Returns ``done`` plus the
    bytes copied, and the last byte copied (``b""`` when none).
    """
    hook = _HOOK
    last = b""
    start = done
    while done - start < limit:
        k = inp.readinto(buf[: min(len(buf), limit - (done - start))])  # type: ignore[attr-defined]
        if not k:
            break
        view = buf[:k]
        bucket.consume(k)
        for h in hashers:
            h.update(view)
        _write_all(out, view)
        last = bytes(view[k - 1 :])
        done += k
        if hook is not None:
            hook(rel, done)
    return done, last


def _checksum_of(
    loc: Location,
    path: str,
    algo: str,
    chunk: int,
    bucket: TokenBucket,
    *,
    limit: int | None = None,
) -> tuple[str, int]:
    with source_fs.open_path(loc, path) as inp:
        return _hash_stream(inp, algo, _buffer(chunk), bucket, limit)


_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}


def _stream_local(
    ctx: CopyContext, job: _Job, fo: int
) -> tuple[str, int, tuple[str, int] | None] | None:
    """Local to local: kernel copy (``copy_file_range``) into descriptor ``fo``, then checksums.

    The source is re-read after the copy and checksummed, and so is the staged target (from the
    page cache: what the file now holds). Equal checksums plus the caller's unchanged source
    stat prove the target holds the source's bytes. Plain descriptors and positional reads: a
    handful of system calls per file. Returns ``None`` when the kernel cannot copy between these
    files (the caller falls back to the buffered loop). At most the listed size plus one byte is
    read (see :func:`_pump`).
    """
    src, rel, bucket, limit = job.src, job.rel, job.bucket, job.st0.size + 1
    hook = _HOOK
    try:
        fi = os.open(src.path(rel), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise _Vanished from exc
    try:
        n = 0
        while n < limit:
            try:
                k = os.copy_file_range(fi, fo, min(ctx.chunk_bytes, limit - n), n, n)
            except OSError as exc:
                if n == 0 and exc.errno in _NO_COPY_RANGE:
                    return None
                raise
            if not k:
                break
            bucket.consume(k)
            n += k
            if hook is not None:
                hook(rel, n)
        digest, src_n = _hash_range(fi, 0, limit, ctx.checksum, ctx.chunk_bytes)
        if src_n != n:  # the source changed between copy and checksum: the caller retries
            return digest, -1, None
        back = None
        if ctx.verify == "readback":  # the staged target's bytes, re-read through the OS
            back = _hash_range(fo, 0, limit, ctx.checksum, ctx.chunk_bytes)
    finally:
        os.close(fi)
    return digest, n, back


def _stream(
    ctx: CopyContext, job: _Job, staged: sink_fs.Staged
) -> tuple[str, int, tuple[str, int] | None]:
    """Copy ``rel`` into ``staged``; return the stream's checksum, its size and the read-back.

    The read-back ``(checksum, size)`` is of the staged bytes re-read through the same file
    descriptor right after writing (local targets with ``--verify readback``); ``None`` when the
    caller must re-read the staged object itself (other stores) or verification is ``stream``.
    """
    src, dst, rel, bucket, limit = job.src, job.dst, job.rel, job.bucket, job.st0.size + 1
    if staged.fd is not None and src.kind == "local":
        fast = _stream_local(ctx, job, staged.fd)
        if fast is not None:
            return fast
    h = new_hasher(ctx.checksum)
    buf = _buffer(ctx.chunk_bytes)
    try:
        inp = source_fs.open_input(src, rel)
    except FileNotFoundError as exc:
        raise _Vanished from exc
    out: BinaryIO | pa.NativeFile
    if staged.fd is not None:
        out = os.fdopen(staged.fd, "w+b", buffering=0, closefd=False)
    else:
        assert staged.path is not None
        out = sink_fs.open_output(dst, staged.path)
    with inp, out:
        n, _ = _pump(inp, out, buf, [h], bucket=bucket, rel=rel, limit=limit)
        back = None
        if ctx.verify == "readback" and staged.fd is not None:
            back = _hash_range(staged.fd, 0, limit, ctx.checksum, ctx.chunk_bytes)
    return h.hexdigest(), n, back


def _put_small(ctx: CopyContext, job: _Job) -> dict[str, str] | None:
    """Object-store fast path for a file that fits one buffer: a single PUT to the final key.

    One PUT is atomic on S3 (the object appears whole or not at all), so no staging copy is
    needed. Returns the record fields, or ``None`` when the source changed while being read.
    """
    src, dst, rel, st0, bucket = job.src, job.dst, job.rel, job.st0, job.bucket
    h = new_hasher(ctx.checksum)
    parts: list[bytes] = []
    n = 0
    try:
        inp = source_fs.open_input(src, rel)
    except FileNotFoundError as exc:
        raise _Vanished from exc
    with inp:
        while True:
            buf = inp.read(min(ctx.chunk_bytes, st0.size + 1 - n))
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


class _Changed(Exception):
    """The source changed (or shrank) while its parts were being copied."""


def _parts(size: int, part: int) -> list[tuple[int, int]]:
    return [(off, min(part, size - off)) for off in range(0, size, part)]


def _hash_range(fd: int, offset: int, length: int, algo: str, chunk: int) -> tuple[str, int]:
    """Checksum ``length`` bytes at ``offset`` of descriptor ``fd`` (``os.preadv``, no allocs)."""
    h = new_hasher(algo)
    buf = _buffer(chunk)
    done = 0
    while done < length:
        view = buf[: min(len(buf), length - done)]
        k = os.preadv(fd, [view], offset + done)
        if not k:
            break
        h.update(view[:k])
        done += k
    return h.hexdigest(), done


def _copy_range_fd(
    fi: int, fo: int, offset: int, length: int, *, chunk: int, bucket: TokenBucket, rel: str
) -> int:
    """Copy ``length`` bytes at ``offset`` between descriptors (kernel copy, else pread/pwrite)."""
    done = 0
    kernel = True
    while done < length:
        want = min(chunk, length - done)
        if kernel:
            try:
                k = os.copy_file_range(fi, fo, want, offset + done, offset + done)
            except OSError as exc:
                if exc.errno not in _NO_COPY_RANGE:
                    raise
                kernel = False
                continue
        else:
            data = os.pread(fi, want, offset + done)
            k = len(data)
            view = memoryview(data)
            while view:
                view = view[os.pwrite(fo, view, offset + done + k - len(view)) :]
        if not k:
            break  # the source shrank
        bucket.consume(k)
        done += k
        if _HOOK is not None:
            _HOOK(rel, offset + done)
    return done


def _ranged_local(ctx: CopyContext, job: _Job) -> dict[str, str] | None:
    """Local target: copy parts in parallel into one staged file, verify each part, commit."""
    src, dst, rel, st0, bucket = job.src, job.dst, job.rel, job.st0, job.bucket
    parts = _parts(st0.size, ctx.part_bytes)
    try:
        fi = os.open(src.path(rel), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise _Vanished from exc
    staged: sink_fs.Staged | None = None
    try:
        staged = sink_fs.Staged(dst, rel, ctx.run_id)
        fo = staged.fd
        assert fo is not None  # local targets always have a descriptor
        os.ftruncate(fo, st0.size)

        def one(part: tuple[int, int]) -> tuple[tuple[str, int], tuple[str, int] | None]:
            off, length = part
            if (
                _copy_range_fd(fi, fo, off, length, chunk=ctx.chunk_bytes, bucket=bucket, rel=rel)
                != length
            ):
                raise _Changed
            got = _hash_range(fi, off, length, ctx.checksum, ctx.chunk_bytes)
            back = None
            if ctx.verify == "readback":
                back = _hash_range(fo, off, length, ctx.checksum, ctx.chunk_bytes)
            return got, back

        with ThreadPoolExecutor(max_workers=max(1, min(ctx.threads, len(parts)))) as pool:
            results = list(pool.map(one, parts))
        size = os.fstat(fo).st_size
        st1 = source_fs.stat(src, rel)
        if st1 is None:
            raise _Vanished
        if not _same(st0, st1) or any(
            got[1] != p[1] for (got, _), p in zip(results, parts, strict=True)
        ):
            return None
        if ctx.verify == "readback":
            good = all(back == got for got, back in results) and size == st0.size
        else:
            good = size == st0.size
        if not good:
            return {"status": "failed", "action": "failed", "reason": "target checksum mismatch"}
        digest = combine(ctx.checksum, [got for got, _ in results])
        _test_delay()  # staged, not committed: a kill here leaves only a staging file
        staged.commit(st0.mtime_ns if ctx.preserve else None)
        return {"checksum": digest, "status": "verified", "action": "copied"}
    except _Changed:
        return None
    finally:
        os.close(fi)
        if staged is not None:
            staged.discard()


def _multipart_s3(ctx: CopyContext, job: _Job) -> dict[str, str] | None:
    """S3 target: parts read by range and uploaded in parallel, completed atomically, verified.

    Any failure before completion aborts the upload (nothing appears under the key). After
    completion the object is re-read part by part and each part's checksum compared with the
    source's; on a mismatch the object is deleted and the file reported failed.
    """
    src, dst, rel, st0, bucket = job.src, job.dst, job.rel, job.st0, job.bucket
    part = max(ctx.part_bytes, -(-st0.size // 10_000))  # S3 allows 10,000 parts
    parts = _parts(st0.size, part)
    try:
        reader = source_fs.open_ranges(src, rel)
    except FileNotFoundError as exc:
        raise _Vanished from exc
    try:
        upload = sink_fs.MultipartUpload(dst, rel)
    except BaseException:
        reader.close()
        raise
    completed = False
    try:
        with reader:

            def one(item: tuple[int, tuple[int, int]]) -> tuple[str, int]:
                number, (off, length) = item
                data = reader.read(off, length)
                bucket.consume(len(data))
                if _HOOK is not None:
                    _HOOK(rel, off + len(data))
                if len(data) != length:
                    raise _Changed
                h = new_hasher(ctx.checksum)
                h.update(data)
                upload.upload_part(number, data)
                return h.hexdigest(), length

            with ThreadPoolExecutor(max_workers=max(1, min(ctx.threads, len(parts)))) as pool:
                sums = list(pool.map(one, enumerate(parts, start=1)))
        st1 = source_fs.stat(src, rel)
        if st1 is None:
            raise _Vanished
        if not _same(st0, st1):
            return None
        _test_delay()  # uploaded, not completed: a kill leaves an invisible upload
        upload.complete()
        completed = True
    except _Changed:
        return None
    finally:
        if not completed:
            upload.abort()
    if ctx.verify == "readback":
        with source_fs.open_ranges(dst, rel) as back_reader:

            def back(p: tuple[int, int]) -> tuple[str, int]:
                data = back_reader.read(*p)
                h = new_hasher(ctx.checksum)
                h.update(data)
                return h.hexdigest(), len(data)

            with ThreadPoolExecutor(max_workers=max(1, min(ctx.threads, len(parts)))) as pool:
                good = list(pool.map(back, parts)) == sums
    else:
        final = source_fs.stat(dst, rel)
        good = final is not None and final.size == st0.size
    if not good:
        sink_fs.remove(dst, dst.path(rel))
        return {"status": "failed", "action": "failed", "reason": "target checksum mismatch"}
    return {"checksum": combine(ctx.checksum, sums), "status": "verified", "action": "copied"}


_DELAY = 0.0  # seconds, from DELAY_ENV, read once per task (see run_task)


def _test_delay() -> None:
    if _DELAY > 0:
        time.sleep(_DELAY / 2)


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
        staged: sink_fs.Staged | None = None
        try:
            st0 = source_fs.stat(src, f.rel)
            if st0 is None or st0.is_dir:
                return rec(None, status="failed", action="failed", reason="vanished from source")
            if f.adopt or ctx.update:
                cur = source_fs.stat(dst, f.rel)
                if cur is not None and not cur.is_dir and cur.size == st0.size:
                    s_sum, _ = _checksum_of(
                        src,
                        src.path(f.rel),
                        ctx.checksum,
                        ctx.chunk_bytes,
                        bucket,
                        limit=st0.size + 1,
                    )
                    d_sum, _ = _checksum_of(
                        dst, dst.path(f.rel), ctx.checksum, ctx.chunk_bytes, bucket
                    )
                    if s_sum == d_sum and _same(st0, source_fs.stat(src, f.rel)):
                        if ctx.preserve:
                            sink_fs.set_mtime(dst, f.rel, st0.mtime_ns)
                        return rec(st0, checksum=s_sum, status="verified", action="adopted")
            if (
                dst.kind in ("s3", "local")
                and st0.size >= ctx.split_bytes
                and st0.size > ctx.part_bytes
            ):
                ranged = _multipart_s3 if dst.kind == "s3" else _ranged_local
                r = ranged(ctx, _Job(src, dst, f.rel, st0, bucket))
                if r is None:
                    changed += 1
                    continue
                return rec(st0, **r)
            if dst.kind == "s3" and st0.size <= ctx.chunk_bytes:
                r = _put_small(ctx, _Job(src, dst, f.rel, st0, bucket))
                if r is None:
                    changed += 1
                    continue
                return rec(st0, **r)
            staged = sink_fs.Staged(dst, f.rel, ctx.run_id)
            digest, n, back_sum = _stream(ctx, _Job(src, dst, f.rel, st0, bucket), staged)
            st1 = source_fs.stat(src, f.rel)
            if st1 is None:
                return rec(st0, status="failed", action="failed", reason="vanished from source")
            if n != st0.size or not _same(st0, st1):
                changed += 1
                continue
            if ctx.verify == "readback":
                if back_sum is None:
                    assert staged.path is not None
                    back_sum = _checksum_of(dst, staged.path, ctx.checksum, ctx.chunk_bytes, _FREE)
                ok = back_sum == (digest, n)
            elif staged.fd is not None:
                ok = os.fstat(staged.fd).st_size == n
            else:
                ok = dst.fs.get_file_info(staged.path).size == n
            if not ok:
                return rec(st0, status="failed", action="failed", reason="target checksum mismatch")
            _test_delay()  # staged, not committed: a kill here leaves no file under a final name
            staged.commit(st0.mtime_ns if ctx.preserve else None)
            if dst.kind == "s3":  # a server-side copy, not a rename: check what landed
                final = source_fs.stat(dst, f.rel)
                if final is None or final.size != n:
                    return rec(st0, status="failed", action="failed", reason="target size mismatch")
            _test_delay()  # committed, not yet journaled: the next run adopts it
            return rec(st0, checksum=digest, status="verified", action="copied")
        except _Vanished:
            return rec(None, status="failed", action="failed", reason="vanished from source")
        except Exception as exc:  # one file's failure must not stop the task
            error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            if _attempt < ctx.retries:  # transient store errors (timeouts, throttling): retry
                time.sleep(0.5 * (_attempt + 1))
                continue
            return rec(None, status="failed", action="failed", reason=error)
        finally:
            if staged is not None:  # uncommitted bytes are dropped (no-op after a commit)
                staged.discard()
    reason = f"source changed during copy ({changed} attempts)" if changed else error
    return rec(None, status="failed", action="failed", reason=reason)


def copy_concat(
    ctx: CopyContext,
    locs: tuple[Location, Location, Location],
    unit: ConcatUnit,
    bucket: TokenBucket,
) -> list[Record]:
    """Write one concatenation output from its inputs; return one record per input.

    Each input's bytes are appended whole, followed by a newline when the input is not empty
    and does not end with one. Every input is stat'ed before and after; if one changed the
    output is rewritten (up to ``retries`` times). The output is verified like any file (read
    back and checksummed) and committed atomically; each input's record carries its own
    checksum and the output's name. A vanished input is left out and reported failed.
    """
    src, dst, _ = locs
    now = time.time_ns
    error = ""
    changed = 0
    for attempt in range(ctx.retries + 1):
        staging = sink_fs.new_staging_path(dst, ctx.run_id)
        try:
            st0 = {f.rel: source_fs.stat(src, f.rel) for f in unit.inputs}
            gone = sorted(rel for rel, st in st0.items() if st is None or st.is_dir)
            live = [f for f in unit.inputs if f.rel not in gone]
            h = new_hasher(ctx.checksum)
            sums: dict[str, str] = {}
            n = 0
            buf = _buffer(ctx.chunk_bytes)
            with sink_fs.open_output(dst, staging) as out:
                for f in live:
                    hi = new_hasher(ctx.checksum)
                    try:
                        inp = source_fs.open_input(src, f.rel)
                    except FileNotFoundError:
                        gone.append(f.rel)
                        continue
                    with inp:
                        n, last = _pump(
                            inp,
                            out,
                            buf,
                            [h, hi],
                            bucket=bucket,
                            rel=f.rel,
                            limit=st0[f.rel].size + 1,  # type: ignore[union-attr]
                            done=n,
                        )
                    if last not in (b"", b"\n"):
                        out.write(b"\n")
                        h.update(b"\n")
                        n += 1
                    sums[f.rel] = hi.hexdigest()
            st1 = {f.rel: source_fs.stat(src, f.rel) for f in live if f.rel not in gone}
            if any(not _same(st0[r], st) for r, st in st1.items()):  # type: ignore[arg-type]
                sink_fs.remove(dst, staging)
                changed += 1
                continue
            if ctx.verify == "readback":
                ok = _checksum_of(dst, staging, ctx.checksum, ctx.chunk_bytes, _FREE) == (
                    h.hexdigest(),
                    n,
                )
            else:
                ok = dst.fs.get_file_info(staging).size == n
            if not ok:
                sink_fs.remove(dst, staging)
                return [_unit_record(ctx, f, unit, "target checksum mismatch") for f in unit.inputs]
            _test_delay()
            sink_fs.commit(dst, staging, unit.rel)
            out_recs = []
            for f in unit.inputs:
                st = st0[f.rel]
                if f.rel in gone or st is None:
                    out_recs.append(_unit_record(ctx, f, unit, "vanished from source"))
                    continue
                r = Record(f.rel, st.size, st.mtime_ns, sums[f.rel], ctx.checksum, "verified")
                r.action, r.run_id, r.updated_ns, r.output = (
                    "concatenated",
                    ctx.run_id,
                    now(),
                    unit.rel,
                )
                out_recs.append(r)
            return out_recs
        except Exception as exc:  # one output's failure must not stop the task
            with contextlib.suppress(OSError):
                sink_fs.remove(dst, staging)
            error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            if attempt < ctx.retries:
                time.sleep(0.5 * (attempt + 1))
    reason = f"source changed during copy ({changed} attempts)" if changed else error
    return [_unit_record(ctx, f, unit, reason) for f in unit.inputs]


def _unit_record(ctx: CopyContext, f: PlannedFile, unit: ConcatUnit, reason: str) -> Record:
    r = Record(f.rel, f.size, f.mtime_ns, algo=ctx.checksum, status="failed", action="failed")
    r.reason, r.run_id, r.updated_ns, r.output = reason, ctx.run_id, time.time_ns(), unit.rel
    return r


def run_task(ctx: CopyContext, task: Task) -> dict[str, int]:
    """Copy every file of ``task``; journal each record; return counts for the driver.

    The counts include ``task_ms``, the task's own wall time (for the driver's profile).
    """
    global _DELAY  # noqa: PLW0603 - a test hook, read once per task rather than per file
    started = time.monotonic()
    _DELAY = float(os.environ.get(DELAY_ENV, "0") or 0)
    locs = ctx.locations()
    bucket = TokenBucket(ctx.rate)
    journal = JournalWriter(locs[2], ctx.run_id, task.task_id)
    counts = {"files": 0, "copied": 0, "adopted": 0, "concatenated": 0, "failed": 0, "bytes": 0}
    lock = threading.Lock()

    def one(f: PlannedFile | ConcatUnit) -> None:
        if isinstance(f, ConcatUnit):
            records = copy_concat(ctx, locs, f, bucket)
        else:
            records = [copy_file(ctx, locs, f, bucket)]
        for r in records:
            journal.add(r)
            with lock:
                counts["files"] += 1
                counts[r.action if r.action in counts else "failed"] += 1
                if r.action in ("copied", "concatenated"):
                    counts["bytes"] += r.size

    # local to local is CPU and page-cache bound: one file at a time per task (tasks already
    # run in parallel); threads pay off where each file waits on a remote store
    threads = 1 if locs[0].kind == locs[1].kind == "local" else ctx.threads
    if threads <= 1 or len(task.files) <= 1:
        for f in task.files:
            one(f)
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(task.files))) as pool:
            list(pool.map(one, task.files))
    journal.flush()
    counts["task_ms"] = round((time.monotonic() - started) * 1000)
    return counts
