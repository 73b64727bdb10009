"""Full-scan, distributed profile of documents and a proposed mapping from it.

Every document is decoded once on the executors (``mapInArrow``); each task keeps per
``(namespace, field path, BSON type)`` counters and maxima for its partition and emits them as
rows; Spark sums and maxes them (``groupBy``) so the driver receives one row per distinct path
and type, never documents. Reported per field path:

* a histogram of BSON types (``null`` counted as a type), and ``missing`` (documents/elements
  where the parent exists but the field does not);
* maximum string length (characters), decimal precision and scale seen, numeric/date range;
* arrays: element types (path ``field.[]``), maximum length, number of empty arrays;
* dynamic-key sub-documents: a sub-document all of whose keys look like generated ids (hex
  digests of 16+ digits, integers, UUIDs, ISO dates) is counted as ``dynamic`` and its values
  are profiled under ``field.{}`` instead of one path per key.

Path segments are joined with ``.`` in the report (segments that contain a dot are shown in
``[...]`` brackets); the proposed mapping uses segment lists where needed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeshift.nosql.bsontypes import bson_type, date_ms

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

from lakeshift.nosql.mapping import CollectionSpec, ColumnSpec, MappingSpec, TableSpec

ELEM = "[]"
MAPVAL = "{}"
_DYNAMIC_KEY = re.compile(
    r"^(?:[0-9a-fA-F]{16,}|\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}|\d{4}-\d{2}-\d{2}(?:T[\d:.]+Z?)?)$"
)
STATS_SCHEMA = (
    "ns STRING, path STRING, type STRING, count LONG, max_len LONG, max_precision INT, "
    "max_scale INT, max_items LONG, empty LONG, dynamic LONG, nonfinite LONG, "
    "min_num DOUBLE, max_num DOUBLE"
)
_FIELDS = (
    "count",
    "max_len",
    "max_precision",
    "max_scale",
    "max_items",
    "empty",
    "dynamic",
    "nonfinite",
    "min_num",
    "max_num",
)
MAX_KEYS_BEFORE_MAP = 200


def is_dynamic(doc: dict[str, Any]) -> bool:
    """True when every key of a non-empty sub-document looks like a generated id."""
    return bool(doc) and all(_DYNAMIC_KEY.match(k) for k in doc)


class _Stats:
    """Per-partition accumulator."""

    def __init__(self) -> None:
        self.acc: dict[tuple[str, str, str], list[Any]] = {}

    def _slot(self, ns: str, path: tuple[str, ...], kind: str) -> list[Any]:
        key = (ns, json.dumps(list(path), ensure_ascii=False), kind)
        slot = self.acc.get(key)
        if slot is None:
            slot = [0, None, None, None, None, 0, 0, 0, None, None]
            self.acc[key] = slot
        return slot

    @staticmethod
    def _max(slot: list[Any], i: int, v: Any) -> None:
        if slot[i] is None or v > slot[i]:
            slot[i] = v

    @staticmethod
    def _min(slot: list[Any], i: int, v: Any) -> None:
        if slot[i] is None or v < slot[i]:
            slot[i] = v

    def add(self, ns: str, path: tuple[str, ...], value: Any) -> None:
        import bson

        kind = bson_type(value)
        slot = self._slot(ns, path, kind)
        slot[0] += 1
        if kind == "string":
            self._max(slot, 1, len(value))
        elif kind in ("int", "long", "double"):
            f = float(value)
            if math.isnan(f) or math.isinf(f):
                slot[7] += 1
            else:
                self._min(slot, 8, f)
                self._max(slot, 9, f)
        elif kind == "date":
            ms = float(date_ms(value))
            self._min(slot, 8, ms)
            self._max(slot, 9, ms)
        elif kind == "decimal" and isinstance(value, bson.Decimal128):
            d = value.to_decimal()
            if not d.is_finite():
                slot[7] += 1
            else:
                t = d.as_tuple()
                exp = int(t.exponent)
                scale = max(0, -exp)
                precision = max(len(t.digits), scale) if exp < 0 else len(t.digits) + exp
                self._max(slot, 2, precision)
                self._max(slot, 3, scale)
        elif kind == "array":
            self._max(slot, 4, len(value))
            if not value:
                slot[5] += 1
            for item in value:
                self.add(ns, (*path, ELEM), item)
        elif kind == "object" and isinstance(value, dict):
            if not value:
                slot[5] += 1  # an empty sub-document
            elif is_dynamic(value):
                slot[6] += 1
                self._max(slot, 4, len(value))
                for item in value.values():
                    self.add(ns, (*path, MAPVAL), item)
            else:
                for k, v in value.items():
                    self.add(ns, (*path, k), v)

    def batch(self) -> pa.RecordBatch:
        import pyarrow as pa

        cols: dict[str, list[Any]] = {"ns": [], "path": [], "type": []}
        for name in _FIELDS:
            cols[name] = []
        for (ns, path, kind), slot in self.acc.items():
            cols["ns"].append(ns)
            cols["path"].append(path)
            cols["type"].append(kind)
            for name, v in zip(_FIELDS, slot, strict=True):
                cols[name].append(v)
        types = {
            "max_precision": pa.int32(),
            "max_scale": pa.int32(),
            "min_num": pa.float64(),
            "max_num": pa.float64(),
        }
        return pa.RecordBatch.from_pydict(
            cols,
            schema=pa.schema(
                [("ns", pa.string()), ("path", pa.string()), ("type", pa.string())]
                + [(n, types.get(n, pa.int64())) for n in _FIELDS]
            ),
        )


def _profile_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    import bson
    from bson.binary import UuidRepresentation
    from bson.codec_options import CodecOptions, DatetimeConversion

    opts = CodecOptions(
        document_class=dict,
        uuid_representation=UuidRepresentation.STANDARD,
        datetime_conversion=DatetimeConversion.DATETIME_MS,
        unicode_decode_error_handler="replace",
    )
    stats = _Stats()
    for batch in batches:
        for ns, raw in zip(
            batch.column("ns").to_pylist(), batch.column("doc").to_pylist(), strict=True
        ):
            try:
                doc = bson.decode(raw, opts)
            except Exception:
                stats._slot(ns, (), "undecodable")[0] += 1
                continue
            stats._slot(ns, (), "document")[0] += 1
            for k, v in doc.items():
                stats.add(ns, (k,), v)
    yield stats.batch()


@dataclass
class FieldProfile:
    """Profile of one field path in one namespace."""

    path: tuple[str, ...]
    types: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    max_len: int | None = None
    max_precision: int | None = None
    max_scale: int | None = None
    max_items: int | None = None
    empty_arrays: int = 0  # empty arrays, or empty sub-documents for object paths
    dynamic: int = 0
    nonfinite: int = 0
    min_num: float | None = None
    max_num: float | None = None

    @property
    def present(self) -> int:
        """Documents/elements where the field exists (any type, null included)."""
        return sum(self.types.values())

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form (zero and empty facts left out)."""
        out: dict[str, Any] = {"types": dict(sorted(self.types.items())), "missing": self.missing}
        for name in ("max_len", "max_precision", "max_scale", "max_items", "min_num", "max_num"):
            v = getattr(self, name)
            if v is not None:
                out[name] = v
        for name in ("empty", "dynamic", "nonfinite"):
            value = getattr(self, "empty_arrays" if name == "empty" else name)
            if value:
                out[name] = value
        return out


