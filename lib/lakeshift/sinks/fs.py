"""Byte-level writes to any filesystem (local, Hadoop filesystem URIs, S3) through pyarrow.fs.

Writes are atomic: bytes go to a staging name under ``<dst>/.lakeshift-tmp/<run>/`` and are moved
to their final name only after they were verified. On local disks (Linux) a file is staged as an
unnamed ``O_TMPFILE`` inode in its final folder instead (see :class:`Staged`): it gets a name only
when it is linked in after verification, and it vanishes by itself if the process dies before.
On HDFS the move is a rename;
on S3 it is a server-side copy plus delete, so an object appears under its final key only whole
(S3's single-request copy limit of 5 GiB applies to one object). A killed run leaves staging files
only under ``.lakeshift-tmp/``, never under a final name; the next run removes them. Small
objects can skip staging with :func:`put_object` (one PUT is atomic on object stores). Large
objects are written by :class:`MultipartUpload` straight to their final key: parts upload in
parallel and the object appears only when the upload completes (abort drops it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from lakeshift.errors import SinkError
from lakeshift.sources import fs as source_fs

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeshift.sources.fs import Location

log = logging.getLogger(__name__)

STAGING_DIR = ".lakeshift-tmp"
T = TypeVar("T")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


# folders this process created or saw (saves a syscall per small file); cleared by remove_dir
_MADE: set[tuple[str, str]] = set()
_MADE_LOCK = threading.Lock()


def ensure_dir(loc: Location, path: str, cached: bool = True) -> None:
    """Create folder ``path`` (and parents) where the store has folders.

    With ``cached``, a folder this process already created is not created again; callers retry
    with ``cached=False`` when it turns out to be gone (see :func:`_in_dir`).
    """
    if loc.kind == "s3":
        return  # S3 has no folders; keys carry their prefixes
    key = (loc.kind, path)
    if cached and key in _MADE:
        return
    if loc.kind == "local":  # one mkdir syscall in the common case (parent exists)
        try:
            os.mkdir(path)
        except FileExistsError:
            pass
        except FileNotFoundError:
            os.makedirs(path, exist_ok=True)
    else:
        loc.fs.create_dir(path, recursive=True)
    with _MADE_LOCK:
        _MADE.add(key)


def _in_dir(loc: Location, parent: str, action: Callable[[], T]) -> T:
    """Run ``action`` after making sure ``parent`` exists; if it vanished meanwhile, retry once."""
    if not parent:
        return action()
    ensure_dir(loc, parent)
    try:
        return action()
    except FileNotFoundError:
        ensure_dir(loc, parent, cached=False)
        return action()


def staging_root(loc: Location, run_id: str) -> str:
    """The staging folder of run ``run_id`` under the target root."""
    return loc.path(f"{STAGING_DIR}/{run_id}")


def new_staging_path(loc: Location, run_id: str) -> str:
    """A fresh, unique staging file name (short, so long final names never overflow)."""
    return f"{staging_root(loc, run_id)}/{uuid.uuid4().hex}.part"


def open_output(loc: Location, path: str) -> BinaryIO | pa.NativeFile:
    """Open ``path`` for writing (a staging name; parents are created).

    Local files are opened unbuffered for reading and writing (``w+b``): the copier writes from
    its reused buffer and re-reads the written bytes through the same descriptor to verify them.
    """
    if loc.kind == "local":  # the OS directly: less per-file overhead for many small files
        return _in_dir(loc, _parent(path), lambda: open(path, "w+b", buffering=0))
    return _in_dir(loc, _parent(path), lambda: loc.fs.open_output_stream(path))


_TMPFILE: dict[str, bool] = {}  # target root -> O_TMPFILE + link works there (probed once)


_ROOT_FD: tuple[int, int] | None = None  # (pid, descriptor of "/") for linkat


def _link_fd(fd: int, path: str) -> None:
    """Give the unnamed (``O_TMPFILE``) file open as ``fd`` the name ``path``.

    ``linkat(..., "/proc/self/fd/N", ..., AT_SYMLINK_FOLLOW)``: Python issues ``linkat`` (not
    ``link``, which would try to link the /proc symlink itself) only when given a directory
    descriptor, so one of "/" is passed (the absolute source path ignores it).
    """
    global _ROOT_FD  # noqa: PLW0603
    pid = os.getpid()
    if _ROOT_FD is None or _ROOT_FD[0] != pid:
        _ROOT_FD = (pid, os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=_ROOT_FD[1], follow_symlinks=True)


def _tmpfile_ok(loc: Location, run_id: str) -> bool:
    """Whether unnamed files can be created and linked under ``loc`` (probed once per root)."""
    ok = _TMPFILE.get(loc.root)
    if ok is not None:
        return ok
    flag = getattr(os, "O_TMPFILE", 0)
    ok = False
    if flag:
        root = staging_root(loc, run_id)
        probe = f"{root}/probe-{uuid.uuid4().hex}"
        try:
            ensure_dir(loc, root)
            fd = os.open(root, flag | os.O_RDWR | os.O_CLOEXEC, 0o600)
            try:
                _link_fd(fd, probe)
                os.unlink(probe)
                ok = True
            finally:
                os.close(fd)
        except OSError as exc:
            log.debug("no O_TMPFILE staging under %s: %s", loc.uri, exc)
    _TMPFILE[loc.root] = ok
    return ok


class Staged:
    """One file being written to its final name ``rel``, committed only after verification.

    Local targets: :attr:`fd` is a read-write descriptor of an unnamed ``O_TMPFILE`` inode in
    the final folder (one inode allocation beside its siblings, no staging folder shared by all
    writers, no cross-folder rename); :meth:`commit` links it in (``linkat``), or, when the
    final name exists, links it under ``.lakeshift-tmp/`` and renames it over the old file.
    Where the filesystem has no ``O_TMPFILE``, :attr:`fd` is a named staging file under
    ``.lakeshift-tmp/<run>/``. Other stores: :attr:`path` is a staging name, written through
    :func:`open_output` and moved by :func:`commit`.
    """

    def __init__(self, loc: Location, rel: str, run_id: str) -> None:
        self.loc, self.rel, self.run_id = loc, rel, run_id
        self.final = loc.path(rel)
        self.fd: int | None = None
        self.path: str | None = None
        self._done = False
        if loc.kind != "local":
            self.path = new_staging_path(loc, run_id)
            return
        if _tmpfile_ok(loc, run_id):
            flags = os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC
            parent = _parent(self.final) or "/"
            self.fd = _in_dir(loc, parent, lambda: os.open(parent, flags, 0o666))
            return
        path = new_staging_path(loc, run_id)
        flags = os.O_CREAT | os.O_TRUNC | os.O_RDWR | os.O_CLOEXEC
        self.fd = _in_dir(loc, _parent(path), lambda: os.open(path, flags, 0o666))
        self.path = path

    def commit(self, mtime_ns: int | None = None) -> None:
        """Give the verified bytes their final name (replacing an older file); close.

        Raises:
            SinkError: the move failed.
        """
        if self.fd is None:
            assert self.path is not None
            commit(self.loc, self.path, self.rel, mtime_ns)
            self._done = True
            return
        try:
            if mtime_ns is not None:
                os.utime(self.fd, ns=(mtime_ns, mtime_ns))
            if self.path is not None:
                _in_dir(self.loc, _parent(self.final), lambda: os.replace(self.path, self.final))  # type: ignore[arg-type]
            else:
                fd = self.fd
                try:
                    _in_dir(self.loc, _parent(self.final), lambda: _link_fd(fd, self.final))
                except FileExistsError:  # an older file: link under staging, rename over it
                    tmp = new_staging_path(self.loc, self.run_id)
                    _in_dir(self.loc, _parent(tmp), lambda: _link_fd(fd, tmp))
                    os.replace(tmp, self.final)
        except OSError as exc:
            msg = f"{self.loc.uri}: cannot move staged file to {self.rel!r}: {exc}"
            raise SinkError(msg) from exc
        self._done = True
        self.close()

    def close(self) -> None:
        """Close the descriptor (an uncommitted unnamed file is gone with it)."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def discard(self) -> None:
        """Drop the staged bytes (no-op after :meth:`commit`)."""
        self.close()
        if not self._done and self.path is not None:
            with contextlib.suppress(OSError):
                remove(self.loc, self.path)
        self._done = True


