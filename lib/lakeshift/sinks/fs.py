"""Byte-level writes to any filesystem (local, Hadoop filesystem URIs, S3) through pyarrow.fs.

Writes are atomic: bytes go to a staging name under ``<dst>/.lakeshift-tmp/<run>/`` and are moved
to their final name only after they were verified. On local disks and HDFS the move is a rename;
on S3 it is a server-side copy plus delete, so an object appears under its final key only whole
(S3's single-request copy limit of 5 GiB applies to one object). A killed run leaves staging files
only under ``.lakeshift-tmp/``, never under a final name; the next run removes them. Small
objects can skip staging with :func:`put_object` (one PUT is atomic on object stores).
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from lakeshift.errors import SinkError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeshift.sources.fs import Location

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
    """Open ``path`` for writing (a staging name; parents are created)."""
    if loc.kind == "local":  # the OS directly: less per-file overhead for many small files
        return _in_dir(loc, _parent(path), lambda: open(path, "wb"))
    return _in_dir(loc, _parent(path), lambda: loc.fs.open_output_stream(path))


def commit(loc: Location, staging: str, rel: str, mtime_ns: int | None = None) -> None:
    """Move ``staging`` to its final name ``rel`` (replacing it) and optionally set its mtime.

    ``mtime_ns`` is applied where the store allows it (local paths); elsewhere it is ignored.

    Raises:
        SinkError: the move failed.
    """
    final = loc.path(rel)
    try:
        if mtime_ns is not None and loc.kind == "local":
            os.utime(staging, ns=(mtime_ns, mtime_ns))
        if loc.kind == "local":
            _in_dir(loc, _parent(final), lambda: os.replace(staging, final))
        else:
            _in_dir(loc, _parent(final), lambda: loc.fs.move(staging, final))
    except OSError as exc:
        raise SinkError(f"{loc.uri}: cannot move staged file to {rel!r}: {exc}") from exc


def put_object(loc: Location, rel: str, data: bytes) -> None:
    """Write ``data`` to ``rel`` in one request (object stores: one PUT, atomic by itself).

    Raises:
        SinkError: the write failed.
    """
    try:
        with loc.fs.open_output_stream(loc.path(rel)) as out:
            out.write(data)
    except OSError as exc:
        raise SinkError(f"{loc.uri}: cannot write {rel!r}: {exc}") from exc


def set_mtime(loc: Location, rel: str, mtime_ns: int) -> bool:
    """Set the modification time of ``rel`` where the store allows it; True when set."""
    if loc.kind != "local":
        return False
    os.utime(loc.path(rel), ns=(mtime_ns, mtime_ns))
    return True


def remove(loc: Location, path: str) -> None:
    """Delete file ``path``; a missing file is not an error."""
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


def make_dir(loc: Location, rel: str) -> None:
    """Create the (possibly empty) folder ``rel`` under the root (a marker object on S3)."""
    loc.fs.create_dir(loc.path(rel), recursive=True)


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
