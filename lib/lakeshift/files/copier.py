"""Executor side: copy the files of one task with streaming checksums, verify, commit atomically.

For each file:

1. stat the source (size, mtime) — gone means ``vanished``; anything but a regular file now
   (a FIFO that replaced it) fails without being opened;
2. with ``expect`` (the manifest's checksum of an unchanged target): checksum the source alone;
   equal means ``checked``, nothing written;
3. with ``adopt`` and a target of the same size: checksum both sides; equal means the file is
   recorded as verified without writing (``adopted``);
4. stream source → staged file (or an S3 PUT / multipart upload) while computing the checksum,
   throttled by the run's shared bandwidth cap;
5. stat the source again: if the bytes read, the size or the mtime differ from step 1, the file
   changed while being copied: the staging file is dropped and the copy retried (up to
   ``retries`` times), then reported failed;
6. verify: ``readback`` re-reads the staging file and compares checksum and size with the
   stream's; ``stream`` compares the staged file's size with the bytes streamed;
7. commit: with ``--preserve``, give the staged file the source's owner, group and
   permission bits first (it appears under its final name with them), move it to the final
   name (link / rename), optionally set mtime, and record the target's stamp (what
   ``--update`` trusts the checksum under). An attribute the run may not set (an owner
   without root) is a warning counted per task, not a failure.

Failures are recorded in words (:mod:`lakeshift.files.reasons`); only store errors that a retry
can fix are retried. This module runs inside Spark tasks (``rdd.mapPartitions``), worker
processes or a local thread pool.
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
from typing import TYPE_CHECKING, Any, BinaryIO

from lakeshift.files import reasons
from lakeshift.files.checksum import Hasher, combine, new_hasher
from lakeshift.files.manifest import JournalWriter
from lakeshift.files.plan import ConcatUnit
from lakeshift.files.throttle import RequestBudget, TokenBucket, shared_limiter
from lakeshift.sinks import fs as sink_fs
from lakeshift.sources import fs as source_fs
from lakeshift.sources.listing_diff import PlannedFile
from lakeshift.sources.manifest import Record

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeshift.files.plan import Task
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
    """Everything a task needs; small and picklable (no filesystem objects, no secrets).

    ``rate`` is the bandwidth cap in bytes/s and ``requests_per_s`` the per-prefix request
    budget, both shared through the limits file ``limits`` by every task on one machine;
    ``verify_only`` compares instead of copying (``--verify``); ``preserve`` the attributes
    ``--preserve`` keeps (see :data:`lakeshift.files.config.PRESERVE_ATTRS`).
    """

    src: str
    dst: str
    state: str
    run_id: str
    checksum: str = "crc32c"
    verify: str = "readback"
    update: bool = False
    preserve: tuple[str, ...] = ()
    retries: int = 2
    chunk_bytes: int = 8 << 20
    split_bytes: int = 256 << 20
    part_bytes: int = 64 << 20
    threads: int = 4
    rate: float | None = None
    s3_endpoint: str | None = None
    s3_region: str | None = None
    symlinks: str = "follow"
    limits: str | None = None
    requests_per_s: float | None = None
    verify_only: bool = False

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
    warnings: list[str] | None = None  # what --preserve could not set (collected per task)


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
    buf = buf[: bucket.chunk(len(buf))]
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
    buf = buf[: bucket.chunk(len(buf))]  # with a cap: small chunks, a smooth rate
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
    target: bool = False,
) -> tuple[str, int]:
    """Checksum and size of ``path``; ``target``: a read of the target store (S3: one GET)."""
    opener = source_fs.open_object if target else source_fs.open_path
    with opener(loc, path) as inp:
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
        fi = source_fs.open_fd(src.path(rel))
    except FileNotFoundError as exc:
        raise _Vanished from exc
    chunk = bucket.chunk(ctx.chunk_bytes)
    try:
        n = 0
        while n < limit:
            try:
                k = os.copy_file_range(fi, fo, min(chunk, limit - n), n, n)
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
    """Object-store fast path for a small file (see :func:`_one_put`): a single PUT.

    One PUT is atomic on S3 (the object appears whole or not at all), so no staging copy is
    needed; the PUT carries the bytes' MD5. Returns the record fields, or ``None`` when the
    source changed while being read.
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
    etag = sink_fs.put_object(dst, rel, b"".join(parts))
    return _check_object(ctx, job, digest, n, etag)