# the attributes ``--preserve`` can set, by target store kind (S3 and others hold none)
PRESERVABLE = {
    "local": ("perms", "owner", "group", "times"),
    "hdfs": ("perms", "owner", "group", "times"),
}


def _names_to_ids(a: source_fs.Attrs, keep: tuple[str, ...], warn: list[str]) -> tuple[int, int]:
    """Local uid/gid for ``a`` (``-1``: leave as is): numbers from local sources, else by name."""
    import grp
    import pwd

    uid = gid = -1
    if "owner" in keep:
        if a.uid is not None:
            uid = a.uid
        else:
            try:
                uid = pwd.getpwnam(a.owner).pw_uid
            except KeyError:
                warn.append(f"owner not preserved: no local user named {a.owner!r}")
    if "group" in keep:
        if a.gid is not None:
            gid = a.gid
        else:
            try:
                gid = grp.getgrnam(a.group).gr_gid
            except KeyError:
                warn.append(f"group not preserved: no local group named {a.group!r}")
    return uid, gid


def set_attrs(
    loc: Location,
    path: str,
    a: source_fs.Attrs,
    keep: tuple[str, ...],
    *,
    fd: int | None = None,
) -> list[str]:
    """Set the ``perms``/``owner``/``group`` of ``a`` named in ``keep`` on file ``path``.

    The open local descriptor ``fd`` is used when given. Returns warnings in words for what
    could not be set.

    Owner and group are set before the permission bits (a change of owner may clear set-id
    bits). A refusal to change them (not root; not the HDFS superuser) is a warning, not a
    failure: the file's bytes are still copied.

    Raises:
        OSError: the permission bits could not be set on a local file.
    """
    warn: list[str] = []
    who = tuple(k for k in ("owner", "group") if k in keep)
    if loc.kind == "local":
        uid, gid = _names_to_ids(a, keep, warn)
        if uid != -1 or gid != -1:
            try:
                if fd is not None:
                    os.fchown(fd, uid, gid)
                else:
                    os.chown(path, uid, gid)
            except PermissionError:
                warn.append(
                    f"{','.join(who)} not preserved: changing them needs root (operation not "
                    "permitted)"
                )
        if "perms" in keep:
            if fd is not None:
                os.fchmod(fd, a.mode)
            else:
                os.chmod(path, a.mode)
        return warn
    if loc.kind != "hdfs":
        return warn
    from lakeshift.sources.hdfs import native_client

    client = native_client(loc.fs)
    if who:
        owner = (a.owner or (str(a.uid) if a.uid is not None else "")) if "owner" in who else ""
        group = (a.group or (str(a.gid) if a.gid is not None else "")) if "group" in who else ""
        try:
            client.set_owner(path, owner or None, group or None)
        except Exception as exc:
            warn.append(f"{','.join(who)} not preserved: {_hdfs_refusal(exc)}")
    if "perms" in keep:
        try:
            client.set_permission(path, a.mode)
        except Exception as exc:
            warn.append(f"perms not preserved: {_hdfs_refusal(exc)}")
    return warn


