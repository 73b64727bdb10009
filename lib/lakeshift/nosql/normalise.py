"""Map the document frame to table rows and quarantine rows, all-or-nothing per document.

One ``mapInArrow`` pass decodes each document once (pymongo's ``bson`` C extension) and emits one
*wide row* per document: ``_ok``, ``_doc_id``, ``_q`` (quarantine rows) and ``t0``, ``t1``, … (an
array of row structs per table, parent first). A document with any value that fails its mapping
has ``_ok = false``: none of its rows reach any table and all of its issues go to quarantine,
so ``documents in = documents loaded + documents quarantined`` holds by construction and is
checked on every run. Table frames are then ``inline(tN)`` of the ``_ok`` wide rows (Spark
built-ins); values keep their exact types (Decimal128 → ``DecimalType(34, s)``, dates →
``TimestampType`` in UTC with milliseconds, never through a double).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeshift.nosql.bsontypes import (
    DATE_RANGE_MS,
    NO_NUL,
    NONFINITE_DOUBLE_OK,
    Nonfinite,
    ValueIssue,
    bson_type,
    convert,
    ms_to_iso,
)
from lakeshift.nosql.mapping import Collection, Column, Table

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import DataFrame
    from pyspark.sql.types import DataType, StructType

QUARANTINE_FIELDS = ("doc_id", "field_path", "raw_value", "reason", "document")
RAW_LIMIT = 10_000
INVALID_JSON_KEY = "$lakeshift_invalid_json"
_MISSING = object()


def arrow_type(col: Column) -> pa.DataType:
    """The Arrow type of a column's values."""
    import pyarrow as pa

    return {
        "int": pa.int32(),
        "long": pa.int64(),
        "double": pa.float64(),
        "decimal": pa.decimal128(34, col.scale or 0),
        "boolean": pa.bool_(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "binary": pa.binary(),
    }.get(col.type, pa.string())


def spark_type(col: Column) -> DataType:
    """The Spark type of a column's values."""
    from pyspark.sql import types as T

    simple: dict[str, DataType] = {
        "int": T.IntegerType(),
        "long": T.LongType(),
        "double": T.DoubleType(),
        "boolean": T.BooleanType(),
        "timestamp": T.TimestampType(),
        "binary": T.BinaryType(),
    }
    if col.type == "decimal":
        return T.DecimalType(34, col.scale or 0)
    return simple.get(col.type, T.StringType())


def table_struct(table: Table) -> StructType:
    """Spark schema of one table's rows."""
    from pyspark.sql import types as T

    return T.StructType(
        [T.StructField(c.name, spark_type(c), nullable=True) for c in table.all_columns]
    )


def wide_schema(coll: Collection) -> StructType:
    """Spark schema of the wide rows for ``coll``."""
    from pyspark.sql import types as T

    q = T.StructType([T.StructField(n, T.StringType()) for n in QUARANTINE_FIELDS])
    fields = [
        T.StructField("_ok", T.BooleanType()),
        T.StructField("_doc_id", T.StringType()),
        T.StructField("_q", T.ArrayType(q)),
    ]
    fields += [
        T.StructField(f"t{i}", T.ArrayType(table_struct(t))) for i, t in enumerate(coll.tables)
    ]
    return T.StructType(fields)


def _json_options(mode: str) -> Any:
    from bson import json_util

    return (
        json_util.CANONICAL_JSON_OPTIONS if mode == "canonical" else json_util.RELAXED_JSON_OPTIONS
    )


def _dotted(path: tuple[str, ...] | list[str]) -> str:
    return ".".join(str(p) for p in path)


def _find_bad_string(value: Any, path: list[str]) -> str | None:
    """Path of the first key or string holding undecodable bytes (surrogate escapes)."""

    def bad(s: str) -> bool:
        try:
            s.encode("utf-8")
            return False
        except UnicodeEncodeError:
            return True

    if isinstance(value, dict):
        for k, v in value.items():
            if bad(k):
                return _dotted(
                    [*path, k.encode("utf-8", "surrogateescape").decode("utf-8", "replace")]
                )
            found = _find_bad_string(v, [*path, k])
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _find_bad_string(v, [*path, str(i)])
            if found is not None:
                return found
    elif isinstance(value, str) and bad(value):
        return _dotted(path)
    return None


@dataclass
class MappedDocument:
    """One document's outcome: rows per table (by table index) or quarantine rows."""

    ok: bool
    doc_id: str | None
    rows: list[list[dict[str, Any]]]
    issues: list[tuple[Any, ...]]


class DocumentMapper:
    """Maps decoded documents of one collection to table rows for one target dialect."""

    def __init__(self, coll: Collection, dialect: str, json_mode: str = "relaxed") -> None:
        self.coll = coll
        self.dialect = dialect
        self.tables = coll.tables
        self.index = {id(t): i for i, t in enumerate(self.tables)}
        self.json_mode = json_mode
        self._opts = None

    # -- helpers ---------------------------------------------------------------------------------

    def dumps(self, value: Any) -> str:
        """Extended JSON text (relaxed or canonical) of a decoded value."""
        from bson import json_util

        return json_util.dumps(
            value, json_options=_json_options(self.json_mode), ensure_ascii=False
        )

    def _raw(self, value: Any) -> str:
        try:
            text = self.dumps(value)
        except Exception:
            text = repr(value)
        return text if len(text) <= RAW_LIMIT else text[:RAW_LIMIT] + "…"

    def _id_text(self, value: Any) -> str:
        import bson

        if isinstance(value, bson.ObjectId | str):
            return str(value)
        from bson import json_util

        return json_util.dumps(value, json_options=json_util.CANONICAL_JSON_OPTIONS)

    @staticmethod
    def _get(node: Any, path: tuple[str, ...]) -> Any:
        for seg in path:
            if not isinstance(node, dict) or seg not in node:
                return _MISSING
            node = node[seg]
        return node

    def _codec(self, errors: str = "strict") -> Any:
        from bson.binary import UuidRepresentation
        from bson.codec_options import CodecOptions, DatetimeConversion

        return CodecOptions(
            document_class=dict,
            tz_aware=False,
            uuid_representation=UuidRepresentation.STANDARD,
            datetime_conversion=DatetimeConversion.DATETIME_MS,
            unicode_decode_error_handler=errors,
        )

    # -- mapping ---------------------------------------------------------------------------------

    def map_raw(self, raw: bytes) -> MappedDocument:
        """Decode and map one BSON document."""
        import bson

        if self._opts is None:
            self._opts = self._codec()
        try:
            doc = bson.decode(raw, self._opts)
        except Exception as exc:
            return self._undecodable(raw, exc)
        if INVALID_JSON_KEY in doc and len(doc) == 1:
            line = str(doc[INVALID_JSON_KEY])
            return MappedDocument(
                False, None, [], [(None, "", line[:RAW_LIMIT], "invalid Extended JSON line", line)]
            )
        return self.map_document(doc)

    def _undecodable(self, raw: bytes, exc: Exception) -> MappedDocument:
        import bson

        reason = f"undecodable BSON: {type(exc).__name__}: {str(exc)[:200]}"
        doc_id, path = None, ""
        try:
            doc = bson.decode(raw, self._codec("surrogateescape"))
            if "_id" in doc:
                doc_id = self._id_text(doc["_id"])
            found = _find_bad_string(doc, [])
            if found is not None:
                path, reason = found, "invalid UTF-8 in a string or field name"
        except Exception:  # even lenient decoding fails: keep only the bytes
            pass
        b64 = base64.b64encode(raw).decode("ascii")
        return MappedDocument(False, doc_id, [], [(doc_id, path, None, reason, "base64:" + b64)])

    def map_document(self, doc: dict[str, Any]) -> MappedDocument:
        """Map one decoded document (all tables, all-or-nothing)."""
        rows: list[list[dict[str, Any]]] = [[] for _ in self.tables]
        issues: list[tuple[str, str, Any]] = []
        doc_id = self._id_text(doc["_id"]) if "_id" in doc else None
        self._table(self.coll.root, doc, {}, (), rows=rows, issues=issues)
        if issues:
            whole = self._raw(doc)
            q = [
                (doc_id, p, None if v is _MISSING else self._raw(v), r, whole) for p, r, v in issues
            ]
            return MappedDocument(False, doc_id, [], q)
        return MappedDocument(True, doc_id, rows, [])

    def _value(self, col: Column, value: Any, where: tuple[str, ...], issues: list[Any]) -> Any:
        spec = col.spec
        path = _dotted(where + col.path)
        if value is _MISSING or value is None:
            if not col.nullable:
                issues.append(
                    (
                        path,
                        "required field is " + ("missing" if value is _MISSING else "null"),
                        value,
                    )
                )
            return None
        if col.type == "json":
            out: Any = self.dumps(value)
        else:
            on_mismatch = spec.on_mismatch if spec is not None else "reject"
            accept = spec.accept if spec is not None else None
            if accept is not None and bson_type(value) not in accept:
                if on_mismatch == "null":
                    return None
                if on_mismatch == "reject":
                    issues.append(
                        (path, f"BSON type {bson_type(value)} not in accept {accept}", value)
                    )
                    return None
            try:
                out = convert(
                    value, col.type, col.scale, cast=on_mismatch == "cast" or accept is not None
                )
            except ValueIssue as exc:
                if on_mismatch == "null":
                    return None
                issues.append((path, str(exc), value))
                return None
        return self._check(col, out, path, value, issues)

    def _check(self, col: Column, out: Any, path: str, value: Any, issues: list[Any]) -> Any:
        if isinstance(out, Nonfinite):
            if col.type == "double" and self.dialect in NONFINITE_DOUBLE_OK:
                return float(out.label.replace("Infinity", "inf"))
            if col.spec is not None and col.spec.nonfinite == "null":
                return out
            issues.append(
                (
                    path,
                    f"{out.label} cannot be stored in a {col.type} column on "
                    f"{self.dialect} (nonfinite: quarantine)",
                    value,
                )
            )
            return None
        if col.type == "timestamp":
            lo, hi = DATE_RANGE_MS[self.dialect]
            if not lo <= out <= hi:
                shown = (
                    ms_to_iso(out)
                    if DATE_RANGE_MS["sqlite"][0] <= out <= DATE_RANGE_MS["sqlite"][1]
                    else f"{out} ms"
                )
                issues.append((path, f"date {shown} out of range for {self.dialect}", value))
                return None
            return out * 1000
        if isinstance(out, str):
            if col.max_length is not None and len(out) > col.max_length:
                issues.append(
                    (
                        path,
                        f"string of {len(out)} characters exceeds max_length {col.max_length}",
                        value,
                    )
                )
                return None
            if self.dialect in NO_NUL and (
                "\x00" in out or (col.type == "json" and "\\u0000" in out)
            ):
                issues.append((path, f"U+0000 cannot be stored in {self.dialect} text", value))
                return None
        return out

    def _table(
        self,
        table: Table,
        element: Any,
        keys: dict[str, Any],
        where: tuple[str, ...],
        *,
        rows: list[list[dict[str, Any]]],
        issues: list[Any],
    ) -> None:
        row: dict[str, Any] = dict(keys)
        for col in table.columns:
            if col.key_role in ("extra", "flag"):
                continue
            value = self._get(element, col.path)
            out = self._value(col, value, where, issues)
            if isinstance(out, Nonfinite):
                row[col.name] = None
                flag = next(c for c in table.columns if c.key_role == "flag" and c.path == col.path)
                row[flag.name] = out.label
            else:
                row[col.name] = out
        if table.level == 0:
            pk = table.key_columns[0]
            if row.get(pk.name) is None and not any(p == _dotted(pk.path) for p, _, _ in issues):
                issues.append((_dotted(pk.path), "primary key is missing or null", _MISSING))
        if table.unmapped != "ignore" and table.kind != "scalars":
            self._unmapped(table, element, where, row, issues)
        rows[self.index[id(table)]].append(row)
        child_keys = {c.name: row.get(c.name) for c in table.key_columns}
        for child in table.children:
            self._child(child, element, child_keys, where, rows=rows, issues=issues)

    def _child(
        self,
        child: Table,
        element: Any,
        keys: dict[str, Any],
        where: tuple[str, ...],
        *,
        rows: list[list[dict[str, Any]]],
        issues: list[Any],
    ) -> None:
        value = self._get(element, child.path)
        at = where + child.path
        if value is _MISSING or value is None:
            return
        own = child.key_columns[-1]
        if child.kind == "map":
            if not isinstance(value, dict):
                issues.append(
                    (
                        _dotted(at),
                        f"expected a sub-document (map), found BSON {bson_type(value)}",
                        value,
                    )
                )
                return
            for k, item in value.items():
                if len(k) > (own.max_length or 255):
                    issues.append((_dotted((*at, k)), "map key longer than 255 characters", k))
                    continue
                self._table(child, item, {**keys, own.name: k}, (*at, k), rows=rows, issues=issues)
            return
        if not isinstance(value, list):
            issues.append((_dotted(at), f"expected an array, found BSON {bson_type(value)}", value))
            return
        for i, item in enumerate(value):
            if child.kind == "documents" and not isinstance(item, dict):
                issues.append(
                    (
                        _dotted((*at, str(i))),
                        f"expected a sub-document in the array, found BSON {bson_type(item)}",
                        item,
                    )
                )
                continue
            self._table(child, item, {**keys, own.name: i}, (*at, str(i)), rows=rows, issues=issues)

    def _unmapped(
        self,
        table: Table,
        element: Any,
        where: tuple[str, ...],
        row: dict[str, Any],
        issues: list[Any],
    ) -> None:
        extra = next((c for c in table.columns if c.key_role == "extra"), None)
        if not isinstance(element, dict):
            if extra is not None:
                row[extra.name] = None
            return
        mapped = [c.path for c in table.columns if c.path and c.key_role not in ("flag",)]
        mapped += [c.path for c in table.children]
        left = _leftover(element, mapped)
        if not left:
            if extra is not None:
                row[extra.name] = None
            return
        if table.unmapped == "quarantine":
            issues.append(
                (_dotted(where), "unmapped fields: " + ", ".join(sorted(left)[:10]), left)
            )
        elif extra is not None:
            row[extra.name] = self._check(
                extra, self.dumps(left), _dotted((*where, "_extra")), left, issues
            )


def _leftover(element: dict[str, Any], mapped: list[tuple[str, ...]]) -> dict[str, Any]:
    """The part of ``element`` no mapped path covers (sub-documents pruned recursively)."""
    trie: dict[str, Any] = {}
    for path in mapped:
        node = trie
        for seg in path[:-1]:
            nxt = node.setdefault(seg, {})
            if nxt is True:
                break
            node = nxt
        else:
            node[path[-1]] = True

    def prune(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in doc.items():
            sub = node.get(k)
            if sub is True:
                continue
            if isinstance(sub, dict) and isinstance(v, dict):
                rest = prune(v, sub)
                if rest:
                    out[k] = rest
            else:
                out[k] = v
        return out

    return prune(element, trie)


# ------------------------------------------------------------------------------------------------
# Arrow / Spark plumbing


def _build_batch(
    mapper: DocumentMapper, results: list[MappedDocument], schema: pa.Schema
) -> pa.RecordBatch:
    import pyarrow as pa

    arrays = [
        pa.array([r.ok for r in results], pa.bool_()),
        pa.array([r.doc_id for r in results], pa.string()),
    ]
    # quarantine lists
    q_offsets = [0]
    q_cols: list[list[Any]] = [[] for _ in QUARANTINE_FIELDS]
    for r in results:
        for issue in r.issues:
            for j, v in enumerate(issue):
                q_cols[j].append(v)
        q_offsets.append(q_offsets[-1] + len(r.issues))
    q_struct = pa.StructArray.from_arrays(
        [pa.array(c, pa.string()) for c in q_cols], fields=list(schema.field("_q").type.value_type)
    )
    arrays.append(pa.ListArray.from_arrays(pa.array(q_offsets, pa.int32()), q_struct))
    for ti, table in enumerate(mapper.tables):
        cols = table.all_columns
        offsets = [0]
        values: list[list[Any]] = [[] for _ in cols]
        for r in results:
            trows = r.rows[ti] if r.ok else []
            for row in trows:
                for j, c in enumerate(cols):
                    values[j].append(row.get(c.name))
            offsets.append(offsets[-1] + len(trows))
        field_type = schema.field(f"t{ti}").type.value_type
        children = []
        for j, c in enumerate(cols):
            at = arrow_type(c)
            if c.type == "timestamp":
                children.append(pa.array(values[j], pa.int64()).cast(at))
            else:
                children.append(pa.array(values[j], at))
        struct = pa.StructArray.from_arrays(children, fields=list(field_type))
        arrays.append(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def mapper_function(
    coll: Collection, dialect: str, json_mode: str, arrow_schema: pa.Schema
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: document frame batches → wide-row batches."""

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        mapper = DocumentMapper(coll, dialect, json_mode)
        for batch in batches:
            docs = batch.column("doc").to_pylist()
            results = [mapper.map_raw(raw) for raw in docs]
            yield _build_batch(mapper, results, arrow_schema)

    return fn


def namespace_filter(coll: Collection) -> SparkColumn:
    """Spark predicate selecting ``coll``'s documents from the document frame."""
    from pyspark.sql import functions as F

    return (F.col("ns") == F.lit(coll.source)) | (
        F.substring_index(F.col("ns"), ".", -1) == F.lit(coll.source)
    )


def map_documents(
    docs: DataFrame, coll: Collection, dialect: str, json_mode: str = "relaxed"
) -> DataFrame:
    """The wide frame of ``coll``: one row per document of its namespace (see module docstring)."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = wide_schema(coll)
    arrow_schema = to_arrow_schema(schema, timezone="UTC")
    fn = mapper_function(coll, dialect, json_mode, arrow_schema)
    return docs.where(namespace_filter(coll)).select("doc").mapInArrow(fn, schema)


def table_frame(wide: DataFrame, coll: Collection, table: Table) -> DataFrame:
    """Rows of one table from the wide frame (documents that mapped cleanly only)."""
    from pyspark.sql import functions as F

    i = coll.tables.index(table)
    return wide.where(F.col("_ok")).select(F.inline(F.col(f"t{i}")))