def _check_object(ctx: CopyContext, job: _Job, digest: str, n: int, etag: str) -> dict[str, str]:
    """Verify an object just written whole to its final key; delete it on a mismatch."""
    dst, rel = job.dst, job.rel
    if ctx.verify == "readback":
        back, back_n = _checksum_of(
            dst, dst.path(rel), ctx.checksum, ctx.chunk_bytes, _FREE, target=True
        )
        ok = back == digest and back_n == n
    else:
        final = source_fs.stat(dst, rel, objects_only=True)
        ok = final is not None and final.size == n
    if not ok:
        sink_fs.remove(dst, dst.path(rel))
        return {
            "status": "failed",
            "action": "failed",
            "reason": f"target checksum mismatch: DST/{rel}",
        }
    _test_delay()
    stamp = source_fs.stamp_of(source_fs.FileEntry(rel, n, 0, tag=etag), dst.kind)
    return {"checksum": digest, "status": "verified", "action": "copied", "dst": stamp}


def _one_put(ctx: CopyContext, size: int) -> bool:
    """Whether an S3 target gets the file with one PUT.

    Files up to one buffer, or below S3's 5 MiB part minimum, are read whole into memory.
    """
    return size <= max(ctx.chunk_bytes, 5 << 20)


def _stream_object(ctx: CopyContext, job: _Job) -> dict[str, str] | None:
    """S3 target, a file larger than one PUT: stream it into a multipart upload to its key.

    Parts of ``chunk_bytes`` (at least 5 MiB) go up as they are read; the object appears only
    when the upload completes, after the source was found unchanged (else the upload is
    aborted and ``None`` returned). Verified like :func:`_put_small`.
    """
    src, dst, rel, st0 = job.src, job.dst, job.rel, job.st0
    h = new_hasher(ctx.checksum)
    try:
        inp = source_fs.open_input(src, rel)
    except FileNotFoundError as exc:
        raise _Vanished from exc
    writer = sink_fs.ObjectWriter(dst, rel, ctx.chunk_bytes)
    try:
        with inp:
            n, _ = _pump(
                inp,
                writer,
                _buffer(ctx.chunk_bytes),
                [h],
                bucket=job.bucket,
                rel=rel,
                limit=st0.size + 1,
            )
        st1 = source_fs.stat(src, rel, objects_only=True)
        if st1 is None:
            raise _Vanished
        if n != st0.size or not _same(st0, st1):
            writer.abort()
            return None
        _test_delay()  # uploaded, not completed: a kill leaves an invisible upload
        etag = writer.close()
    except BaseException:
        writer.abort()
        raise
    return _check_object(ctx, job, h.hexdigest(), n, etag)


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
        fi = source_fs.open_fd(src.path(rel))
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
            return {
                "status": "failed",
                "action": "failed",
                "reason": f"target checksum mismatch: DST/{rel}",
            }
        digest = combine(ctx.checksum, [got for got, _ in results])
        _preserve_attrs(ctx, job, staged)
        _test_delay()  # staged, not committed: a kill here leaves only a staging file
        staged.commit(st0.mtime_ns if "times" in ctx.preserve else None)
        stamp = sink_fs.stamp(dst, rel)
        return {"checksum": digest, "status": "verified", "action": "copied", "dst": stamp}
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
        etag = upload.complete()
        completed = True
    except _Changed:
        return None
    finally:
        if not completed:
            upload.abort()
    if ctx.verify == "readback":
        with source_fs.open_ranges(dst, rel, boto=True) as back_reader:

            def back(p: tuple[int, int]) -> tuple[str, int]:
                data = back_reader.read(*p)
                h = new_hasher(ctx.checksum)
                h.update(data)
                return h.hexdigest(), len(data)

            with ThreadPoolExecutor(max_workers=max(1, min(ctx.threads, len(parts)))) as pool:
                good = list(pool.map(back, parts)) == sums
    else:
        final = source_fs.stat(dst, rel, objects_only=True)
        good = final is not None and final.size == st0.size
    if not good:
        sink_fs.remove(dst, dst.path(rel))
        return {
            "status": "failed",
            "action": "failed",
            "reason": f"target checksum mismatch: DST/{rel}",
        }
    stamp = source_fs.stamp_of(source_fs.FileEntry(rel, st0.size, 0, tag=etag), dst.kind)
    return {
        "checksum": combine(ctx.checksum, sums),
        "status": "verified",
        "action": "copied",
        "dst": stamp,
    }