def path_text(path: tuple[str, ...]) -> str:
    """``a.b.[]`` style text of a path (segments with dots in brackets)."""
    return ".".join(f"[{p}]" if "." in p and p not in (ELEM, MAPVAL) else p for p in path)


@dataclass
class NamespaceProfile:
    """Profile of one namespace (collection)."""

    ns: str
    documents: int = 0
    undecodable: int = 0
    fields: dict[tuple[str, ...], FieldProfile] = field(default_factory=dict)

    def children(self, parent: tuple[str, ...]) -> list[FieldProfile]:
        """Direct child paths of ``parent``, in a stable order (``_id`` first)."""
        out = [f for p, f in self.fields.items() if len(p) == len(parent) + 1 and p[:-1] == parent]
        return sorted(out, key=lambda f: (f.path[-1] != "_id", f.path[-1]))


@dataclass
class ProfileReport:
    """The whole profile."""

    namespaces: dict[str, NamespaceProfile] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {
            ns: {
                "documents": p.documents,
                "undecodable": p.undecodable,
                "fields": {path_text(k): f.to_json() for k, f in sorted(p.fields.items())},
            }
            for ns, p in sorted(self.namespaces.items())
        }


def profile_documents(spark: SparkSession, docs: DataFrame) -> ProfileReport:
    """Profile every document of the document frame (``ns``, ``doc``)."""
    from pyspark.sql import functions as F

    stats = docs.select("ns", "doc").mapInArrow(_profile_partition, STATS_SCHEMA)
    agg = stats.groupBy("ns", "path", "type").agg(
        F.sum("count").alias("count"),
        F.max("max_len").alias("max_len"),
        F.max("max_precision").alias("max_precision"),
        F.max("max_scale").alias("max_scale"),
        F.max("max_items").alias("max_items"),
        F.sum("empty").alias("empty"),
        F.sum("dynamic").alias("dynamic"),
        F.sum("nonfinite").alias("nonfinite"),
        F.min("min_num").alias("min_num"),
        F.max("max_num").alias("max_num"),
    )
    report = ProfileReport()
    for row in agg.collect():  # one row per distinct (namespace, path, type): bounded by the schema
        ns = report.namespaces.setdefault(row["ns"], NamespaceProfile(row["ns"]))
        path = tuple(json.loads(row["path"]))
        if not path:
            if row["type"] == "document":
                ns.documents = int(row["count"])
            else:
                ns.undecodable += int(row["count"])
            continue
        fp = ns.fields.setdefault(path, FieldProfile(path))
        fp.types[row["type"]] = int(row["count"])
        for name in ("max_len", "max_precision", "max_scale", "max_items", "min_num", "max_num"):
            v = row[name]
            if v is not None:
                old = getattr(fp, name)
                pick = min if name == "min_num" else max
                setattr(fp, name, v if old is None else pick(old, v))
        fp.empty_arrays += int(row["empty"] or 0)
        fp.dynamic += int(row["dynamic"] or 0)
        fp.nonfinite += int(row["nonfinite"] or 0)
    for ns in report.namespaces.values():
        for path, fp in ns.fields.items():
            parent_count = (
                ns.documents if len(path) == 1 else _container_count(ns, path[:-1], path[-1])
            )
            fp.missing = max(0, parent_count - fp.present)
    return report


