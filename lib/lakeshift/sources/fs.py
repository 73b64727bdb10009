"""Byte-level reads from any filesystem: local paths, Hadoop filesystem URIs and S3.

Everything goes through one layer, :mod:`pyarrow.fs`; there is no per-store copy loop. A location
is a URI or a local path; :func:`resolve` turns it into a ``(filesystem, root)`` pair.

S3 (``s3://``, ``s3a://``, ``s3n://``) uses :class:`pyarrow.fs.S3FileSystem` with credentials from
the environment / the AWS chain only; the endpoint comes from :class:`S3Options` (CLI
``--s3-endpoint``) or ``$AWS_ENDPOINT_URL_S3`` / ``$AWS_ENDPOINT_URL`` (e.g. a local S3 server).
``hdfs://`` and ``viewfs://`` use :mod:`lakeshift.sources.hdfs` (hdfs-native, no JVM); other
schemes :meth:`pyarrow.fs.FileSystem.from_uri`.

Example:
    >>> loc = resolve("/tmp")
    >>> loc.root
    '/tmp'
"""

from __future__ import annotations

import os
import stat as stat_mod
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import urlsplit

from lakeshift.errors import SourceError, UsageError
from lakeshift.sources.hdfs import HDFS_SCHEMES, hdfs_filesystem

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

S3_SCHEMES = ("s3", "s3a", "s3n")


@dataclass(frozen=True)
class S3Options:
    """How to reach S3. Secrets never live here: they come from the AWS chain.

    Attributes:
        endpoint: endpoint URL such as ``http://127.0.0.1:9000`` (default: the environment's
            ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, else AWS itself).
        region: region name (default: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else us-east-1).
    """

    endpoint: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class FileEntry:
    """One listed file or folder, relative to the listing root.

    Attributes:
        rel: path relative to the root, ``/``-separated.
        size: size in bytes (0 for folders).
        mtime_ns: modification time in nanoseconds since the epoch (0 when unknown).
        is_dir: True for folders.
    """

    rel: str
    size: int
    mtime_ns: int
    is_dir: bool = False


@dataclass(frozen=True)
class Location:
    """A filesystem plus a root path inside it (no trailing slash).

    Attributes:
        uri: the location as given by the user (for messages; never holds secrets).
        fs: the pyarrow filesystem.
        root: the root path in the filesystem's own notation.
        kind: ``local``, ``s3`` or the URI scheme.
        s3: how S3 was reached (S3 locations only; used for multipart uploads).
    """

    uri: str
    fs: pafs.FileSystem
    root: str
    kind: str
    s3: S3Options | None = None

    def path(self, rel: str) -> str:
        """The filesystem path of ``rel`` under the root."""
        return f"{self.root}/{rel}" if rel else self.root

    def rel_of(self, path: str) -> str:
        """The path of ``path`` relative to the root."""
        prefix = self.root.rstrip("/") + "/"
        return path[len(prefix) :] if path.startswith(prefix) else path

    def local_path(self, rel: str) -> str | None:
        """The OS path of ``rel`` for local locations, else ``None``."""
        return self.path(rel) if self.kind == "local" else None


_CACHE: dict[tuple[str, str | None, str | None], pafs.FileSystem] = {}
_CACHE_LOCK = threading.Lock()