_DELAY = 0.0  # seconds, from DELAY_ENV, read once per task (see run_task)


def _test_delay() -> None:
    if _DELAY > 0:
        time.sleep(_DELAY / 2)


def _same(a: source_fs.FileEntry, b: source_fs.FileEntry | None) -> bool:
    return b is not None and a.size == b.size and a.mtime_ns == b.mtime_ns


def _reason(
    ctx: CopyContext, locs: tuple[Location, Location, Location], exc: BaseException, rel: str
) -> str:
    side = "SRC" if locs[0].kind == "hdfs" else "DST"  # HDFS reads fail on the source side
    return reasons.describe(exc, rel, src_root=locs[0].root, dst_root=locs[1].root, hdfs_side=side)


def _copy_link(
    ctx: CopyContext, locs: tuple[Location, Location, Location], f: PlannedFile
) -> Record:
    """``--symlinks preserve``: make the target a link with the source link's text."""
    r = Record(f.rel, 0, f.mtime_ns, algo="", run_id=ctx.run_id, link=f.link)
    try:
        sink_fs.make_symlink(locs[1], f.rel, f.link, ctx.run_id)
    except Exception as exc:
        r.status, r.action, r.reason = "failed", "failed", _reason(ctx, locs, exc, f.rel)
    else:
        r.status, r.action = "verified", "copied"
    r.updated_ns = time.time_ns()
    return r


def copy_file(
    ctx: CopyContext,
    locs: tuple[Location, Location, Location],
    f: PlannedFile,
    bucket: TokenBucket,
    warnings: list[str] | None = None,
) -> Record:
    """Copy one file (see the module docstring) and return its manifest record.

    What ``--preserve`` could not set on the target is appended to ``warnings`` (in words).
    """
    src, dst, _ = locs
    follow = ctx.symlinks == "follow"
    if f.link:
        return _copy_link(ctx, locs, f)

    def rec(st: source_fs.FileEntry | None, **kw: object) -> Record:
        size = st.size if st else f.size
        mtime = st.mtime_ns if st else f.mtime_ns
        r = Record(f.rel, size, mtime, algo=ctx.checksum, run_id=ctx.run_id, **kw)  # type: ignore[arg-type]
        r.ctime_ns = st.ctime_ns if st else 0
        r.updated_ns = time.time_ns()
        return r

    def failed(reason: str) -> Record:
        return rec(None, status="failed", action="failed", reason=reason)

    vanished = f"vanished from source: SRC/{f.rel}"
    changed = 0
    error = ""
    for _attempt in range(ctx.retries + 1):
        try:
            st0 = source_fs.stat(src, f.rel, follow=follow, objects_only=True)
            if st0 is None or st0.is_dir:
                return failed(vanished)
            if st0.kind:  # replaced by a link or a FIFO since it was listed: never opened
                return failed(f"not a regular file now ({st0.kind}): SRC/{f.rel}")
            if f.expect:  # the target holds f.expect (stamp unchanged): re-read the source only
                s_sum, _ = _checksum_of(
                    src, src.path(f.rel), ctx.checksum, ctx.chunk_bytes, bucket, limit=st0.size + 1
                )
                st1 = source_fs.stat(src, f.rel, follow=follow, objects_only=True)
                if s_sum == f.expect and _same(st0, st1):
                    return rec(st0, checksum=s_sum, status="verified", action="checked", dst=f.dst)
            if f.adopt:
                cur = source_fs.stat(dst, f.rel, follow=False, objects_only=True)
                if cur is not None and not cur.is_dir and not cur.kind and cur.size == st0.size:
                    s_sum, _ = _checksum_of(
                        src,
                        src.path(f.rel),
                        ctx.checksum,
                        ctx.chunk_bytes,
                        bucket,
                        limit=st0.size + 1,
                    )
                    d_sum, _ = _checksum_of(
                        dst, dst.path(f.rel), ctx.checksum, ctx.chunk_bytes, bucket, target=True
                    )
                    st1 = source_fs.stat(src, f.rel, follow=follow, objects_only=True)
                    if s_sum == d_sum and _same(st0, st1):
                        job = _Job(src, dst, f.rel, st0, bucket, warnings)
                        touched = _preserve_attrs(ctx, job, None)
                        if "times" in ctx.preserve and sink_fs.set_mtime(dst, f.rel, st0.mtime_ns):
                            touched = 1
                        if touched:
                            cur = source_fs.stat(dst, f.rel, follow=False) or cur
                        stamp = source_fs.stamp_of(cur, dst.kind)
                        return rec(
                            st0, checksum=s_sum, status="verified", action="adopted", dst=stamp
                        )
            job = _Job(src, dst, f.rel, st0, bucket, warnings)
            r: dict[str, str] | None
            if (
                dst.kind in ("s3", "local")
                and st0.size >= ctx.split_bytes
                and st0.size > ctx.part_bytes
            ):
                r = (_multipart_s3 if dst.kind == "s3" else _ranged_local)(ctx, job)
            elif dst.kind == "s3":
                r = _put_small(ctx, job) if _one_put(ctx, st0.size) else _stream_object(ctx, job)
            else:
                r = _staged_copy(ctx, job)
            if r is None:
                changed += 1
                continue
            return rec(st0, **r)
        except _Vanished:
            return failed(vanished)
        except Exception as exc:  # one file's failure must not stop the task
            error = _reason(ctx, locs, exc, f.rel)
            if _attempt < ctx.retries and reasons.is_transient(exc):
                time.sleep(0.5 * (_attempt + 1))  # store timeouts, throttling: retry
                continue
            return failed(error)
    reason = f"source changed during copy ({changed} attempts): SRC/{f.rel}" if changed else error
    return failed(reason)


