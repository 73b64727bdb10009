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

import errno
import os
import posixpath
import stat as stat_mod
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

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


# kinds of entries that are not regular files or folders (``FileEntry.kind``)
SYMLINK = "symlink"
SPECIAL_KINDS = ("fifo", "socket", "character device", "block device", "unknown file type")
BROKEN = "broken symlink"
LOOP = "symlink loop"
UNLISTABLE = "unlistable"


@dataclass(frozen=True)
class FileEntry:
    """One listed file or folder, relative to the listing root.

    Attributes:
        rel: path relative to the root, ``/``-separated.
        size: size in bytes (0 for folders).
        mtime_ns: modification time in nanoseconds since the epoch (0 when unknown; whole
            seconds on S3, as both its listing and HEAD give them).
        is_dir: True for folders.
        kind: ``""`` for a regular file or folder; otherwise what the entry is and why it is not
            copied as a file: ``symlink`` (listed as a link, ``link`` holds its text),
            ``broken symlink`` / ``symlink loop`` (a link that cannot be followed), one of
            :data:`SPECIAL_KINDS` (never opened), or ``unlistable`` (a folder that could not
            be listed; ``link`` holds the reason).
        link: the symlink's text (``kind="symlink"``/``"broken symlink"``), or a reason.
        ctime_ns: status-change time (local files; any write, ``chmod``, ``touch -r`` or
            rename sets it to now and it cannot be set back); the mtime where the store has
            none (S3 objects cannot be changed without a new modification time).
        tag: the store's identity of this version: the inode number on local disks, the ETag
            on S3 (``""`` elsewhere).
    """

    rel: str
    size: int
    mtime_ns: int
    is_dir: bool = False
    kind: str = ""
    link: str = ""
    ctime_ns: int = 0
    tag: str = ""


def stamp_of(entry: FileEntry, store: str) -> str:
    """The target-side identity of one file version: what the manifest caches checksums under.

    ``store`` is the location's kind. Local: size, mtime, inode and ctime (a rewrite, a
    truncation, a restored mtime or a replacement by another file all change it); S3: size
    and ETag; other stores: size and mtime. ``""`` for entries that are not regular files.

    Example:
        >>> stamp_of(FileEntry("a", 3, 5, tag="9f3c", ctime_ns=5), "s3")
        '3:9f3c'
    """
    if entry.is_dir or entry.kind:
        return ""
    if store == "local":
        return f"{entry.size}:{entry.mtime_ns}:{entry.tag}:{entry.ctime_ns}"
    if store == "s3":
        return f"{entry.size}:{entry.tag}"
    return f"{entry.size}:{entry.mtime_ns}"


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


_CACHE: dict[tuple[str, str | None, str | None, str], pafs.FileSystem] = {}
_CACHE_LOCK = threading.Lock()