def _hdfs_refusal(exc: BaseException) -> str:
    """Why the NameNode refused an attribute change, in words (no Java stack)."""
    text = str(exc)
    if "AccessControlException" in text or isinstance(exc, PermissionError):
        return "the NameNode refused (permission denied; owners need the HDFS superuser)"
    return f"the NameNode refused ({type(exc).__name__})"


def commit(loc: Location, staging: str, rel: str, mtime_ns: int | None = None) -> None:
    """Move ``staging`` to its final name ``rel`` (replacing it) and optionally set its mtime.

    ``mtime_ns`` is applied where the store allows it (local paths; HDFS: milliseconds, the
    access time set to the same); elsewhere it is ignored.

    Raises:
        SinkError: the move failed.
    """
    final = loc.path(rel)
    try:
        if mtime_ns is not None and loc.kind == "local":
            os.utime(staging, ns=(mtime_ns, mtime_ns))
        elif mtime_ns is not None and loc.kind == "hdfs":
            _hdfs_times(loc, staging, mtime_ns)
        if loc.kind == "local":
            _in_dir(loc, _parent(final), lambda: os.replace(staging, final))
        else:
            _in_dir(loc, _parent(final), lambda: loc.fs.move(staging, final))
    except OSError as exc:
        raise SinkError(f"{loc.uri}: cannot move staged file to {rel!r}: {exc}") from exc