def _preserve_attrs(ctx: CopyContext, job: _Job, staged: sink_fs.Staged | None) -> int:
    """``--preserve perms,owner,group``: copy the source's onto the staged (or final) file.

    ``staged=None`` sets them on the final file. Returns 1 when something was set, else 0.
    Nothing happens where the target holds no such attributes or the source has none (S3:
    the driver notes it once in the summary); refusals go to ``job.warnings``.
    """
    keep = tuple(k for k in ctx.preserve if k != "times")
    if not keep or job.dst.kind not in sink_fs.PRESERVABLE:
        return 0
    a = source_fs.attrs(job.src, job.rel)
    if a is None:
        return 0
    if staged is None:
        path, fd = job.dst.path(job.rel), None
    else:
        fd = staged.fd
        path = staged.path if staged.path is not None else staged.final
    warn = sink_fs.set_attrs(job.dst, path, a, keep, fd=fd)
    if job.warnings is not None:
        job.warnings.extend(warn)
    return 1


def _staged_copy(ctx: CopyContext, job: _Job) -> dict[str, str] | None:
    """Local and HDFS targets: stream into a staged file, verify, commit; ``None``: changed."""
    src, dst, rel, st0 = job.src, job.dst, job.rel, job.st0
    staged = sink_fs.Staged(dst, rel, ctx.run_id)
    try:
        digest, n, back_sum = _stream(ctx, job, staged)
        st1 = source_fs.stat(src, rel, follow=ctx.symlinks == "follow", objects_only=True)
        if st1 is None:
            raise _Vanished
        if n != st0.size or not _same(st0, st1):
            return None
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
            return {
                "status": "failed",
                "action": "failed",
                "reason": f"target checksum mismatch: DST/{rel}",
            }
        _preserve_attrs(ctx, job, staged)
        _test_delay()  # staged, not committed: a kill here leaves no file under a final name
        staged.commit(st0.mtime_ns if "times" in ctx.preserve else None)
        stamp = sink_fs.stamp(dst, rel)
        _test_delay()  # committed, not yet journaled: the next run adopts it
        return {"checksum": digest, "status": "verified", "action": "copied", "dst": stamp}
    finally:
        staged.discard()  # uncommitted bytes are dropped (no-op after a commit)