def _container_count(ns: NamespaceProfile, parent: tuple[str, ...], seg: str) -> int:
    """How many containers (sub-documents / array elements that are documents) ``seg`` lives in."""
    fp = ns.fields.get(parent)
    if fp is None:
        return 0
    if seg in (ELEM, MAPVAL):
        return fp.present  # not meaningful for elements; every element is "present"
    return fp.types.get("object", 0) - fp.dynamic


# ------------------------------------------------------------------------------------------------
# proposed mapping

_SCALAR_TYPE = {
    frozenset({"objectId"}): "objectid",
    frozenset({"string"}): "string",
    frozenset({"symbol"}): "string",
    frozenset({"int"}): "int",
    frozenset({"long"}): "long",
    frozenset({"int", "long"}): "long",
    frozenset({"double"}): "double",
    frozenset({"double", "int"}): "double",
    frozenset({"double", "long"}): "double",
    frozenset({"double", "int", "long"}): "double",
    frozenset({"decimal"}): "decimal",
    frozenset({"decimal", "int"}): "decimal",
    frozenset({"decimal", "int", "long"}): "decimal",
    frozenset({"decimal", "long"}): "decimal",
    frozenset({"bool"}): "boolean",
    frozenset({"date"}): "timestamp",
    frozenset({"binData"}): "binary",
}
_SPLITTABLE = {
    "objectId": "objectid",
    "string": "string",
    "int": "long",
    "long": "long",
    "double": "double",
    "decimal": "decimal",
    "bool": "boolean",
    "date": "timestamp",
    "binData": "binary",
}


def _seg_path(path: tuple[str, ...]) -> str | list[str]:
    return list(path) if any("." in p for p in path) or not path else ".".join(path)


def _column_for(fp: FieldProfile, rel: tuple[str, ...]) -> list[ColumnSpec]:
    kinds = frozenset(t for t in fp.types if t != "null")
    path = _seg_path(rel) if rel else ""
    if not kinds:
        return [ColumnSpec(path=path, type="json")]
    ctype = _SCALAR_TYPE.get(kinds)
    if ctype == "decimal":
        return [ColumnSpec(path=path, type="decimal", scale=fp.max_scale or 0)]
    if ctype is not None:
        return [ColumnSpec(path=path, type=ctype)]  # type: ignore[arg-type]
    if kinds <= set(_SPLITTABLE) and len(kinds) <= 4:
        # mixed scalar types: one typed column per BSON type (split), NULL where another type
        base = "_".join(rel) if rel else "value"
        cols = []
        for kind in sorted(kinds):
            t = _SPLITTABLE[kind]
            cols.append(
                ColumnSpec(
                    path=path,
                    type=t,  # type: ignore[arg-type]
                    name=f"{base}_{kind}",
                    accept=[kind],
                    on_mismatch="null",
                    scale=(fp.max_scale or 0) if t == "decimal" else None,
                )
            )
        return cols
    return [ColumnSpec(path=path, type="json")]


