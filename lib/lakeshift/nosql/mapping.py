"""The declarative mapping (YAML → pydantic) and its resolution into concrete tables.

A mapping file lists collections; each becomes a parent table with columns taken from (possibly
nested) field paths, and child tables for arrays of sub-documents (``kind: documents``), arrays
of scalars (``kind: scalars``) and dynamic-key sub-documents (``kind: map``). Whatever the
mapping does not name goes, by default, into a JSON column ``_extra`` (``unmapped: json``), so a
field that appears only in the last document of the collection is never dropped.

Example (``lakeshift profile`` writes one like it):

.. code-block:: yaml

    version: 1
    collections:
      - source: sample_supplies.sales
        table: sales
        key: _id
        columns:
          - {path: _id, type: objectid}
          - {path: saleDate, type: timestamp}
          - {path: customer.email, type: string}
          - {path: customer.age, type: int}
        children:
          - path: items
            table: sales_items
            kind: documents
            columns:
              - {path: name, type: string}
              - {path: price, type: decimal, scale: 2}
            children:
              - {path: tags, table: sales_items_tags, kind: scalars,
                 columns: [{path: "", type: string}]}

Paths are dot-separated; a field name that itself contains a dot is written as a YAML list of
segments (``path: ["a.b", c]``).

Key columns: a parent table's primary key is the column whose path is ``key``; a child table
has its parent's key columns (a foreign key to the parent) plus ``_ordN`` (array position,
from 0) or ``_keyN`` (map key) where N is the nesting level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lakeshift.config import StrictModel
from lakeshift.errors import ConfigError
from lakeshift.nosql.naming import NameAllocator

ColumnType = Literal[
    "objectid",
    "string",
    "int",
    "long",
    "double",
    "decimal",
    "boolean",
    "timestamp",
    "binary",
    "uuid",
    "json",
]
OnMismatch = Literal["cast", "reject", "null"]
BSON_TYPES = (
    "double",
    "string",
    "object",
    "array",
    "binData",
    "undefined",
    "objectId",
    "bool",
    "date",
    "null",
    "regex",
    "dbPointer",
    "javascript",
    "symbol",
    "javascriptWithScope",
    "int",
    "timestamp",
    "long",
    "decimal",
    "minKey",
    "maxKey",
)
DECIMAL_PRECISION = 34
KEY_MAX_LENGTH = 255


def split_path(path: str | list[str]) -> tuple[str, ...]:
    """``"a.b"`` → ``("a", "b")``; a list is taken as segments; ``""`` is the element itself."""
    if isinstance(path, list):
        return tuple(path)
    return tuple(path.split(".")) if path else ()


class ColumnSpec(StrictModel):
    """One column: a field path (relative to the table's document) and its SQL type.

    Attributes:
        path: dot path or list of segments; ``""`` means the array element / map value itself.
        type: the logical type (see docs/nosql.md for the SQL type per target).
        name: the column name (default: the path joined with ``_``, made safe).
        max_length: strings only: ``VARCHAR(n)``; a longer value is quarantined.
        scale: decimals only: ``NUMERIC(34, scale)``; a value with more fractional digits is
            quarantined (never rounded).
        accept: BSON types stored in this column; others follow ``on_mismatch``. Several columns
            on one path with disjoint ``accept`` lists and ``on_mismatch: null`` split a mixed
            field into typed columns.
        on_mismatch: ``cast`` converts other BSON types when exact (else quarantine), ``reject``
            quarantines the document, ``null`` stores NULL.
        nonfinite: Decimal128/double NaN and ±Infinity where the target cannot store them:
            ``quarantine`` the document, or ``null`` plus a text flag column ``<name>_nonfinite``.
        nullable: ``False`` quarantines documents where the field is missing or null.
    """

    path: str | list[str]
    type: ColumnType
    name: str | None = None
    max_length: int | None = Field(default=None, ge=1)
    scale: int | None = Field(default=None, ge=0, le=DECIMAL_PRECISION)
    accept: list[str] | None = None
    on_mismatch: OnMismatch = "cast"
    nonfinite: Literal["quarantine", "null"] = "quarantine"
    nullable: bool = True

    @field_validator("accept")
    @classmethod
    def _known_types(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            if item not in BSON_TYPES:
                raise ValueError(
                    f"unknown BSON type {item!r}; expected one of {', '.join(BSON_TYPES)}"
                )
        return value

    @model_validator(mode="after")
    def _decimal_scale(self) -> ColumnSpec:
        if self.type == "decimal" and self.scale is None:
            self.scale = 0
        return self


class TableSpec(StrictModel):
    """A child table (and, through :class:`CollectionSpec`, the parent table).

    Attributes:
        path: the array or sub-document, relative to the parent table's document.
        table: the table name (default: parent table + ``_`` + path).
        kind: ``documents`` (array of sub-documents), ``scalars`` (array of values), ``map``
            (sub-document with dynamic keys: one row per key).
        columns: the columns taken from each element.
        children: nested child tables.
        unmapped: fields of a ``documents``/``map`` element not named by ``columns`` or
            ``children``: ``json`` (an ``_extra`` JSON column), ``ignore``, or ``quarantine``.
    """

    path: str | list[str] = ""
    table: str | None = None
    kind: Literal["documents", "scalars", "map"] = "documents"
    columns: list[ColumnSpec] = Field(default_factory=list)
    children: list[TableSpec] = Field(default_factory=list)
    unmapped: Literal["json", "ignore", "quarantine"] = "json"


class CollectionSpec(TableSpec):
    """A collection: its namespace in the source and its parent table.

    Attributes:
        source: ``db.collection`` or just ``collection`` (matches any database).
        key: path of the primary-key field (default ``_id``); must be one of ``columns``.
    """

    source: str
    key: str = "_id"

    @model_validator(mode="after")
    def _key_is_column(self) -> CollectionSpec:
        if not any(split_path(c.path) == split_path(self.key) for c in self.columns):
            raise ValueError(f"key {self.key!r} must be one of the columns' paths")
        return self


class MappingSpec(StrictModel):
    """A whole mapping file.

    Attributes:
        version: format version (1).
        json_mode: Extended JSON flavour of JSON columns and quarantined raw values.
        table_prefix: prepended to every table name.
        collections: one entry per collection.
    """

    version: Literal[1] = 1
    json_mode: Literal["relaxed", "canonical"] = "relaxed"
    table_prefix: str = ""
    collections: list[CollectionSpec] = Field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# resolved form


@dataclass
class Column:
    """A resolved column (name allocated, limits applied)."""

    name: str
    path: tuple[str, ...]
    type: str
    spec: ColumnSpec | None = None
    key_role: str | None = None  # "pk" (root key), "parent", "ord", "mapkey", "extra", "flag"
    max_length: int | None = None
    scale: int | None = None
    nullable: bool = True


@dataclass
class Table:
    """A resolved table: its name, columns (key columns first) and children."""

    name: str
    kind: str
    path: tuple[str, ...]
    level: int
    key_columns: list[Column]
    parent_key: list[Column]
    columns: list[Column]
    children: list[Table] = field(default_factory=list)
    unmapped: str = "json"
    parent: Table | None = None

    @property
    def all_columns(self) -> list[Column]:
        """Key columns, then data columns (in DDL and Arrow order)."""
        keys = {id(c) for c in self.key_columns}
        return self.key_columns + [c for c in self.columns if id(c) not in keys]

    def walk(self) -> list[Table]:
        """This table and every descendant, parents before children."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass
class Collection:
    """A resolved collection: which namespaces it takes and its table tree."""

    source: str
    root: Table
    key_path: tuple[str, ...]

    def matches(self, ns: str) -> bool:
        """True when namespace ``ns`` belongs to this collection."""
        return ns == self.source or ns.rsplit(".", 1)[-1] == self.source

    @property
    def tables(self) -> list[Table]:
        """All tables, parents first."""
        return self.root.walk()


def _resolve_columns(
    specs: list[ColumnSpec], names: NameAllocator, kind: str, where: str
) -> list[Column]:
    cols = []
    for spec in specs:
        path = split_path(spec.path)
        if kind == "documents" and not path:
            raise ConfigError(f"{where}: a column of a documents table needs a path")
        default = "value" if not path else "_".join(path)
        name = names.allocate(".".join(path) or "value", spec.name or default)
        max_length = spec.max_length
        cols.append(
            Column(
                name=name,
                path=path,
                type=spec.type,
                spec=spec,
                max_length=max_length,
                scale=spec.scale,
                nullable=spec.nullable,
            )
        )
        if spec.nonfinite == "null" and spec.type in ("decimal", "double"):
            flag = names.allocate(".".join(path) + "#nonfinite", f"{name}_nonfinite")
            cols.append(Column(name=flag, path=path, type="string", key_role="flag", max_length=9))
    return cols


def _resolve_table(
    spec: TableSpec,
    name: str,
    level: int,
    *,
    parent: Table | None,
    parent_keys: list[Column],
    table_names: NameAllocator,
    max_bytes: int,
    where: str,
    key_path: tuple[str, ...] = (),
) -> Table:
    names = NameAllocator(max_bytes=max_bytes)
    inherited = [
        Column(
            name=c.name,
            path=c.path,
            type=c.type,
            key_role="parent",
            max_length=c.max_length,
            scale=c.scale,
            nullable=False,
        )
        for c in parent_keys
    ]
    for c in inherited:
        names.reserve(c.name)
    own_key: list[Column] = []
    if level > 0:
        if spec.kind == "map":
            own_key = [
                Column(
                    name=names.allocate(f"#key{level}", f"_key{level}"),
                    path=(),
                    type="string",
                    key_role="mapkey",
                    max_length=KEY_MAX_LENGTH,
                    nullable=False,
                )
            ]
        else:
            own_key = [
                Column(
                    name=names.allocate(f"#ord{level}", f"_ord{level}"),
                    path=(),
                    type="int",
                    key_role="ord",
                    nullable=False,
                )
            ]
    columns = _resolve_columns(spec.columns, names, spec.kind, where)
    key_columns = inherited + own_key
    if level == 0:
        pk = [c for c in columns if c.path == key_path and c.key_role is None]
        pk[0].key_role = "pk"
        pk[0].nullable = False
        if pk[0].type in ("string", "json") and pk[0].max_length is None:
            pk[0].max_length = KEY_MAX_LENGTH
        key_columns = [pk[0]]
    if spec.kind != "scalars" and spec.unmapped == "json":
        columns.append(
            Column(name=names.allocate("#extra", "_extra"), path=(), type="json", key_role="extra")
        )
    table = Table(
        name=name,
        kind=spec.kind,
        path=split_path(spec.path),
        level=level,
        key_columns=key_columns,
        parent_key=inherited,
        columns=columns,
        unmapped=spec.unmapped,
        parent=parent,
    )
    for i, child in enumerate(spec.children):
        child_path = split_path(child.path)
        if not child_path:
            raise ConfigError(f"{where}.children[{i}]: a child table needs a path")
        default = f"{name}_{'_'.join(child_path)}"
        child_name = table_names.allocate(f"{name}/{'.'.join(child_path)}", child.table or default)
        table.children.append(
            _resolve_table(
                child,
                child_name,
                level + 1,
                parent=table,
                parent_keys=key_columns,
                table_names=table_names,
                max_bytes=max_bytes,
                where=f"{where}.children[{i}]",
            )
        )
    return table


def resolve(mapping: MappingSpec, max_bytes: int = 63) -> list[Collection]:
    """Allocate every table and column name (within ``max_bytes``) and build the table trees.

    Raises:
        ConfigError: a structural problem the schema cannot express (e.g. a child without path).
    """
    table_names = NameAllocator(max_bytes=max_bytes)
    out = []
    for i, coll in enumerate(mapping.collections):
        base = mapping.table_prefix + (coll.table or coll.source.rsplit(".", 1)[-1])
        name = table_names.allocate(coll.source, base)
        key_path = split_path(coll.key)
        root = _resolve_table(
            coll,
            name,
            0,
            parent=None,
            parent_keys=[],
            table_names=table_names,
            max_bytes=max_bytes,
            where=f"collections[{i}]",
            key_path=key_path,
        )
        out.append(Collection(source=coll.source, root=root, key_path=key_path))
    return out