def verify_file(
    ctx: CopyContext,
    locs: tuple[Location, Location, Location],
    f: PlannedFile,
    bucket: TokenBucket,
) -> str:
    """``--verify``: compare one file's bytes on both sides; ``""`` when equal, else why not.

    The listings already found both sides with the same size; here both are read and
    checksummed (nothing is written).
    """
    src, dst, _ = locs
    follow = ctx.symlinks == "follow"
    try:
        st0 = source_fs.stat(src, f.rel, follow=follow, objects_only=True)
        if st0 is None or st0.is_dir or st0.kind:
            return f"vanished from source: SRC/{f.rel}"
        s_sum, s_n = _checksum_of(
            src, src.path(f.rel), ctx.checksum, ctx.chunk_bytes, bucket, limit=st0.size + 1
        )
        d_sum, d_n = _checksum_of(
            dst, dst.path(f.rel), ctx.checksum, ctx.chunk_bytes, bucket, target=True
        )
    except FileNotFoundError:
        return f"missing from target: DST/{f.rel}"
    except Exception as exc:
        return _reason(ctx, locs, exc, f.rel)
    if s_n != d_n:
        return f"size differs (source {s_n} B, target {d_n} B)"
    if s_sum != d_sum:
        return f"content differs ({ctx.checksum} source {s_sum}, target {d_sum})"
    return ""


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
    back and checksummed) and committed atomically (on S3: streamed into one PUT or a
    multipart upload that completes only when every input was found unchanged, then read
    back); each input's record carries its own checksum, the output's name and its stamp. A
    vanished input is left out and reported failed.
    """
    src, dst, _ = locs
    now = time.time_ns
    error = ""
    changed = 0
    on_s3 = dst.kind == "s3"
    for attempt in range(ctx.retries + 1):
        staging = sink_fs.new_staging_path(dst, ctx.run_id)
        writer: sink_fs.ObjectWriter | None = None
        try:
            st0 = {f.rel: source_fs.stat(src, f.rel, objects_only=True) for f in unit.inputs}
            gone = sorted(rel for rel, st in st0.items() if st is None or st.is_dir or st.kind)
            live = [f for f in unit.inputs if f.rel not in gone]
            h = new_hasher(ctx.checksum)
            sums: dict[str, str] = {}
            n = 0
            buf = _buffer(ctx.chunk_bytes)
            if on_s3:
                writer = sink_fs.ObjectWriter(dst, unit.rel, ctx.chunk_bytes)
            out_cm = contextlib.nullcontext(writer) if on_s3 else sink_fs.open_output(dst, staging)
            with out_cm as out:
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
                        out.write(b"\n")  # type: ignore[union-attr]
                        h.update(b"\n")
                        n += 1
                    sums[f.rel] = hi.hexdigest()
            st1 = {
                f.rel: source_fs.stat(src, f.rel, objects_only=True)
                for f in live
                if f.rel not in gone
            }
            if any(not _same(st0[r], st) for r, st in st1.items()):  # type: ignore[arg-type]
                if writer is not None:
                    writer.abort()
                else:
                    sink_fs.remove(dst, staging)
                changed += 1
                continue
            if writer is not None:
                _test_delay()
                etag = writer.close()
                writer = None
                r = _check_object(
                    ctx,
                    _Job(src, dst, unit.rel, source_fs.FileEntry(unit.rel, n, 0), _FREE),
                    h.hexdigest(),
                    n,
                    etag,
                )
                if r["status"] != "verified":
                    return [_unit_record(ctx, f, unit, r["reason"]) for f in unit.inputs]
                stamp = r["dst"]
            else:
                if ctx.verify == "readback":
                    ok = _checksum_of(dst, staging, ctx.checksum, ctx.chunk_bytes, _FREE) == (
                        h.hexdigest(),
                        n,
                    )
                else:
                    ok = dst.fs.get_file_info(staging).size == n
                if not ok:
                    sink_fs.remove(dst, staging)
                    reason = f"target checksum mismatch: DST/{unit.rel}"
                    return [_unit_record(ctx, f, unit, reason) for f in unit.inputs]
                _test_delay()
                sink_fs.commit(dst, staging, unit.rel)
                stamp = sink_fs.stamp(dst, unit.rel)
            out_recs = []
            for f in unit.inputs:
                st = st0[f.rel]
                if f.rel in gone or st is None:
                    out_recs.append(
                        _unit_record(ctx, f, unit, f"vanished from source: SRC/{f.rel}")
                    )
                    continue
                r2 = Record(f.rel, st.size, st.mtime_ns, sums[f.rel], ctx.checksum, "verified")
                r2.action, r2.run_id, r2.updated_ns, r2.output = (
                    "concatenated",
                    ctx.run_id,
                    now(),
                    unit.rel,
                )
                r2.ctime_ns, r2.dst = st.ctime_ns, stamp
                out_recs.append(r2)
            return out_recs
        except Exception as exc:  # one output's failure must not stop the task
            if writer is not None:
                writer.abort()
            elif not on_s3:
                with contextlib.suppress(OSError):
                    sink_fs.remove(dst, staging)
            error = _reason(ctx, locs, exc, unit.rel)
            if attempt < ctx.retries and reasons.is_transient(exc):
                time.sleep(0.5 * (attempt + 1))
                continue
            break
    reason = (
        f"source changed during copy ({changed} attempts): DST/{unit.rel}" if changed else error
    )
    return [_unit_record(ctx, f, unit, reason) for f in unit.inputs]


def _unit_record(ctx: CopyContext, f: PlannedFile, unit: ConcatUnit, reason: str) -> Record:
    r = Record(f.rel, f.size, f.mtime_ns, algo=ctx.checksum, status="failed", action="failed")
    r.reason, r.run_id, r.updated_ns, r.output = reason, ctx.run_id, time.time_ns(), unit.rel
    return r


MAX_PROBLEMS = 1000  # most differences one --verify task reports by name
MAX_WARNINGS = 50  # most distinct warnings one task reports


def _limits(ctx: CopyContext, dst: Location) -> TokenBucket:
    """The run's shared bandwidth cap, and its request budget installed for S3 targets."""
    limiter = shared_limiter(ctx.limits) if ctx.limits else None
    observer = None  # also clears a budget an earlier run left in a reused (Spark) worker
    if ctx.requests_per_s and limiter is not None and dst.kind == "s3":
        bucket_name, root = source_fs.bucket_key(dst.root)
        observer = RequestBudget(ctx.requests_per_s, bucket_name, root, limiter).observe
    source_fs.set_request_observer(observer)
    return TokenBucket(ctx.rate, limiter=limiter)