def _s3_fs(opts: S3Options) -> pafs.FileSystem:
    import pyarrow.fs as pafs

    endpoint = (
        opts.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    region = (
        opts.region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    key = ("s3", endpoint, region)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        # delayed open: a small object is written with one PutObject on close, no multipart
        kwargs: dict[str, object] = {"region": region, "allow_delayed_open": True}
        if endpoint:
            parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
            kwargs["endpoint_override"] = parts.netloc
            kwargs["scheme"] = parts.scheme or "https"
        fs = pafs.S3FileSystem(**kwargs)
        _CACHE[key] = fs
        return fs


def resolve(uri: str, s3: S3Options | None = None) -> Location:
    """Turn a URI or local path into a :class:`Location`.

    Raises:
        UsageError: the URI is empty or its scheme has no filesystem here.
    """
    import pyarrow.fs as pafs

    if not uri:
        raise UsageError("expected a path or URI, found an empty string")
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme == "file":
        local = rest if sep else uri
        if local.startswith("file:"):
            local = local[len("file:") :]
        root = os.path.abspath(os.path.expanduser(local)).rstrip("/") or "/"
        return Location(uri, pafs.LocalFileSystem(), root, "local")
    if scheme in S3_SCHEMES:
        root = rest.split("?", 1)[0].rstrip("/")
        if not root:
            raise UsageError(f"expected s3://bucket[/prefix], found {uri!r}")
        return Location(uri, _s3_fs(s3 or S3Options()), root, "s3", s3 or S3Options())
    if scheme in HDFS_SCHEMES:
        netloc, _, path = rest.partition("/")
        root = "/" + path.split("?", 1)[0].strip("/")
        return Location(uri, hdfs_filesystem(scheme, netloc), root.rstrip("/") or "/", "hdfs")
    try:
        fs, root = pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError, ImportError) as exc:
        raise UsageError(f"no filesystem for {uri!r}: {exc}") from exc
    return Location(uri, fs, root.rstrip("/"), scheme)


def _reserved(rel: str, reserved: tuple[str, ...]) -> bool:
    top = rel.split("/", 1)[0]
    return top in reserved


def list_tree(loc: Location, reserved: tuple[str, ...] = ()) -> Iterator[FileEntry]:
    """List every file and folder under ``loc`` once (one recursive listing).

    Args:
        loc: the location to list.
        reserved: top-level folder names to leave out (lakeshift's own state folders).

    Raises:
        SourceError: the root does not exist or cannot be listed.
    """
    import pyarrow.fs as pafs

    try:
        root_info = loc.fs.get_file_info(loc.root)
        if root_info.type == pafs.FileType.NotFound:
            raise SourceError(f"{loc.uri}: expected an existing folder, found nothing")
        if root_info.type == pafs.FileType.File:
            raise SourceError(f"{loc.uri}: expected a folder, found a file")
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.root, recursive=True))
    except OSError as exc:
        raise SourceError(f"{loc.uri}: cannot list: {exc}") from exc
    for info in infos:
        rel = loc.rel_of(info.path)
        if not rel or _reserved(rel, reserved):
            continue
        is_dir = info.type == pafs.FileType.Directory
        mtime = info.mtime_ns if info.mtime_ns is not None else 0
        yield FileEntry(rel, 0 if is_dir else int(info.size or 0), int(mtime), is_dir)


def stat(loc: Location, rel: str) -> FileEntry | None:
    """The current size and modification time of ``rel``, or ``None`` when it is gone."""
    import pyarrow.fs as pafs

    if loc.kind == "local":  # same answer as pyarrow's LocalFileSystem, one syscall, no objects
        try:
            st = os.stat(loc.path(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        return FileEntry(rel, 0 if is_dir else st.st_size, st.st_mtime_ns, is_dir)
    info = loc.fs.get_file_info(loc.path(rel))
    if info.type == pafs.FileType.NotFound:
        return None
    return FileEntry(
        rel,
        int(info.size or 0),
        int(info.mtime_ns or 0),
        info.type == pafs.FileType.Directory,
    )


def open_path(loc: Location, path: str) -> BinaryIO | pa.NativeFile:
    """Open filesystem path ``path`` for sequential reading (``FileNotFoundError`` when gone).

    Local files are opened with the OS directly (less per-file overhead for many small files);
    every other store through its pyarrow filesystem. Both give ``read(n)``, ``readinto(buf)``
    and ``close()``.
    """
    if loc.kind == "local":
        return open(path, "rb", buffering=0)  # readinto() straight into the caller's buffer
    return loc.fs.open_input_stream(path)


def open_input(loc: Location, rel: str) -> BinaryIO | pa.NativeFile:
    """Open ``rel`` under the root for sequential reading (see :func:`open_path`)."""
    return open_path(loc, loc.path(rel))


def read_parquet(loc: Location, path: str) -> object:
    """Read one Parquet file from ``loc``'s filesystem as a :class:`pyarrow.Table`."""
    import pyarrow.parquet as pq

    return pq.read_table(path, filesystem=loc.fs)


class RangeReader:
    """Random-access reads of one file: ``read(offset, length)`` from any thread.

    Local files use ``os.pread`` on one descriptor; other stores a pyarrow random-access file
    (``read_at``; on S3 one ranged GET per call). Open with :func:`open_ranges`.
    """

    def __init__(self, loc: Location, rel: str) -> None:
        self._fd: int | None = None
        self._file: pa.NativeFile | None = None
        if loc.kind == "local":
            self._fd = os.open(loc.path(rel), os.O_RDONLY)
        else:
            self._file = loc.fs.open_input_file(loc.path(rel))

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer only at the end of the file)."""
        if self._fd is not None:
            chunks: list[bytes] = []
            got = 0
            while got < length:
                b = os.pread(self._fd, length - got, offset + got)
                if not b:
                    break
                chunks.append(b)
                got += len(b)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        assert self._file is not None
        data = self._file.read_at(length, offset)
        return data if isinstance(data, bytes) else data.to_pybytes()

    def close(self) -> None:
        """Release the descriptor / file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_ranges(loc: Location, rel: str) -> RangeReader:
    """Open ``rel`` under the root for random-access reads (``FileNotFoundError`` when gone)."""
    return RangeReader(loc, rel)