def put_object(loc: Location, rel: str, data: bytes) -> str:
    """Write ``data`` to ``rel`` in one request (object stores: one PUT, atomic by itself).

    On S3 the PUT carries the bytes' MD5 (``Content-MD5``: S3 rejects bytes damaged on the
    way) and the object's ETag is returned; elsewhere ``""``.

    Raises:
        SinkError: the write failed.
    """
    if loc.kind == "s3":
        import base64
        import hashlib

        bucket, key = source_fs.bucket_key(loc.path(rel))
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        try:
            resp = source_fs.s3_client(loc).put_object(
                Bucket=bucket, Key=key, Body=data, ContentMD5=md5
            )
        except Exception as exc:
            raise SinkError(f"{loc.uri}: cannot write {rel!r}: {exc}") from exc
        return str(resp.get("ETag", "")).strip('"')
    try:
        with loc.fs.open_output_stream(loc.path(rel)) as out:
            out.write(data)
    except OSError as exc:
        raise SinkError(f"{loc.uri}: cannot write {rel!r}: {exc}") from exc
    return ""


def _hdfs_times(loc: Location, path: str, mtime_ns: int) -> None:
    from lakeshift.sources.hdfs import native_client

    ms = mtime_ns // 1_000_000
    try:  # the access time is unsigned in hdfs-native: set it to the mtime (as local utime)
        native_client(loc.fs).set_times(path, ms, ms)
    except RuntimeError as exc:
        raise OSError(errno.EPERM, f"cannot set times ({_hdfs_refusal(exc)})", path) from exc


def set_mtime(loc: Location, rel: str, mtime_ns: int) -> bool:
    """Set the modification time of ``rel`` where the store allows it; True when set."""
    if loc.kind == "hdfs":
        _hdfs_times(loc, loc.path(rel), mtime_ns)
        return True
    if loc.kind != "local":
        return False
    os.utime(loc.path(rel), ns=(mtime_ns, mtime_ns))
    return True


def remove(loc: Location, path: str) -> None:
    """Delete file ``path``; a missing file is not an error (S3: one DeleteObject request)."""
    if loc.kind == "s3":
        bucket, key = source_fs.bucket_key(path)
        source_fs.s3_client(loc).delete_object(Bucket=bucket, Key=key)
        return
    with contextlib.suppress(FileNotFoundError):
        loc.fs.delete_file(path)