def _endpoint_region(opts: S3Options | None) -> tuple[str | None, str]:
    endpoint = (
        (opts.endpoint if opts else None)
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    region = (
        (opts.region if opts else None)
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    return endpoint, region


#: The environment variables that decide which credentials the AWS chain finds.
_IDENTITY_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)


def _identity() -> str:
    """A digest of what selects this process's AWS credentials now.

    Part of the client cache key, so that a client made under other credentials (a changed
    environment, another profile) is not reused.
    """
    import hashlib

    text = "\0".join(os.environ.get(k, "") for k in _IDENTITY_VARS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _s3_fs(opts: S3Options) -> pafs.FileSystem:
    import pyarrow.fs as pafs

    endpoint, region = _endpoint_region(opts)
    key = ("s3", endpoint, region, _identity())
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


# S3 requests made through lakeshift's boto3 clients are shown to this observer before they
# are sent (one call per HTTP request, retries included) as ``(method, url)``. ``lakeshift
# files`` uses it for its per-prefix request budget (see :func:`s3_request_key`).
RequestObserver = Callable[[str, str], None]
_OBSERVER: RequestObserver | None = None
_CLIENTS: dict[tuple[str | None, str, str], Any] = {}


def set_request_observer(observer: RequestObserver | None) -> None:
    """Install (or clear, with ``None``) the observer of every S3 request of this process."""
    global _OBSERVER  # noqa: PLW0603
    _OBSERVER = observer


def _before_send(request: Any, **_kw: object) -> None:
    observer = _OBSERVER
    if observer is not None:
        observer(str(request.method), str(request.url))


def s3_request_key(url: str, bucket: str) -> str | None:
    """The key an S3 request URL addresses in ``bucket`` (a listing's prefix), else ``None``.

    Handles path-style (``http://host/bucket/key``, custom endpoints) and virtual-hosted
    (``https://bucket.s3.amazonaws.com/key``) addressing.

    Example:
        >>> s3_request_key("http://127.0.0.1:5000/lake/raw/a%20b?partNumber=1", "lake")
        'raw/a b'
        >>> s3_request_key("https://lake.s3.amazonaws.com/?list-type=2&prefix=raw%2F", "lake")
        'raw/'
    """
    parts = urlsplit(url)
    path = unquote(parts.path)
    if (parts.hostname or "").startswith(f"{bucket}."):
        key = path[1:]
    elif path == f"/{bucket}" or path.startswith(f"/{bucket}/"):
        key = path[len(bucket) + 2 :]
    else:
        return None
    if not key:
        key = parse_qs(parts.query).get("prefix", [""])[0]
    return key


def s3_client(loc: Location) -> Any:
    """A boto3 S3 client for ``loc`` (credentials from the environment / AWS chain only).

    One client per endpoint, region and credential environment per process (boto3 clients are
    thread-safe); every request it sends is shown to the request observer
    (:func:`set_request_observer`).
    """
    import boto3

    key = (*_endpoint_region(loc.s3), _identity())
    with _CACHE_LOCK:
        if key not in _CLIENTS:
            # a session of its own: boto3's default session keeps the credentials it found first
            session = boto3.session.Session()
            client = session.client("s3", endpoint_url=key[0], region_name=key[1])
            client.meta.events.register("before-send.s3", _before_send)
            _CLIENTS[key] = client
        return _CLIENTS[key]


def forget_s3_clients() -> None:
    """Drop this process's cached S3 filesystems and clients (made with older credentials)."""
    with _CACHE_LOCK:
        for key in [k for k in _CACHE if k[0] == "s3"]:
            del _CACHE[key]
        _CLIENTS.clear()


def bucket_key(path: str) -> tuple[str, str]:
    """``(bucket, key)`` of an S3 filesystem path ``bucket/key``."""
    bucket, _, key = path.partition("/")
    return bucket, key


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
    if scheme in S3_SCHEMES:  # one store whatever the scheme; "a//b/" is "a/b"
        root = "/".join(p for p in rest.split("?", 1)[0].split("/") if p)
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


def resolve_kind(uri: str) -> str:
    """The :attr:`Location.kind` :func:`resolve` gives ``uri``, without resolving it.

    Example:
        >>> [resolve_kind(u) for u in ("/a", "file:/a", "s3a://b/k", "viewfs://c/x", "gs://b")]
        ['local', 'local', 's3', 'hdfs', 'gs']
    """
    scheme, sep, _ = uri.partition("://")
    if not sep or scheme == "file":
        return "local"
    if scheme in S3_SCHEMES:
        return "s3"
    return "hdfs" if scheme in HDFS_SCHEMES else scheme


def _reserved(rel: str, reserved: tuple[str, ...]) -> bool:
    return any(rel == r or rel.startswith(r + "/") for r in reserved)


def strerror(exc: OSError) -> str:
    """The words of an OS error, lower case (``permission denied``), without the path."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return " ".join(str(exc).split()).lower() or type(exc).__name__


def _special_kind(mode: int) -> str:
    if stat_mod.S_ISFIFO(mode):
        return "fifo"
    if stat_mod.S_ISSOCK(mode):
        return "socket"
    if stat_mod.S_ISCHR(mode):
        return "character device"
    if stat_mod.S_ISBLK(mode):
        return "block device"
    return "unknown file type"


def _local_entry(rel: str, st: os.stat_result, link: str = "") -> FileEntry:
    """A listed entry from a ``stat`` result (of the file itself, or of a link's target)."""
    mode = st.st_mode
    if stat_mod.S_ISDIR(mode):
        return FileEntry(rel, 0, st.st_mtime_ns, True, link=link)
    if stat_mod.S_ISREG(mode):
        return FileEntry(
            rel, st.st_size, st.st_mtime_ns, ctime_ns=st.st_ctime_ns, tag=str(st.st_ino), link=link
        )
    if stat_mod.S_ISLNK(mode):
        return FileEntry(rel, 0, st.st_mtime_ns, kind=SYMLINK, link=link, ctime_ns=st.st_ctime_ns)
    return FileEntry(rel, 0, st.st_mtime_ns, kind=_special_kind(mode), link=link)


def _root_folder(path: str, shown: str) -> os.stat_result:
    """``stat`` of the local folder a walk starts at (``shown`` names it in errors)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"folder not found: {shown}") from None
    except OSError as exc:
        raise SourceError(f"cannot read folder ({strerror(exc)}): {shown}") from exc
    if not stat_mod.S_ISDIR(st.st_mode):
        raise SourceError(f"expected a folder, found a file: {shown}")
    return st


def _walk_local(loc: Location, reserved: tuple[str, ...], symlinks: str) -> Iterator[FileEntry]:
    """List a local tree with ``lstat``: links, FIFOs, sockets and devices are never opened.

    With ``symlinks="follow"`` a link is replaced by what it points to (a folder is listed
    below the link's name); a link whose target is missing is a ``broken symlink``, one to a
    folder above it a ``symlink loop``. Otherwise links are listed as ``symlink`` entries.
    A folder that cannot be listed is an ``unlistable`` entry with the reason.
    """
    st = _root_folder(loc.root, loc.uri)
    todo: list[tuple[str, str, tuple[tuple[int, int], ...]]] = [
        ("", loc.root, ((st.st_dev, st.st_ino),))
    ]
    while todo:
        rel_dir, path, chain = todo.pop()
        try:
            with os.scandir(path) as it:
                items = list(it)
        except FileNotFoundError:
            continue  # vanished while listing: nothing left to copy
        except OSError as exc:
            if not rel_dir:
                raise SourceError(f"cannot list folder ({strerror(exc)}): {loc.uri}") from exc
            yield FileEntry(rel_dir, 0, 0, kind=UNLISTABLE, link=strerror(exc))
            continue
        for item in items:
            rel = f"{rel_dir}/{item.name}" if rel_dir else item.name
            if reserved and _reserved(rel, reserved):
                continue
            try:
                st = item.stat(follow_symlinks=False)
                link = ""
                if stat_mod.S_ISLNK(st.st_mode):
                    link = os.readlink(item.path)
                    if symlinks == "follow":
                        try:
                            st = os.stat(item.path)
                        except OSError as exc:
                            if exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                                raise
                            yield FileEntry(rel, 0, st.st_mtime_ns, kind=BROKEN, link=link)
                            continue
            except FileNotFoundError:
                continue  # gone between the folder's listing and its stat
            except OSError as exc:
                yield FileEntry(rel, 0, 0, kind=UNLISTABLE, link=strerror(exc))
                continue
            entry = _local_entry(rel, st, link)
            if entry.is_dir:
                ident = (st.st_dev, st.st_ino)
                if ident in chain:  # a link back to a folder above it
                    yield FileEntry(rel, 0, st.st_mtime_ns, kind=LOOP, link=link)
                    continue
                todo.append((rel, item.path, (*chain, ident)))
            yield entry


LocalFile = tuple[str, int, int]
"""``(name, size, mtime_ns)`` of one regular file, as :func:`local_folders` yields them."""


def _open_dir(path: str) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))


def local_folders(root: str) -> Iterator[tuple[str, list[LocalFile]]]:
    """Walk a local tree folder by folder: ``(folder below root, its regular files)``.

    The files are those :func:`list_tree` lists with its defaults (links followed: a link to a
    file counts as that file, a link to a folder is walked below the link's name; broken
    links, loops, FIFOs, sockets, devices and folders that cannot be listed are left out),
    each as ``(name, size, mtime_ns)``. Every folder is yielded once, with its own files only
    (possibly none), so the caller can fold a whole folder at once. Each folder is opened once
    and its entries are ``stat``-ed relative to it (``fstatat``): no path is resolved twice.

    Raises:
        SourceError: ``root`` does not exist, is a file or cannot be listed.
    """
    st = _root_folder(root, root)
    is_dir, is_reg = stat_mod.S_ISDIR, stat_mod.S_ISREG
    todo: list[tuple[str, str, tuple[tuple[int, int], ...]]] = [
        ("", root, ((st.st_dev, st.st_ino),))
    ]
    while todo:
        rel_dir, path, chain = todo.pop()
        try:
            fd = _open_dir(path)
            try:
                with os.scandir(fd) as it:
                    items = list(it)
            except BaseException:
                os.close(fd)
                raise
        except FileNotFoundError:
            continue  # vanished while listing
        except OSError as exc:
            if not rel_dir:
                raise SourceError(f"cannot list folder ({strerror(exc)}): {root}") from exc
            continue  # unlistable: list_tree leaves it out too
        files: list[LocalFile] = []
        try:
            for item in items:
                name = item.name
                try:
                    if item.is_file(follow_symlinks=False):  # d_type: no system call
                        fst = item.stat(follow_symlinks=False)
                        if is_reg(fst.st_mode):
                            files.append((name, fst.st_size, fst.st_mtime_ns))
                        continue
                    if item.is_symlink():
                        try:
                            fst = os.stat(name, dir_fd=fd)
                        except OSError as exc:
                            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                                continue  # broken link
                            raise
                    else:
                        fst = item.stat(follow_symlinks=False)
                except OSError:
                    continue  # gone since the listing, or cannot be read: left out
                mode = fst.st_mode
                if is_reg(mode):
                    files.append((name, fst.st_size, fst.st_mtime_ns))
                elif is_dir(mode):
                    ident = (fst.st_dev, fst.st_ino)
                    if ident not in chain:  # else a link back to a folder above it
                        rel = f"{rel_dir}/{name}" if rel_dir else name
                        todo.append((rel, f"{path}/{name}", (*chain, ident)))
        finally:
            os.close(fd)
        yield rel_dir, files


def _s3_mtime_ns(value: Any) -> int:
    """S3 times as whole seconds in ns (listings carry milliseconds, HEAD only seconds)."""
    return int(value.timestamp()) * 1_000_000_000


def _list_s3(loc: Location, reserved: tuple[str, ...]) -> Iterator[FileEntry]:
    """One listing of an S3 prefix (ListObjectsV2, 1,000 keys per request), with ETags."""
    from botocore.exceptions import ClientError

    bucket, prefix = bucket_key(loc.root)
    base = f"{prefix}/" if prefix else ""
    client = s3_client(loc)
    dirs: set[str] = set()
    found = False
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for obj in page.get("Contents", []):
                found = True
                rel = obj["Key"][len(base) :]
                if not rel.strip("/") or (reserved and _reserved(rel, reserved)):
                    continue
                parts = rel.rstrip("/").split("/")
                dirs.update("/".join(parts[:k]) for k in range(1, len(parts)))
                if rel.endswith("/"):  # a folder marker
                    dirs.add(rel.rstrip("/"))
                    continue
                mtime = _s3_mtime_ns(obj["LastModified"])
                etag = str(obj.get("ETag", "")).strip('"')
                yield FileEntry(rel, int(obj["Size"]), mtime, ctime_ns=mtime, tag=etag)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise SourceError(f"no such bucket: {loc.uri}") from exc
        raise SourceError(f"cannot list ({code or exc}): {loc.uri}") from exc
    if not found and prefix:
        raise SourceError(f"folder not found: {loc.uri}")
    for d in sorted(dirs):
        yield FileEntry(d, 0, 0, True)


def list_tree(
    loc: Location,
    reserved: tuple[str, ...] = (),
    symlinks: str = "follow",
    *,
    special: bool = False,
) -> Iterator[FileEntry]:
    """List every file and folder under ``loc`` once (one recursive listing).

    Local trees are walked with ``lstat`` (see :func:`_walk_local`; FIFOs, sockets and devices
    are listed with their kind and never opened); S3 with ListObjectsV2 (ETags, whole-second
    times); other stores through :mod:`pyarrow.fs`.

    Args:
        loc: the location to list.
        reserved: relative paths to leave out with everything below them (lakeshift's own
            state and staging folders).
        symlinks: ``follow`` lists what links point to; anything else lists links as links.
        special: also yield the entries that are neither files, folders nor (with
            ``symlinks`` other than ``follow``) links: FIFOs, sockets, devices, broken links,
            loops and folders that cannot be listed, each with its ``kind``. Without it
            they are left out.

    Raises:
        SourceError: the root does not exist or cannot be listed.
    """
    if loc.kind == "local":
        for e in _walk_local(loc, reserved, symlinks):
            if special or not e.kind or e.kind == SYMLINK:
                yield e
        return
    if loc.kind == "s3":
        yield from _list_s3(loc, reserved)
        return
    import pyarrow.fs as pafs

    try:
        root_info = loc.fs.get_file_info(loc.root)
        if root_info.type == pafs.FileType.NotFound:
            raise SourceError(f"folder not found: {loc.uri}")
        if root_info.type == pafs.FileType.File:
            raise SourceError(f"expected a folder, found a file: {loc.uri}")
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.root, recursive=True))
    except OSError as exc:
        raise SourceError(f"cannot list ({exc}): {loc.uri}") from exc
    for info in infos:
        rel = loc.rel_of(info.path)
        if not rel or (reserved and _reserved(rel, reserved)):
            continue
        is_dir = info.type == pafs.FileType.Directory
        mtime = int(info.mtime_ns if info.mtime_ns is not None else 0)
        yield FileEntry(rel, 0 if is_dir else int(info.size or 0), mtime, is_dir, ctime_ns=mtime)


def list_level(loc: Location) -> Iterator[FileEntry]:
    """List the entries directly under ``loc`` (one level, not recursive).

    The same entries :func:`list_tree` gives for that level (links followed, special files
    left out; S3 with ETags and whole-second times, a common prefix is a folder). Used to split
    a tree into its top-level folders, each then listed with :func:`list_tree` on
    :func:`child`.

    Raises:
        SourceError: the root does not exist or cannot be listed.
    """
    if loc.kind == "local":
        try:
            with os.scandir(loc.root) as it:
                items = sorted(it, key=lambda i: i.name)
        except FileNotFoundError:
            raise SourceError(f"folder not found: {loc.uri}") from None
        except NotADirectoryError:
            raise SourceError(f"expected a folder, found a file: {loc.uri}") from None
        except OSError as exc:
            raise SourceError(f"cannot list folder ({strerror(exc)}): {loc.uri}") from exc
        for item in items:
            try:
                entry = _local_entry(item.name, os.stat(item.path))
            except OSError:
                continue  # gone, or a broken link: list_tree leaves it out too
            if not entry.kind:
                yield entry
        return
    if loc.kind == "s3":
        yield from _level_s3(loc)
        return
    import pyarrow.fs as pafs

    try:
        root_info = loc.fs.get_file_info(loc.root)
        if root_info.type == pafs.FileType.NotFound:
            raise SourceError(f"folder not found: {loc.uri}")
        if root_info.type == pafs.FileType.File:
            raise SourceError(f"expected a folder, found a file: {loc.uri}")
        infos = loc.fs.get_file_info(pafs.FileSelector(loc.root, recursive=False))
    except OSError as exc:
        raise SourceError(f"cannot list ({exc}): {loc.uri}") from exc
    for info in sorted(infos, key=lambda i: i.path):
        rel = loc.rel_of(info.path)
        is_dir = info.type == pafs.FileType.Directory
        mtime = int(info.mtime_ns if info.mtime_ns is not None else 0)
        yield FileEntry(rel, 0 if is_dir else int(info.size or 0), mtime, is_dir, ctime_ns=mtime)


def _level_s3(loc: Location) -> Iterator[FileEntry]:
    """One delimited listing of an S3 prefix: its objects and its common prefixes (folders)."""
    from botocore.exceptions import ClientError

    bucket, prefix = bucket_key(loc.root)
    base = f"{prefix}/" if prefix else ""
    found = False
    try:
        pages = s3_client(loc).get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=bucket, Prefix=base, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                found = True
                yield FileEntry(cp["Prefix"][len(base) :].rstrip("/"), 0, 0, True)
            for obj in page.get("Contents", []):
                found = True
                rel = obj["Key"][len(base) :]
                if not rel.strip("/") or rel.endswith("/"):
                    continue  # the prefix's own marker, a folder marker
                mtime = _s3_mtime_ns(obj["LastModified"])
                etag = str(obj.get("ETag", "")).strip('"')
                yield FileEntry(rel, int(obj["Size"]), mtime, ctime_ns=mtime, tag=etag)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise SourceError(f"no such bucket: {loc.uri}") from exc
        raise SourceError(f"cannot list ({code or exc}): {loc.uri}") from exc
    if not found and prefix:
        raise SourceError(f"folder not found: {loc.uri}")


def child(loc: Location, rel: str) -> Location:
    """The location of folder ``rel`` below ``loc`` (same filesystem and S3 options).

    Example:
        >>> child(resolve("/tmp"), "a/b").root
        '/tmp/a/b'
    """
    from dataclasses import replace

    return replace(loc, uri=loc.uri.rstrip("/") + "/" + rel, root=loc.path(rel))


def stat(
    loc: Location, rel: str, *, follow: bool = True, objects_only: bool = False
) -> FileEntry | None:
    """The current state of ``rel`` (as :func:`list_tree` lists it), or ``None`` when gone.

    Args:
        loc: the location.
        rel: the path below its root.
        follow: local paths: follow a symlink (``False``: a link is a ``symlink`` entry).
        objects_only: S3: one HEAD request, a missing object is ``None`` even when keys exist
            below it (``False`` also recognises such folders, with a listing request).
    """
    import pyarrow.fs as pafs

    if loc.kind == "local":  # one syscall, no objects
        try:
            st = os.stat(loc.path(rel)) if follow else os.lstat(loc.path(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None
        link = os.readlink(loc.path(rel)) if stat_mod.S_ISLNK(st.st_mode) else ""
        return _local_entry(rel, st, link)
    if loc.kind == "s3" and rel:
        from botocore.exceptions import ClientError

        bucket, key = bucket_key(loc.path(rel))
        try:
            head = s3_client(loc).head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code", "")
            if status != 404 and code not in ("404", "NoSuchKey", "NotFound"):
                raise
            if objects_only:
                return None
        else:
            mtime = _s3_mtime_ns(head["LastModified"])
            etag = str(head.get("ETag", "")).strip('"')
            return FileEntry(rel, int(head["ContentLength"]), mtime, ctime_ns=mtime, tag=etag)
    info = loc.fs.get_file_info(loc.path(rel))
    if info.type == pafs.FileType.NotFound:
        return None
    mtime = int(info.mtime_ns or 0)
    return FileEntry(
        rel, int(info.size or 0), mtime, info.type == pafs.FileType.Directory, ctime_ns=mtime
    )


@dataclass(frozen=True)
class Attrs:
    """The attributes ``--preserve`` copies: permission bits, owner and group.

    Attributes:
        mode: permission bits (``0o7777`` at most).
        owner: the owner's name (``""`` when it has none here).
        group: the group's name (``""`` when it has none here).
        uid: the owner's number (local files only).
        gid: the group's number (local files only).
    """

    mode: int
    owner: str = ""
    group: str = ""
    uid: int | None = None
    gid: int | None = None


def attrs(loc: Location, rel: str) -> Attrs | None:
    """Permission bits, owner and group of ``rel`` (local: of what a link points to).

    ``None`` where the store keeps none (S3, other stores) or the file is gone.
    """
    if loc.kind == "local":
        import grp
        import pwd

        try:
            st = os.stat(loc.path(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            owner = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = ""
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = ""
        return Attrs(stat_mod.S_IMODE(st.st_mode), owner, group, st.st_uid, st.st_gid)
    if loc.kind == "hdfs":
        from lakeshift.sources.hdfs import file_status

        status = file_status(loc.fs, loc.path(rel))
        if status is None:
            return None
        return Attrs(
            int(status.get("permission") or 0) & 0o7777,
            str(status.get("owner") or ""),
            str(status.get("group") or ""),
        )
    return None


class NotAFileError(OSError):
    """A path that was listed as a regular file is something else now (a FIFO, a device...)."""


def open_fd(path: str) -> int:
    """Open local file ``path`` for reading; never blocks on a FIFO or a device.

    The open is non-blocking (a FIFO with no writer would block a plain open forever) and the
    descriptor is checked to be a regular file.

    Raises:
        NotAFileError: the path is not a regular file.
        OSError: it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    mode = os.fstat(fd).st_mode
    if not stat_mod.S_ISREG(mode):
        os.close(fd)
        kind = "folder" if stat_mod.S_ISDIR(mode) else _special_kind(mode)
        raise NotAFileError(errno.EINVAL, f"not a regular file ({kind})", path)
    return fd


def open_path(loc: Location, path: str) -> BinaryIO | pa.NativeFile:
    """Open filesystem path ``path`` for sequential reading (``FileNotFoundError`` when gone).

    Local files are opened with the OS directly (less per-file overhead for many small files;
    see :func:`open_fd`); every other store through its pyarrow filesystem. Both give
    ``read(n)``, ``readinto(buf)`` and ``close()``.
    """
    if loc.kind == "local":
        return open(open_fd(path), "rb", buffering=0)  # readinto() straight into the buffer
    return loc.fs.open_input_stream(path)


def open_input(loc: Location, rel: str) -> BinaryIO | pa.NativeFile:
    """Open ``rel`` under the root for sequential reading (see :func:`open_path`)."""
    return open_path(loc, loc.path(rel))


class ObjectReader:
    """The body of one S3 object (or a byte range of it) read with one GET request (boto3).

    Used for lakeshift's reads of the target store, which the request budget counts.
    """

    def __init__(self, loc: Location, path: str, offset: int | None = None, length: int = 0):
        bucket, key = bucket_key(path)
        kw: dict[str, str] = {}
        if offset is not None:
            kw["Range"] = f"bytes={offset}-{offset + length - 1}"
        self._body = s3_client(loc).get_object(Bucket=bucket, Key=key, **kw)["Body"]

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left for ``-1``)."""
        return bytes(self._body.read(None if n < 0 else n))

    def readinto(self, buf: memoryview) -> int:
        """Fill ``buf`` from the body; the bytes read (0 at the end)."""
        data = self._body.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Release the connection."""
        self._body.close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_object(loc: Location, path: str) -> BinaryIO | pa.NativeFile | ObjectReader:
    """Open a file of the *target* store for reading.

    Like :func:`open_path`, but S3 objects are read with one boto3 GET (which the request
    observer counts).
    """
    if loc.kind == "s3":
        return ObjectReader(loc, path)
    return open_path(loc, path)


def read_parquet(loc: Location, path: str) -> object:
    """Read one Parquet file from ``loc``'s filesystem as a :class:`pyarrow.Table`."""
    import pyarrow.parquet as pq

    return pq.read_table(path, filesystem=loc.fs)


class RangeReader:
    """Random-access reads of one file: ``read(offset, length)`` from any thread.

    Local files use ``os.pread`` on one descriptor; S3 one ranged GET per call (boto3, with
    ``boto=True``, which the request observer sees) or pyarrow's random-access file
    (``read_at``); other stores pyarrow. Open with :func:`open_ranges`.
    """

    def __init__(self, loc: Location, rel: str, boto: bool = False) -> None:
        self._fd: int | None = None
        self._file: pa.NativeFile | None = None
        self._loc = loc
        self._path = loc.path(rel)
        self._boto = boto and loc.kind == "s3"
        if loc.kind == "local":
            self._fd = open_fd(self._path)
        elif not self._boto:
            self._file = loc.fs.open_input_file(self._path)

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
        if self._boto:
            with ObjectReader(self._loc, self._path, offset, length) as r:
                return r.read()
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


def open_ranges(loc: Location, rel: str, boto: bool = False) -> RangeReader:
    """Open ``rel`` under the root for random-access reads (``FileNotFoundError`` when gone)."""
    return RangeReader(loc, rel, boto)


# ---------------------------------------------------------------------------------------------
# Checking SRC and DST before any work


def _s3_parts(loc: Location) -> tuple[str, tuple[str, ...]]:
    bucket, key = bucket_key(loc.root)
    return bucket, tuple(p for p in key.split("/") if p)


def _under(inner: tuple[str, ...], outer: tuple[str, ...]) -> bool:
    return inner[: len(outer)] == outer


def _existing_ancestors(path: str) -> Iterator[tuple[str, os.stat_result]]:
    """``path`` and its parents that exist, nearest first, with their ``stat`` (followed)."""
    cur = path
    while True:
        try:
            st: os.stat_result | None = os.stat(cur)
        except (FileNotFoundError, NotADirectoryError):
            st = None
        if st is not None:
            yield cur, st
        parent = os.path.dirname(cur)
        if parent == cur:
            return
        cur = parent


def _check_local_inside(src: Location, dst: Location, *, what: str) -> None:
    rs, rd = os.path.realpath(src.root), os.path.realpath(dst.root)
    s_st = os.stat(rs)
    src_id = (s_st.st_dev, s_st.st_ino)
    # DST inside SRC: by the resolved path, or by device and inode (bind mounts, aliases)
    if (
        rd == rs
        or rd.startswith(rs.rstrip("/") + "/")
        or any((st.st_dev, st.st_ino) == src_id for _, st in _existing_ancestors(rd))
    ):
        same = " (the same folder)" if rd == rs else ""
        raise UsageError(f"{what} is inside the source{same} ({rs}): {dst.uri}")
    if what != "target":
        return
    try:
        d_st = os.stat(rd)
    except OSError:
        d_st = None
    if rs.startswith(rd.rstrip("/") + "/") or (
        d_st is not None
        and any(
            (st.st_dev, st.st_ino) == (d_st.st_dev, d_st.st_ino)
            for _, st in _existing_ancestors(rs)
        )
    ):
        raise UsageError(f"source is inside the target ({rd}): {src.uri}")


def _check_local_target(dst: Location, *, write: bool, what: str = "target") -> None:
    rd = os.path.realpath(dst.root)
    ancestors = list(_existing_ancestors(rd))
    if not ancestors:
        raise UsageError(f"{what} folder has no existing parent: {dst.uri}")
    nearest, st = ancestors[0]
    if not stat_mod.S_ISDIR(st.st_mode):
        if nearest == rd:
            raise UsageError(f"{what} is a file, expected a folder: {dst.uri}")
        raise UsageError(f"{what} is below a file, expected folders: {nearest}")
    if write and not os.access(nearest, os.W_OK | os.X_OK):
        raise UsageError(f"{what} is not writable (permission denied): {nearest}")


def _check_s3(src: Location, dst: Location, *, write: bool, what: str) -> None:
    from botocore.exceptions import ClientError

    d_bucket, d_parts = _s3_parts(dst)
    if src.kind == "s3":
        s_bucket, s_parts = _s3_parts(src)
        if s_bucket == d_bucket and _under(d_parts, s_parts):
            same = " (the same folder)" if d_parts == s_parts else ""
            raise UsageError(f"{what} is inside the source{same} (s3://{src.root}): {dst.uri}")
        if what == "target" and s_bucket == d_bucket and _under(s_parts, d_parts):
            raise UsageError(f"source is inside the target (s3://{dst.root}): {src.uri}")
    if what != "target":
        return
    client = s3_client(dst)
    try:
        client.head_bucket(Bucket=d_bucket)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise UsageError(f"no such bucket: s3://{d_bucket}") from exc
        if status == 403:
            raise UsageError(f"target bucket is not accessible (access denied): {dst.uri}") from exc
        raise UsageError(f"cannot reach the target bucket ({exc}): {dst.uri}") from exc
    if d_parts:
        try:
            client.head_object(Bucket=d_bucket, Key="/".join(d_parts))
        except ClientError:
            pass  # no object of that name: a folder (prefix), new or not
        else:
            raise UsageError(f"target is a file (an object), expected a folder: {dst.uri}")
    del write  # S3 cannot tell writability without writing: a refusal fails each file (exit 1)


def _check_other(src: Location, dst: Location, *, what: str) -> None:
    import pyarrow.fs as pafs

    s_parts = tuple(p for p in posixpath.normpath(src.root).split("/") if p)
    d_parts = tuple(p for p in posixpath.normpath(dst.root).split("/") if p)
    same_store = src.kind == dst.kind and urlsplit(src.uri).netloc == urlsplit(dst.uri).netloc
    if same_store and _under(d_parts, s_parts):
        raise UsageError(f"{what} is inside the source ({src.uri}): {dst.uri}")
    if what != "target":
        return
    if same_store and _under(s_parts, d_parts):
        raise UsageError(f"source is inside the target ({dst.uri}): {src.uri}")
    try:
        info = dst.fs.get_file_info(dst.root)
    except OSError as exc:
        raise UsageError(f"cannot reach the target ({exc}): {dst.uri}") from exc
    if info.type == pafs.FileType.File:
        raise UsageError(f"target is a file, expected a folder: {dst.uri}")


def check_locations(
    src: Location, dst: Location, *, write: bool = True, what: str = "target"
) -> None:
    """Check a source and a target before any work; raise one clear :class:`UsageError`.

    The source must be an existing folder. The target must not be inside the source (nor the
    same folder), the source not inside the target, the target not a file or below a file,
    and (``write``, local targets) its nearest existing folder writable. Local paths are
    compared as resolved real paths (``os.path.realpath``: ``./a`` and ``a``, symlinked
    aliases) and by device and inode of every existing folder above them (bind mounts); S3
    by bucket and normalised key prefix (``s3``, ``s3a`` and ``s3n`` are one store), with
    the bucket's existence checked; other stores by normalised path on the same host.

    Args:
        src: the source folder.
        dst: the folder to check against it.
        write: whether ``dst`` will be written.
        what: ``target``, or e.g. ``state folder`` for a separate manifest location (checked
            not to be inside the source and, locally, to be a writable folder).

    Raises:
        UsageError: one line, ``<what is wrong>: <where>``.
    """
    if what == "target":
        root = stat(src, "")
        if root is None:
            raise UsageError(f"source folder not found: {src.uri}")
        if not root.is_dir:
            raise UsageError(f"source is a file, expected a folder: {src.uri}")
    if dst.kind == "local":
        if src.kind == "local":
            _check_local_inside(src, dst, what=what)
        _check_local_target(dst, write=write, what=what)
    elif dst.kind == "s3":
        _check_s3(src, dst, write=write, what=what)
    else:
        _check_other(src, dst, what=what)
