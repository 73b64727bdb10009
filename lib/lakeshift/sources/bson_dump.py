"""``mongodump`` output as a DataFrame of raw BSON documents, decoded across tasks.

Two layouts are read, plain or gzip-compressed, from any Hadoop filesystem path:

* ``--archive`` files (``mongodump --archive[=file] [--gzip]``): a magic number, a prelude
  document, collection metadata, then blocks of ``namespace header, documents…, 0xFFFFFFFF``
  (blocks of several collections may interleave);
* per-collection folders (``dump/<db>/<collection>.bson[.gz]``), the namespace taken from the
  folder and file names.

How the work is split: stage 1 reads each file's bytes with Spark's ``binaryFile`` source (one
task per file, no decoding: a gzip stream can only be inflated from its start, so a ``--gzip``
archive is inherently inflated by one task; a plain file is only walked from length prefix to
length prefix) and cuts it into chunks of whole documents of about ``chunk_bytes``. Stage 2
spreads the chunks round-robin over ``partitions`` tasks, which emit one row per document. The
expensive part, decoding and mapping each document with pymongo's ``bson``, then runs on every
executor in parallel (see :mod:`lakeshift.nosql.normalise`). A single file must fit Spark's
binaryFile limit (2 GiB), so files above ``split_bytes`` (default 256 MB) take another path
(:mod:`lakeshift.sources.bson_ranges`): the driver walks their length prefixes once and tasks
read byte ranges of about ``split_bytes`` through ``pyarrow.fs`` (a big ``.gz`` file is
streamed by one task).

The output is the *document frame*: ``ns STRING, doc BINARY`` (:data:`DOC_SCHEMA`), shared by
every MongoDB reader (Extended JSON files, live servers).

Example:
    >>> src = MongoDumpSource("/data/sample_supplies.gz")  # doctest: +SKIP
    >>> src.read(spark).count()  # doctest: +SKIP
    5000
"""

from __future__ import annotations

import gzip
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from lakeshift.errors import SourceError
from lakeshift.sources.documents import DOC_SCHEMA, PathDocumentSource

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

ARCHIVE_MAGIC = b"\x6d\xe2\x99\x81"
TERMINATOR = -1
CHUNK_SCHEMA = "ns STRING, file STRING, chunk INT, docs BINARY"
DEFAULT_CHUNK_BYTES = 8 << 20
DEFAULT_SPLIT_BYTES = 256 << 20
_GZIP_MAGIC = b"\x1f\x8b"


def _length(data: bytes | memoryview, pos: int, where: str) -> int:
    if pos + 4 > len(data):
        raise SourceError(f"{where}: truncated BSON at byte {pos}: expected a 4-byte length")
    (n,) = struct.unpack_from("<i", data, pos)
    return int(n)


def maybe_gunzip(data: bytes) -> bytes:
    """Inflate ``data`` when it starts with the gzip magic number, else return it unchanged."""
    if data[:2] == _GZIP_MAGIC:
        return gzip.decompress(data)
    return data


def iter_bson_documents(
    data: bytes, start: int = 0, where: str = "bson"
) -> Iterator[tuple[int, int]]:
    """Yield ``(offset, length)`` of each BSON document in a plain concatenation (a ``.bson`` file).

    Raises:
        SourceError: a length prefix is impossible or runs past the end of the data.
    """
    pos = start
    end = len(data)
    while pos < end:
        n = _length(data, pos, where)
        if n < 5 or pos + n > end:
            raise SourceError(f"{where}: corrupt BSON at byte {pos}: document length {n}")
        yield pos, n
        pos += n


def iter_archive(data: bytes, where: str = "archive") -> Iterator[tuple[str, int, int]]:
    """Yield ``(namespace, offset, length)`` of every collection document in a mongodump archive.

    Metadata, namespace headers and terminators are skipped. Views and index metadata produce no
    rows.

    Raises:
        SourceError: the magic number is wrong or the structure is corrupt.
    """
    import bson

    if data[:4] != ARCHIVE_MAGIC:
        raise SourceError(
            f"{where}: not a mongodump archive: expected magic {ARCHIVE_MAGIC.hex()}, "
            f"found {data[:4].hex() or 'empty file'}"
        )
    pos = 4
    n = _length(data, pos, where)
    pos += n  # prelude
    # metadata section: documents up to the first terminator
    while pos < len(data):
        n = _length(data, pos, where)
        pos += 4 if n == TERMINATOR else n
        if n == TERMINATOR:
            break
        if n < 5:
            raise SourceError(f"{where}: corrupt archive metadata at byte {pos}")
    while pos < len(data):
        n = _length(data, pos, where)
        if n == TERMINATOR:  # an empty block
            pos += 4
            continue
        if n < 5 or pos + n > len(data):
            raise SourceError(f"{where}: corrupt namespace header at byte {pos}: length {n}")
        header = bson.decode(data[pos : pos + n])
        pos += n
        ns = f"{header.get('db', '')}.{header.get('collection', '')}"
        while pos < len(data):
            n = _length(data, pos, where)
            if n == TERMINATOR:
                pos += 4
                break
            if n < 5 or pos + n > len(data):
                raise SourceError(f"{where}: corrupt document in {ns} at byte {pos}: length {n}")
            if not header.get("EOF", False):
                yield ns, pos, n
            pos += n