def remove_dir(loc: Location, path: str) -> None:
    """Delete folder ``path`` with its contents; a missing folder is not an error."""
    with _MADE_LOCK:
        prefix = path.rstrip("/") + "/"
        _MADE.difference_update(k for k in list(_MADE) if k[1] == path or k[1].startswith(prefix))
    try:
        loc.fs.delete_dir(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if "not found" not in str(exc).lower() and "does not exist" not in str(exc).lower():
            raise


def remove_files(loc: Location, rels: list[str]) -> None:
    """Delete the files (or links) ``rels`` under the root; missing ones are not an error.

    Local paths are unlinked (a symlink itself, never what it points to); S3 keys go 1,000 per
    DeleteObjects request.

    Raises:
        SinkError: S3 refused to delete some keys.
    """
    if loc.kind == "local":
        for rel in rels:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(loc.path(rel))
        return
    if loc.kind != "s3":
        for rel in rels:
            remove(loc, loc.path(rel))
        return
    client = source_fs.s3_client(loc)
    for i in range(0, len(rels), 1000):
        keys = [source_fs.bucket_key(loc.path(r)) for r in rels[i : i + 1000]]
        resp = client.delete_objects(
            Bucket=keys[0][0], Delete={"Objects": [{"Key": k} for _, k in keys], "Quiet": True}
        )
        errors = resp.get("Errors", [])
        if errors:
            first = errors[0]
            raise SinkError(
                f"cannot delete {len(errors)} objects ({first.get('Code')}): "
                f"{loc.uri}/{first.get('Key')}"
            )


def remove_empty_dir(loc: Location, rel: str) -> bool:
    """Remove folder ``rel`` if it is empty; True when it is gone.

    Local: ``rmdir`` (a folder that is not empty stays). S3: folders are key prefixes that
    vanish with their last object; only an empty-folder marker (``rel/``) is deleted. Other
    stores: deleted only when a listing finds nothing below it.
    """
    if loc.kind == "local":
        try:
            os.rmdir(loc.path(rel))
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.warning("kept folder %s: %s", loc.path(rel), source_fs.strerror(exc))
            return False
        return True
    if loc.kind == "s3":
        bucket, key = source_fs.bucket_key(loc.path(rel))
        source_fs.s3_client(loc).delete_object(Bucket=bucket, Key=key + "/")
        return True
    import pyarrow.fs as pafs

    sel = pafs.FileSelector(loc.path(rel), recursive=False, allow_not_found=True)
    if loc.fs.get_file_info(sel):
        return False
    with contextlib.suppress(FileNotFoundError):
        loc.fs.delete_dir(loc.path(rel))
    return True


def make_dir(loc: Location, rel: str) -> None:
    """Create the (possibly empty) folder ``rel`` under the root (a marker object on S3)."""
    loc.fs.create_dir(loc.path(rel), recursive=True)


def make_symlink(loc: Location, rel: str, text: str, run_id: str) -> None:
    """Make ``rel`` a symlink with ``text`` (replacing a file or link of that name atomically).

    The link is created under a unique name in the final folder and renamed over ``rel``.

    Raises:
        SinkError: the target store holds no symlinks (only local paths do here).
        OSError: the link cannot be made (e.g. ``rel`` is a folder).
    """
    if loc.kind != "local":
        raise SinkError(f"the target store cannot hold symlinks: {loc.uri}")
    final = loc.path(rel)
    tmp = f"{_parent(final)}/.lakeshift-link-{run_id}-{uuid.uuid4().hex[:8]}"
    _in_dir(loc, _parent(final), lambda: os.symlink(text, tmp))
    try:
        os.replace(tmp, final)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def stamp(loc: Location, rel: str) -> str:
    """The target stamp of ``rel`` now (:func:`lakeshift.sources.fs.stamp_of`; "" if gone)."""
    st = source_fs.stat(loc, rel, follow=False, objects_only=True)
    return "" if st is None else source_fs.stamp_of(st, loc.kind)


def write_parquet(loc: Location, path: str, table: pa.Table) -> None:
    """Write ``table`` as one Parquet file at ``path`` atomically (staging name, then move).

    Raises:
        SinkError: the write failed.
    """
    import pyarrow.parquet as pq

    tmp = f"{_parent(path)}/.{uuid.uuid4().hex}.tmp"
    try:
        ensure_dir(loc, _parent(path), cached=False)
        with loc.fs.open_output_stream(tmp) as out:
            pq.write_table(table, out, compression="zstd")
        loc.fs.move(tmp, path)
    except OSError as exc:
        remove(loc, tmp)
        raise SinkError(f"{loc.uri}: cannot write {path!r}: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# S3 multipart uploads (range-split copies of large files)


def _s3_client(loc: Location) -> Any:
    """A boto3 S3 client for ``loc`` (see :func:`lakeshift.sources.fs.s3_client`)."""
    return source_fs.s3_client(loc)


_bucket_key = source_fs.bucket_key


class MultipartUpload:
    """One S3 multipart upload to the final key of ``rel``: invisible until :meth:`complete`.

    Parts may be uploaded from several threads at once. Each part is sent with its MD5
    (``Content-MD5``), so S3 rejects a part whose bytes were damaged on the way. The object
    appears under its key only whole, when the upload completes; :meth:`abort` drops the parts.

    Example:
        >>> up = MultipartUpload(loc, "big.bin")  # doctest: +SKIP
        >>> etag = up.upload_part(1, data)  # doctest: +SKIP
        >>> up.complete()  # doctest: +SKIP
    """

    def __init__(self, loc: Location, rel: str) -> None:
        self.loc = loc
        self.bucket, self.key = _bucket_key(loc.path(rel))
        self._client = _s3_client(loc)
        try:
            resp = self._client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            raise SinkError(f"{loc.uri}: cannot start multipart upload of {rel!r}: {exc}") from exc
        self.upload_id: str = resp["UploadId"]
        self._etags: dict[int, str] = {}
        self._lock = threading.Lock()

    def upload_part(self, number: int, data: bytes) -> str:
        """Upload part ``number`` (1-based); return its ETag."""
        import base64
        import hashlib

        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        resp = self._client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
            ContentMD5=md5,
        )
        with self._lock:
            self._etags[number] = resp["ETag"]
        return str(resp["ETag"])

    def complete(self) -> str:
        """Assemble the parts (in number order) into the object: it appears whole, atomically.

        Returns the object's ETag.

        Raises:
            SinkError: S3 refused to complete the upload.
        """
        parts = [{"PartNumber": n, "ETag": self._etags[n]} for n in sorted(self._etags)]
        try:
            resp = self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": parts},
            )
        except Exception as exc:
            raise SinkError(
                f"{self.loc.uri}: cannot complete upload of {self.key!r}: {exc}"
            ) from exc
        return str(resp.get("ETag", "")).strip('"')

    def abort(self) -> None:
        """Drop the upload and its parts (best effort; nothing appears under the key)."""
        with contextlib.suppress(Exception):
            self._client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id
            )