def run_task(ctx: CopyContext, task: Task) -> dict[str, Any]:
    """Copy (or, with ``verify_only``, compare) every file of ``task``; counts for the driver.

    Copies journal each record; comparisons return up to :data:`MAX_PROBLEMS` ``[path,
    reason]`` pairs under ``problems`` (and their count under ``differ``) instead, writing
    nothing. The counts include ``task_ms``, the task's own wall time (for the driver's
    profile).
    """
    global _DELAY  # noqa: PLW0603 - a test hook, read once per task rather than per file
    started = time.monotonic()
    _DELAY = float(os.environ.get(DELAY_ENV, "0") or 0)
    locs = ctx.locations()
    bucket = _limits(ctx, locs[1])
    journal = None if ctx.verify_only else JournalWriter(locs[2], ctx.run_id, task.task_id)
    counts: dict[str, Any] = {
        "files": 0,
        "copied": 0,
        "adopted": 0,
        "checked": 0,
        "concatenated": 0,
        "failed": 0,
        "bytes": 0,
    }
    problems: list[list[str]] = []
    warnings: dict[str, int] = {}  # warning -> files (what --preserve could not set)
    lock = threading.Lock()

    def one(f: PlannedFile | ConcatUnit) -> None:
        if ctx.verify_only:
            assert isinstance(f, PlannedFile)
            why = verify_file(ctx, locs, f, bucket)
            with lock:
                counts["files"] += 1
                if why:
                    counts["failed"] += 1
                    if len(problems) < MAX_PROBLEMS:
                        problems.append([f.rel, why])
            return
        if isinstance(f, ConcatUnit):
            records = copy_concat(ctx, locs, f, bucket)
        else:
            warn: list[str] = []
            records = [copy_file(ctx, locs, f, bucket, warn)]
            if warn:
                with lock:
                    for w in dict.fromkeys(warn):
                        warnings[w] = warnings.get(w, 0) + 1
        assert journal is not None
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
    if journal is not None:
        journal.flush()
    if ctx.verify_only:
        counts["problems"] = problems
        counts["differ"] = counts["failed"]
    if warnings:
        counts["warnings"] = dict(sorted(warnings.items())[:MAX_WARNINGS])
    counts["task_ms"] = round((time.monotonic() - started) * 1000)
    return counts