def namespace_for_bson_file(path: str) -> str:
    """``db.collection`` for ``…/dump/<db>/<collection>.bson[.gz]``."""
    parts = path.rstrip("/").split("/")
    name = parts[-1]
    for suffix in (".gz", ".bson"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    db = parts[-2] if len(parts) > 1 else ""
    return f"{db}.{name}" if db else name


def split_file(
    path: str, content: bytes, chunk_bytes: int = DEFAULT_CHUNK_BYTES, parts: int = 1
) -> Iterator[tuple[str, int, bytes]]:
    """Cut one dump file into ``(namespace, chunk number, concatenated documents)``.

    Each chunk holds whole documents of one namespace, about ``chunk_bytes`` long, smaller for a
    small file so that it still spreads over ``parts`` tasks (never below 64 KiB).
    """
    data = maybe_gunzip(content)
    chunk_bytes = max(64 << 10, min(chunk_bytes, len(data) // max(1, 2 * parts)))
    if data[:4] == ARCHIVE_MAGIC:
        spans: Iterator[tuple[str, int, int]] = iter_archive(data, where=path)
    else:
        ns = namespace_for_bson_file(path)
        spans = ((ns, off, n) for off, n in iter_bson_documents(data, where=path))
    current_ns: str | None = None
    pieces: list[bytes] = []
    size = 0
    chunk = 0
    view = memoryview(data)
    for ns, off, n in spans:
        if pieces and (ns != current_ns or size >= chunk_bytes):
            yield current_ns or "", chunk, b"".join(pieces)
            chunk += 1
            pieces, size = [], 0
        current_ns = ns
        pieces.append(bytes(view[off : off + n]))
        size += n
    if pieces:
        yield current_ns or "", chunk, b"".join(pieces)


def _split_batches(
    chunk_bytes: int, parts: int
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        for batch in batches:
            paths = batch.column("path").to_pylist()
            contents = batch.column("content").to_pylist()
            for path, content in zip(paths, contents, strict=True):
                if path.endswith(".metadata.json") or path.endswith(".metadata.json.gz"):
                    continue
                for ns, chunk, docs in split_file(path, content or b"", chunk_bytes, parts):
                    yield pa.RecordBatch.from_pydict(
                        {"ns": [ns], "file": [path], "chunk": [chunk], "docs": [docs]},
                        schema=pa.schema(
                            [
                                ("ns", pa.string()),
                                ("file", pa.string()),
                                ("chunk", pa.int32()),
                                ("docs", pa.binary()),
                            ]
                        ),
                    )

    return fn


def _explode_chunks(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    schema = pa.schema([("ns", pa.string()), ("doc", pa.binary())])
    for batch in batches:
        for ns, file, docs in zip(
            batch.column("ns").to_pylist(),
            batch.column("file").to_pylist(),
            batch.column("docs").to_pylist(),
            strict=True,
        ):
            out_docs = [docs[o : o + n] for o, n in iter_bson_documents(docs, where=file)]
            yield pa.RecordBatch.from_pydict(
                {"ns": [ns] * len(out_docs), "doc": out_docs}, schema=schema
            )


@dataclass(frozen=True)
class MongoDumpSource(PathDocumentSource):
    """mongodump archives or ``.bson`` folders as the document frame (``ns``, ``doc``).

    Attributes:
        path: (inherited) a file, folder or glob on any Hadoop filesystem.
        options: (inherited) ``partitions`` (decode tasks for small files, default: Spark's default
            parallelism), ``chunk_bytes`` (default 8MB), ``split_bytes`` (default 256MB: files
            above it are read by byte ranges of this size, see
            :mod:`lakeshift.sources.bson_ranges`), ``namespaces`` (comma-separated filter).
    """

    scheme: ClassVar[str] = "mongodump"

    def read(self, spark: SparkSession) -> DataFrame:
        """Plan the read (lists the files and plans the byte ranges of big ones; no decoding).

        Raises:
            SourceError: the path cannot be listed or a big file is corrupt.
        """
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F

        from lakeshift.config import parse_size
        from lakeshift.sources.bson_ranges import plan_ranges, ranges_reader

        chunk = parse_size(self.options.get("chunk_bytes", DEFAULT_CHUNK_BYTES))
        split = parse_size(self.options.get("split_bytes", DEFAULT_SPLIT_BYTES))
        parts = int(self.options.get("partitions", 0)) or spark.sparkContext.defaultParallelism
        try:
            files = (
                spark.read.format("binaryFile")
                .option("recursiveFileLookup", "true")
                .load(self.path)
            )
            # metadata only (binaryFile reads no content for these columns)
            big = [
                str(r["path"])
                for r in files.where(F.col("length") > split).select("path").collect()
                if not str(r["path"]).endswith((".metadata.json", ".metadata.json.gz"))
            ]
        except AnalysisException as exc:
            raise SourceError(
                f"{self.describe()}: cannot read: {str(exc).splitlines()[0]}"
            ) from exc
        small = files.where(F.col("length") <= split).select("path", "content")
        chunks = small.mapInArrow(_split_batches(chunk, parts), CHUNK_SCHEMA)
        wanted = [s.strip() for s in self.options.get("namespaces", "").split(",") if s.strip()]
        if wanted:
            chunks = chunks.where(F.col("ns").isin(wanted))
        out = chunks.repartition(parts).mapInArrow(_explode_chunks, DOC_SCHEMA)
        if big:
            ranges = [r for p in big for r in plan_ranges(p, split, namespace_for_bson_file(p))]
            log.info(
                "%s: %d big file(s) in %d byte range(s)", self.describe(), len(big), len(ranges)
            )
            ranged = spark.range(len(ranges), numPartitions=len(ranges)).mapInArrow(
                ranges_reader(ranges), DOC_SCHEMA
            )
            if wanted:
                ranged = ranged.where(F.col("ns").isin(wanted))
            out = out.unionByName(ranged)
        return out


from_spec = MongoDumpSource.from_spec
MongoDumpSource.register()
