"""Live MongoDB (or a wire-compatible server) through the official MongoDB Spark connector.

Spec: ``mongodb://[user:pw@]host:port/DB.COLLECTION`` or ``mongodb://host:port/DB`` with the
option ``collections=a,b`` (several collections are read and unioned). The output is the
document frame (``ns``, ``doc`` raw BSON) that every lakeshift MongoDB reader produces, so the
mapper decodes exactly the BSON the server stored.

How documents leave the server intact (``document_mode`` option):

* ``root`` (MongoDB): the connector runs ``[{"$project": {"_id": 0, "doc": "$$ROOT"}}]`` with the
  schema ``doc BINARY``; for a sub-document and a binary field the connector hands over the raw
  BSON bytes, so no value passes through a Spark type.
* ``fields`` (servers without ``$$ROOT``, e.g. FerretDB v1): each top-level field is read as a
  string with ``outputExtendedJson=true`` (canonical Extended JSON, exact types) and the
  executors re-encode the document with ``bson.json_util``. The field list comes from the
  ``fields`` option or from a key scan of the collection on the driver. The connector hands a
  top-level BSON null and a missing field over alike (a NULL string), so the read adds
  ``{"$addFields": {"__lakeshift_type_<i>": {"$type": "$<field>"}}}`` and the executors put a
  null back where the marker says ``"null"`` (nested nulls survive inside the sub-document's
  Extended JSON). Top-level field order follows the list.
* ``auto`` (default): ``fields`` for FerretDB, else ``root``. ``root`` on FerretDB is refused:
  FerretDB v1 does not evaluate ``$$ROOT`` (it returns the literal string ``"$$ROOT"``).

What FerretDB v1.24 (SQLite backend) loses or lacks, verified by ``tests/integration/
test_nosql_live.py``: it cannot store Decimal128 (an insert closes the connection), so a
FerretDB estate holds none; ``$$ROOT`` is not evaluated; ``$sample`` and ``$bucketAuto`` are
not implemented (hence the partitioner below); ``$ifNull`` is not implemented in ``$project``.
The commands a read sends (as FerretDB logs them) are listed in ``docs/nosql.md``.

Partitioner (``partitioner`` option, short names or class names), chosen for the server:

* FerretDB: ``paginate-count`` (``PaginateIntoPartitionsPartitioner``: ``count`` plus ``$sort``,
  ``$skip``, ``$limit`` on ``_id``; FerretDB v1 lacks ``$sample`` and ``$bucketAuto``);
* sharded MongoDB (``hello.msg == "isdbgrid"``): ``sharded`` (chunk ranges from ``config``);
* other MongoDB: ``sample`` (the connector's default: ``$collStats`` + ``$sample``).

``partitions`` sets ``max.number.of.partitions`` (paginate-count) and ``partition_size_mb`` sets
``partition.size`` (sample / paginate-size).
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeshift.errors import SourceError
from lakeshift.log import redact
from lakeshift.sources.documents import DOC_SCHEMA, DocumentSource

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

_P = "com.mongodb.spark.sql.connector.read.partitioner."
PARTITIONERS = {
    "sample": _P + "SamplePartitioner",
    "sharded": _P + "ShardedPartitioner",
    "paginate-size": _P + "PaginateBySizePartitioner",
    "paginate-count": _P + "PaginateIntoPartitionsPartitioner",
    "single": _P + "SinglePartitionPartitioner",
    "auto-bucket": _P + "AutoBucketPartitioner",
}
ROOT_PIPELINE = '[{"$project": {"_id": 0, "doc": "$$ROOT"}}]'


def choose_partitioner(build_info: Mapping[str, Any], hello: Mapping[str, Any]) -> str:
    """The partitioner short name that suits the server (see the module docstring)."""
    if "ferretdbVersion" in build_info:
        return "paginate-count"
    if hello.get("msg") == "isdbgrid":
        return "sharded"
    return "sample"


def _extjson_value(text: str, json_util: Any, opts: Any) -> Any:
    """A top-level value from the connector's string conversion (canonical Extended JSON).

    The connector hands a BSON string over as its raw text and every other type as Extended
    JSON (``{"$numberInt": …}``, ``{…}``, ``[…]``, ``true``/``false``); text that does not parse
    as such is a string. A string whose own text is valid Extended JSON of another type is
    ambiguous in this mode (documented limitation; ``document_mode=root`` has none).
    """
    if text in ("true", "false"):
        return text == "true"
    if text[:1] in ("{", "["):
        try:
            return json_util.loads('{"v": ' + text + "}", json_options=opts)["v"]
        except ValueError:
            return text
    return text


TYPE_MARKER = "__lakeshift_type_"


def type_markers(fields: list[str]) -> dict[str, dict[str, str]]:
    """``$addFields`` expressions ``{"__lakeshift_type_<i>": {"$type": "$<field>"}}``.

    The connector hands a BSON null and a missing field over alike (a NULL string); the marker
    (``"null"`` vs ``"missing"``) tells them apart. Fields whose name cannot be written as a
    ``$field`` path (dots, a leading ``$``) get no marker: their nulls read as missing.
    """
    return {
        f"{TYPE_MARKER}{i}": {"$type": f"${name}"}
        for i, name in enumerate(fields)
        if name and "." not in name and not name.startswith("$")
    }


def _fields_to_bson(
    fields: list[str], ns: str, markers: dict[str, Any] | None = None
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    marked = markers or {}

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import bson
        import pyarrow as pa
        from bson import json_util

        opts = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL)
        schema = pa.schema([("ns", pa.string()), ("doc", pa.binary())])
        for batch in batches:
            columns = [batch.column(name).to_pylist() for name in fields]
            kinds = [
                batch.column(f"{TYPE_MARKER}{i}").to_pylist()
                if f"{TYPE_MARKER}{i}" in marked
                else [None] * batch.num_rows
                for i in range(len(fields))
            ]
            docs = []
            for row, values in enumerate(zip(*columns, strict=True)):
                doc = {}
                for i, (name, text) in enumerate(zip(fields, values, strict=True)):
                    if text is not None:
                        doc[name] = _extjson_value(text, json_util, opts)
                    elif kinds[i][row] == "null":
                        doc[name] = None
                docs.append(bson.encode(doc))
            yield pa.RecordBatch.from_pydict({"ns": [ns] * len(docs), "doc": docs}, schema=schema)

    return fn


@dataclass(frozen=True)
class MongoSource(DocumentSource):
    """Collections of a live server as the document frame.

    Attributes:
        uri: the connection URI (may hold credentials: never logged, see :meth:`describe`).
        database: the database.
        collections: collection names.
        options: ``partitioner``, ``partitions``, ``partition_size_mb``, ``document_mode``,
            ``fields``, plus any ``spark.mongodb.read.*`` key without its prefix.
    """

    uri: str
    database: str
    collections: tuple[str, ...]
    options: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """``mongodb://host:port/db.coll`` without credentials."""
        parts = urllib.parse.urlsplit(self.uri)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"mongodb://{host}{port}/{self.database}.{','.join(self.collections)}"

    def _client(self) -> Any:
        import pymongo

        return pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=15_000)

    def server_facts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """``buildInfo`` and ``hello`` of the server (driver side, two small commands).

        Raises:
            SourceError: the server cannot be reached.
        """
        try:
            with self._client() as client:
                return dict(client.admin.command("buildInfo")), dict(client.admin.command("hello"))
        except Exception as exc:
            raise SourceError(
                f"{self.describe()}: cannot reach server: {redact(str(exc))[:200]}"
            ) from exc

    def discover_fields(self, collection: str) -> list[str]:
        """Every top-level field name of a collection (a key scan on the driver)."""
        from bson.raw_bson import RawBSONDocument

        names: dict[str, None] = {}
        with self._client() as client:
            coll = client[self.database].get_collection(
                collection,
                codec_options=client.codec_options.with_options(document_class=RawBSONDocument),
            )
            for doc in coll.find({}, batch_size=10_000):
                for key in doc:
                    names.setdefault(key, None)
        return list(names)

    def read(self, spark: SparkSession) -> DataFrame:
        """Plan the connector reads (one per collection, unioned)."""
        from functools import reduce

        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        build_info, hello = self.server_facts()
        partitioner = self.options.get("partitioner") or choose_partitioner(build_info, hello)
        mode = self.options.get("document_mode", "auto")
        if mode == "auto":
            mode = "fields" if "ferretdbVersion" in build_info else "root"
        if mode not in ("root", "fields"):
            raise SourceError(
                f"{self.describe()}: document_mode: expected auto, root or fields, found {mode!r}"
            )
        if mode == "root" and "ferretdbVersion" in build_info:
            raise SourceError(
                f"{self.describe()}: document_mode root: FerretDB "
                f"{build_info['ferretdbVersion']} does not evaluate $$ROOT (it returns the "
                "literal string); use document_mode fields (the default for FerretDB)"
            )
        log.info("%s: partitioner %s, document mode %s", self.describe(), partitioner, mode)
        known = {"partitioner", "partitions", "partition_size_mb", "document_mode", "fields"}
        frames = []
        for coll in self.collections:
            ns = f"{self.database}.{coll}"
            reader = (
                spark.read.format("mongodb")
                .option("connection.uri", self.uri)
                .option("database", self.database)
                .option("collection", coll)
                .option("partitioner", PARTITIONERS.get(partitioner, partitioner))
            )
            if "partitions" in self.options:
                reader = reader.option(
                    "partitioner.options.max.number.of.partitions", self.options["partitions"]
                )
            if "partition_size_mb" in self.options:
                reader = reader.option(
                    "partitioner.options.partition.size", self.options["partition_size_mb"]
                )
            for key, value in self.options.items():
                if key not in known:
                    reader = reader.option(key, value)
            if mode == "root":
                frame = (
                    reader.option("aggregation.pipeline", ROOT_PIPELINE)
                    .schema("doc BINARY")
                    .load()
                    .select(F.lit(ns).alias("ns"), F.col("doc"))
                )
            else:
                fields = [
                    f for f in self.options.get("fields", "").split(",") if f
                ] or self.discover_fields(coll)
                if not fields:
                    continue  # an empty collection
                markers = type_markers(fields)
                schema = T.StructType(
                    [T.StructField(f, T.StringType()) for f in [*fields, *markers]]
                )
                if markers:
                    reader = reader.option(
                        "aggregation.pipeline", json.dumps([{"$addFields": markers}])
                    )
                frame = (
                    reader.option("outputExtendedJson", "true")
                    .schema(schema)
                    .load()
                    .mapInArrow(_fields_to_bson(fields, ns, markers), DOC_SCHEMA)
                )
            frames.append(frame)
        if not frames:
            return spark.createDataFrame([], DOC_SCHEMA)
        return reduce(lambda a, b: a.unionByName(b), frames)


def from_spec(spec: str, options: Mapping[str, str]) -> MongoSource:
    """``mongodb://host:port/db.coll`` (or ``/db`` + ``collections=a,b``) → :class:`MongoSource`.

    Raises:
        SourceError: no database or no collection given.
    """
    parts = urllib.parse.urlsplit(spec)
    path = urllib.parse.unquote(parts.path.lstrip("/"))
    database, _, coll = path.partition(".")
    opts = dict(options)
    names = [c for c in ([coll] if coll else []) + opts.pop("collections", "").split(",") if c]
    if not database or not names:
        raise SourceError(
            f"{redact(spec)}: expected mongodb://HOST:PORT/DB.COLLECTION, or /DB with the option "
            "collections=a,b"
        )
    uri = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/", parts.query, ""))
    return MongoSource(uri, database, tuple(dict.fromkeys(names)), opts)


def _register() -> None:
    from lakeshift.sources.factory import register_scheme

    register_scheme("mongodb", from_spec)
    register_scheme("mongodb+srv", from_spec)


_register()
