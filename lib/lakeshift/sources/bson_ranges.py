"""Byte-range reads of large mongodump files through the filesystem layer (``pyarrow.fs``).

Spark's ``binaryFile`` source hands a whole file to one task as one byte array, so it cannot
read a file over 2 GiB and gives a big file to a single task. For such files (plain ``.bson``
and plain ``--archive`` files above ``split_bytes``) the driver makes one sequential pass that
reads only the 4-byte length prefixes (and the small namespace headers of an archive), in 4 MiB
chunks, seeking over document bodies, and records a *split point* at the first document
boundary after every ``split_bytes``: the offset plus the parser state there (the namespace and
whether a block's documents or a header follow). Every split point is a proven boundary (it was
reached by walking length prefixes from the start of the file), so each task reads exactly the
documents whose first byte lies in its range ``[start, end)``: none twice, none lost. Gzip files
cannot be entered in the middle; a big ``.gz`` file is streamed (inflated on the fly, never held
whole in memory) by one task.

Paths are Hadoop-style URIs or local paths, resolved by ``pyarrow.fs.FileSystem.from_uri``:
``file:``, local paths, ``s3://`` (``s3a://``/``s3n://`` are mapped to it), ``gs://``,
``hdfs://`` (libhdfs) and what else the installed pyarrow knows; a scheme it does not know
fails with a one-line :class:`~lakeshift.errors.SourceError` (such files can still be read
through ``binaryFile`` up to 2 GiB by raising ``split_bytes``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeshift.errors import SourceError

if TYPE_CHECKING:
    import pyarrow as pa

ARCHIVE_MAGIC = b"\x6d\xe2\x99\x81"
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 4 << 20
BATCH_BYTES = 16 << 20
BATCH_DOCS = 10_000


def open_fs(uri: str) -> tuple[Any, str]:
    """``(pyarrow FileSystem, path)`` for a Hadoop-style URI or a local path.

    Raises:
        SourceError: pyarrow has no filesystem for the scheme.
    """
    import pyarrow.fs as pafs

    fixed = uri
    for hadoop, native in (("s3a://", "s3://"), ("s3n://", "s3://")):
        if fixed.startswith(hadoop):
            fixed = native + fixed[len(hadoop) :]
    try:
        fs, path = pafs.FileSystem.from_uri(fixed)
    except (ValueError, OSError) as exc:
        raise SourceError(f"{uri}: no pyarrow filesystem for this path: {exc}") from exc
    return fs, path


class _RandomAccess:
    """``read_at(pos, n)`` over a seekable file, served from 4 MiB chunks (few, large reads)."""

    def __init__(self, f: Any, size: int, where: str) -> None:
        self.f = f
        self.size = size
        self.where = where
        self.buf = b""
        self.buf_at = 0

    def read_at(self, pos: int, n: int) -> bytes:
        end = pos + n
        if end > self.size:
            raise SourceError(
                f"{self.where}: truncated at byte {pos}: expected {n} bytes, the file has "
                f"{self.size - pos}"
            )
        if self.buf_at <= pos and end <= self.buf_at + len(self.buf):
            return self.buf[pos - self.buf_at : end - self.buf_at]
        self.f.seek(pos)
        data = self.f.read(max(n, min(CHUNK, self.size - pos)))
        if n > CHUNK:  # a big document: do not keep it as the chunk
            return bytes(data[:n])
        self.buf, self.buf_at = bytes(data), pos
        return self.buf[:n]


class _Sequential:
    """``read_at(pos, n)`` over a forward-only stream (a gzip file).

    ``pos`` may go back only into the previous read (a unit is read again after its length
    prefix); at the clean end of the stream a 4-byte read returns ``b""``.
    """

    def __init__(self, stream: Any, where: str) -> None:
        self.stream = stream
        self.where = where
        self.pos = 0
        self.last_at = 0
        self.last = b""
        self.size = 1 << 62  # unknown

    def _read(self, n: int) -> bytes:
        data = bytes(self.stream.read(n)) if n else b""
        self.pos += len(data)
        return data

    def read_at(self, pos: int, n: int) -> bytes:
        if self.last_at <= pos < self.pos:
            out = self.last[pos - self.last_at :]
            if len(out) >= n:
                return out[:n]
            out += self._read(n - len(out))
        elif pos < self.pos:
            raise SourceError(f"{self.where}: cannot seek back in a stream to byte {pos}")
        else:
            while self.pos < pos:
                if not self._read(min(CHUNK, pos - self.pos)):
                    break
            out = self._read(n) if self.pos == pos else b""
        self.last_at, self.last = pos, out
        if len(out) < n and not (n == 4 and not out):
            raise SourceError(f"{self.where}: truncated at byte {pos}: expected {n} bytes")
        return out


@dataclass(frozen=True)
class ByteRange:
    """One task's share of a dump file.

    Attributes:
        path: the file URI.
        start: offset of the first unit (a document, header or terminator) of this range.
        end: offset of the first unit of the next range (the file size for the last).
        kind: ``bson`` (a ``.bson`` file), ``archive`` or ``stream`` (gzip: one range).
        ns: the namespace of the documents at ``start``.
        in_docs: archive: ``start`` is inside a block's documents (else at a header or
            terminator).
    """

    path: str
    start: int
    end: int
    kind: str
    ns: str | None
    in_docs: bool = False


def _length(raw: bytes) -> int:
    (n,) = struct.unpack("<i", raw)
    return int(n)


def _archive_body(src: Any, where: str) -> int:
    """Offset of the first block of an archive (after magic, prelude and metadata)."""
    if src.read_at(0, 4) != ARCHIVE_MAGIC:
        raise SourceError(f"{where}: not a mongodump archive (magic number)")
    pos = 4
    pos += _length(src.read_at(pos, 4))  # prelude
    while True:
        n = _length(src.read_at(pos, 4))
        if n == -1:
            return pos + 4
        if n < 5:
            raise SourceError(f"{where}: corrupt archive metadata at byte {pos}: length {n}")
        pos += n


def _units(
    src: Any, kind: str, *, pos: int, end: int, ns: str | None, in_docs: bool, where: str
) -> Iterator[tuple[int, int, str | None, bool, str]]:
    """Walk length prefixes from ``pos`` while ``pos < end``.

    Yields ``(offset, length, namespace, in_docs before the unit, unit)`` with ``unit`` one of
    ``doc`` (a collection document), ``skip`` (a document of an EOF block), ``header``,
    ``term``. Reads only the length prefixes and archive headers.
    """
    import bson

    size = getattr(src, "size", 1 << 62)
    while pos < end:
        raw = src.read_at(pos, 4)
        if len(raw) < 4:  # the clean end of a stream
            return
        n = _length(raw)
        if kind == "bson":
            if n < 5 or pos + n > size:
                raise SourceError(f"{where}: corrupt BSON at byte {pos}: document length {n}")
            yield pos, n, ns, True, "doc"
            pos += n
            continue
        if n == -1:
            yield pos, 4, ns, in_docs, "term"
            pos += 4
            in_docs = False
            continue
        if n < 5 or pos + n > size:
            raise SourceError(f"{where}: corrupt archive at byte {pos}: length {n}")
        if in_docs:
            yield pos, n, ns, True, "doc" if ns is not None else "skip"
            pos += n
            continue
        header = bson.decode(src.read_at(pos, n))
        yield pos, n, ns, False, "header"
        ns = None if header.get("EOF") else f"{header.get('db', '')}.{header.get('collection', '')}"
        in_docs = True
        pos += n


def plan_ranges(uri: str, split_bytes: int, namespace: str) -> list[ByteRange]:
    """Split points of one file (driver side: one sequential pass over the length prefixes).

    ``namespace`` is used for ``.bson`` files (an archive names its own namespaces).

    Raises:
        SourceError: the file cannot be opened or is corrupt.
    """
    fs, path = open_fs(uri)
    try:
        with fs.open_input_file(path) as f:
            size = f.size()
            src = _RandomAccess(f, size, uri)
            magic = src.read_at(0, 4) if size >= 4 else b""
            if magic[:2] == GZIP_MAGIC:
                return [ByteRange(uri, 0, size, "stream", namespace)]
            if magic == ARCHIVE_MAGIC:
                kind, start, ns = "archive", _archive_body(src, uri), None
            else:
                kind, start, ns = "bson", 0, namespace
            out: list[tuple[int, str | None, bool]] = [(start, ns, kind == "bson")]
            last = start
            for pos, _, unit_ns, in_docs, _unit in _units(
                src, kind, pos=start, end=size, ns=ns, in_docs=False, where=uri
            ):
                if pos - last >= split_bytes:
                    out.append((pos, unit_ns, in_docs))
                    last = pos
    except OSError as exc:
        raise SourceError(f"{uri}: cannot read: {exc}") from exc
    ends = [p for p, _, _ in out[1:]] + [size]
    return [
        ByteRange(uri, p, e, kind, n, d) for (p, n, d), e in zip(out, ends, strict=True) if e > p
    ]


def read_range(r: ByteRange) -> Iterator[tuple[str, bytes]]:
    """``(namespace, document bytes)`` of every collection document starting in ``r``.

    Raises:
        SourceError: the file is corrupt.
    """
    fs, path = open_fs(r.path)
    if r.kind == "stream":
        with fs.open_input_stream(path, compression="gzip") as stream:
            src: Any = _Sequential(stream, r.path)
            if src.read_at(0, 4) == ARCHIVE_MAGIC:
                start = _archive_body(src, r.path)
                units = _units(
                    src, "archive", pos=start, end=1 << 62, ns=None, in_docs=False, where=r.path
                )
            else:
                units = _units(src, "bson", pos=0, end=1 << 62, ns=r.ns, in_docs=True, where=r.path)
            for pos, n, ns, _, unit in units:
                if unit == "doc":
                    yield ns or "", src.read_at(pos, n)
        return
    with fs.open_input_file(path) as f:
        src = _RandomAccess(f, f.size(), r.path)
        for pos, n, ns, _, unit in _units(
            src, r.kind, pos=r.start, end=r.end, ns=r.ns, in_docs=r.in_docs, where=r.path
        ):
            if unit == "doc":
                yield ns or "", src.read_at(pos, n)


def ranges_reader(ranges: list[ByteRange]) -> Any:
    """The ``mapInArrow`` function: range numbers (``id``) → the document frame."""

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        schema = pa.schema([("ns", pa.string()), ("doc", pa.binary())])
        for batch in batches:
            for i in batch.column("id").to_pylist():
                names: list[str] = []
                docs: list[bytes] = []
                size = 0
                for ns, doc in read_range(ranges[i]):
                    names.append(ns)
                    docs.append(doc)
                    size += len(doc)
                    if len(docs) >= BATCH_DOCS or size >= BATCH_BYTES:
                        yield pa.RecordBatch.from_pydict({"ns": names, "doc": docs}, schema=schema)
                        names, docs, size = [], [], 0
                if docs:
                    yield pa.RecordBatch.from_pydict({"ns": names, "doc": docs}, schema=schema)

    return fn