def _fill(
    ns: NamespaceProfile,
    spec: TableSpec,
    context: tuple[str, ...],
    node: tuple[str, ...],
    *,
    depth: int,
    json_depth: int,
) -> None:
    """Fill ``spec`` with columns/children for the fields under ``node`` (inside ``context``)."""
    for fp in ns.children(node):
        rel = fp.path[len(context) :]
        kinds = frozenset(t for t in fp.types if t != "null")
        objects = fp.types.get("object", 0)
        if kinds == {"object"} and fp.dynamic and fp.dynamic + fp.empty_arrays == objects:
            child = TableSpec(path=_seg_path(rel), kind="map")
            _element_table(ns, child, (*fp.path, MAPVAL), depth, json_depth)
            spec.children.append(child)
        elif kinds == {"object"} and fp.dynamic:  # some sub-documents look dynamic, some not
            spec.columns.append(ColumnSpec(path=_seg_path(rel), type="json"))
        elif kinds == {"object"}:
            if depth + 1 >= json_depth or len(ns.children(fp.path)) > MAX_KEYS_BEFORE_MAP:
                spec.columns.append(ColumnSpec(path=_seg_path(rel), type="json"))
            else:
                _fill(ns, spec, context, fp.path, depth=depth + 1, json_depth=json_depth)
        elif kinds == {"array"}:
            elem = ns.fields.get((*fp.path, ELEM))
            ekinds = frozenset(t for t in (elem.types if elem else {}) if t != "null")
            if ekinds == {"object"} and depth + 1 < json_depth:
                child = TableSpec(path=_seg_path(rel), kind="documents")
                _fill(
                    ns,
                    child,
                    (*fp.path, ELEM),
                    (*fp.path, ELEM),
                    depth=depth + 1,
                    json_depth=json_depth,
                )
                spec.children.append(child)
            elif ekinds and "array" not in ekinds and "object" not in ekinds and elem is not None:
                child = TableSpec(path=_seg_path(rel), kind="scalars")
                child.columns.extend(_column_for(elem, ()))
                spec.children.append(child)
            else:
                spec.columns.append(ColumnSpec(path=_seg_path(rel), type="json"))
        else:
            spec.columns.extend(_column_for(fp, rel))


def _element_table(
    ns: NamespaceProfile, spec: TableSpec, elem_path: tuple[str, ...], depth: int, json_depth: int
) -> None:
    elem = ns.fields.get(elem_path)
    kinds = frozenset(t for t in (elem.types if elem else {}) if t != "null")
    if kinds == {"object"}:
        _fill(ns, spec, elem_path, elem_path, depth=depth + 1, json_depth=json_depth)
    elif elem is not None:
        spec.columns.extend(_column_for(elem, ()))
    if not spec.columns and not spec.children:
        spec.columns.append(ColumnSpec(path="", type="json"))


def propose_mapping(report: ProfileReport, json_depth: int = 6) -> MappingSpec:
    """A mapping a person can edit: flatten sub-documents, child tables for arrays and maps."""
    collections = []
    for name, ns in sorted(report.namespaces.items()):
        if ("_id",) not in ns.fields:
            continue
        coll = CollectionSpec.model_construct(
            source=name,
            key="_id",
            table=name.rsplit(".", 1)[-1],
            path="",
            kind="documents",
            columns=[],
            children=[],
            unmapped="json",
        )
        _fill(ns, coll, (), (), depth=0, json_depth=json_depth)
        id_cols = [c for c in coll.columns if c.path == "_id"]
        if len(id_cols) != 1:  # a split _id: keep one JSON key column instead
            coll.columns = [c for c in coll.columns if c.path != "_id"]
            coll.columns.insert(0, ColumnSpec(path="_id", type="json"))
        collections.append(CollectionSpec.model_validate(coll.model_dump()))
    return MappingSpec(collections=collections)


def write_mapping(mapping: MappingSpec, path: str | Path) -> None:
    """Write ``mapping`` as YAML (defaults left out, so the file stays short)."""
    import yaml

    data = {"version": 1, **mapping.model_dump(exclude_defaults=True)}
    data["collections"] = [{"source": c.pop("source"), **c} for c in data.get("collections", [])]
    header = (
        "# Proposed by `lakeshift profile`: edit names, types and child tables, then use it in a\n"
        "# transform config. See docs/nosql.md for every option.\n"
    )
    Path(path).write_text(
        header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
