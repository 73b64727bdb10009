"""``mongoexport`` Extended JSON v2 files (canonical or relaxed) as the document frame.

Files hold one document per line (mongoexport's default; ``--jsonArray`` output is not read).
Spark's text source splits them across tasks (plain files by byte range, ``.gz`` per file);
each task parses its lines with ``bson.json_util`` and re-encodes them to BSON, so every later
step sees exactly the BSON types the JSON described (``$numberDecimal`` stays Decimal128,
``$date`` stays a UTC datetime with milliseconds, ``$numberLong`` stays int64).

The namespace of a document is the file name without extensions (``accounts.json`` →
``accounts``), prefixed with the parent folder (``sample_analytics.accounts``). A line that is not
valid Extended JSON becomes a document ``{"$lakeshift_invalid_json": line}`` so the mapping step
quarantines it with the line as raw value instead of failing the job.

Example:
    >>> ExtJsonSource("/data/sample_analytics/*.json").read(spark)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from lakeshift.errors import SourceError
from lakeshift.sources.documents import DOC_SCHEMA, PathDocumentSource

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

INVALID_JSON_KEY = "$lakeshift_invalid_json"


def namespace_for_json_file(path: str) -> str:
    """``db.collection`` for ``…/<db>/<collection>.json[.gz]``."""
    parts = path.rstrip("/").split("/")
    name = parts[-1]
    for suffix in (".gz", ".json", ".jsonl", ".ndjson"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    db = parts[-2] if len(parts) > 1 else ""
    return f"{db}.{name}" if db else name


def line_to_bson(line: str) -> bytes | None:
    """Parse one Extended JSON line to BSON bytes; ``None`` for a blank line.

    A line that does not parse becomes ``{"$lakeshift_invalid_json": line}``.
    """
    import bson
    from bson import json_util

    text = line.strip()
    if not text:
        return None
    try:
        doc = json_util.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a document")
        return bson.encode(doc)
    except Exception:  # any parse or encode failure is quarantined downstream
        return bson.encode({INVALID_JSON_KEY: text})


def _parse_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    schema = pa.schema([("ns", pa.string()), ("doc", pa.binary())])
    for batch in batches:
        ns_out: list[str] = []
        docs: list[bytes] = []
        for path, line in zip(
            batch.column("path").to_pylist(), batch.column("value").to_pylist(), strict=True
        ):
            raw = line_to_bson(line or "")
            if raw is not None:
                ns_out.append(namespace_for_json_file(path))
                docs.append(raw)
        yield pa.RecordBatch.from_pydict({"ns": ns_out, "doc": docs}, schema=schema)


@dataclass(frozen=True)
class ExtJsonSource(PathDocumentSource):
    """Extended JSON v2 lines as the document frame (``ns``, ``doc``).

    Attributes:
        path: (inherited) a file, folder or glob on any Hadoop filesystem.
        options: (inherited) ``namespace`` to force one namespace for every file.
    """

    scheme: ClassVar[str] = "extjson"

    def read(self, spark: SparkSession) -> DataFrame:
        """Plan the read (split by Spark's text source)."""
        from pyspark.errors import AnalysisException
        from pyspark.sql import functions as F

        try:
            lines = (
                spark.read.option("recursiveFileLookup", "true")
                .text(self.path)
                .select(F.col("_metadata.file_path").alias("path"), "value")
            )
        except AnalysisException as exc:
            raise SourceError(
                f"{self.describe()}: cannot read: {str(exc).splitlines()[0]}"
            ) from exc
        out = lines.mapInArrow(_parse_batches, DOC_SCHEMA)
        forced = self.options.get("namespace")
        if forced:
            out = out.withColumn("ns", F.lit(forced))
        return out


from_spec = ExtJsonSource.from_spec
ExtJsonSource.register()