class ObjectWriter:
    """Streams bytes to one S3 key; the object appears only whole, when :meth:`close` succeeds.

    Bytes are buffered up to ``part_bytes`` (at least S3's 5 MiB part minimum): an object that
    fits one buffer is written with one PUT, a larger one as a multipart upload whose parts
    are sent as the buffer fills (completed at :meth:`close`, aborted by :meth:`abort`). Every
    request goes through boto3 (the request observer sees each one).

    Example:
        >>> w = ObjectWriter(loc, "out/part-00000")  # doctest: +SKIP
        >>> w.write(b"some bytes")  # doctest: +SKIP
        >>> etag = w.close()  # doctest: +SKIP
    """

    def __init__(self, loc: Location, rel: str, part_bytes: int = 8 << 20) -> None:
        self.loc, self.rel = loc, rel
        self.part_bytes = max(part_bytes, 5 << 20)
        self._buf = bytearray()
        self._upload: MultipartUpload | None = None
        self._number = 0
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``; a full buffer becomes one part of a multipart upload."""
        self._buf += data
        self.size += len(data)
        while len(self._buf) >= self.part_bytes + (5 << 20):  # the last part keeps >= 5 MiB
            self._send(bytes(self._buf[: self.part_bytes]))
            del self._buf[: self.part_bytes]
        return len(data)

    def _send(self, part: bytes) -> None:
        if self._upload is None:
            self._upload = MultipartUpload(self.loc, self.rel)
        self._number += 1
        self._upload.upload_part(self._number, part)

    def close(self) -> str:
        """Write what is left and make the object appear; its ETag.

        Raises:
            SinkError: the write failed (the upload is aborted, nothing appears).
        """
        try:
            if self._upload is None:
                return put_object(self.loc, self.rel, bytes(self._buf))
            if self._buf:
                self._send(bytes(self._buf))
            return self._upload.complete()
        except BaseException:
            self.abort()
            raise
        finally:
            self._buf = bytearray()

    def abort(self) -> None:
        """Drop everything written (nothing appears under the key)."""
        if self._upload is not None:
            self._upload.abort()
            self._upload = None
        self._buf = bytearray()


def abort_stale_uploads(loc: Location) -> int:
    """Abort unfinished multipart uploads under ``loc``'s prefix (left by killed runs).

    Like the staging folder, this assumes one copy per target at a time. Returns the count; a
    listing that fails (e.g. for lack of permission) is logged and skipped.
    """
    if loc.kind != "s3":
        return 0
    bucket, prefix = _bucket_key(loc.root)
    client = _s3_client(loc)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    aborted = 0
    try:
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=prefix
        )
        for page in pages:
            for up in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
                aborted += 1
    except Exception as exc:  # e.g. no ListBucketMultipartUploads permission: not fatal
        from lakeshift.log import redact

        log.warning("%s: cannot list unfinished multipart uploads: %s", redact(loc.uri), exc)
    return aborted
