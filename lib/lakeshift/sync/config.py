"""The sync configuration (YAML → pydantic).

Example ``sync.yaml``::

    name: orders
    keys: [id]
    state_dir: /var/lib/lakeshift/sync
    source: {kind: delta_cdf, path: s3a://lake/orders}
    target: {kind: delta, path: s3a://lakehouse/orders}
    trigger_seconds: 10
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lakeshift.config.base import StrictModel


class DeltaCdfSource(StrictModel):
    """A Delta table with Change Data Feed enabled (``delta.enableChangeDataFeed = true``)."""

    kind: Literal["delta_cdf"]
    path: str
    max_versions_per_batch: int | None = Field(default=None, ge=1)


class MongoEventsSource(StrictModel):
    """A folder of MongoDB change events as Extended JSON lines (``*.jsonl``, applied by name)."""

    kind: Literal["mongo_events"]
    path: str
    max_files_per_batch: int | None = Field(default=None, ge=1)


class MongoChangeStreamSource(StrictModel):
    """A live MongoDB change stream (replica set or sharded cluster) read through pymongo."""

    kind: Literal["mongo_change_stream"]
    uri: str
    database: str
    collection: str
    max_events_per_batch: int = Field(default=100_000, ge=1)
    max_wait_seconds: float = Field(default=5.0, gt=0)


class WatermarkSource(StrictModel):
    """Any source (``lakeshift.sources.from_spec``) with an update-time or increasing column."""

    kind: Literal["watermark"]
    spec: str
    options: dict[str, str] = Field(default_factory=dict)
    column: str
    detect_deletes: bool = False


class LakeFilesSource(StrictModel):
    """New and changed files of a lake path (any Hadoop filesystem), found by manifest diff.

    The start point is a manifest (path, size, modification time of every file); each batch
    reads the files that are new or changed since the committed manifest as rows. With ``keys``
    the rows are merged by key (version: file modification time, then file path); without keys
    (Delta targets only) they are appended, and a changed or removed file's rows written by an
    earlier sync batch are replaced (``replaceWhere`` on the ``_lakeshift_file`` column).
    Hidden files (``_*``, ``.*``, e.g. ``_SUCCESS``) are ignored, as Spark does.
    """

    kind: Literal["lake_files"]
    path: str
    format: Literal["parquet", "orc", "csv", "json", "avro", "text"] = "parquet"
    options: dict[str, str] = Field(default_factory=dict)
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    max_files_per_batch: int | None = Field(default=None, ge=1)


class DeltaTarget(StrictModel):
    """A Delta table; deletes become tombstones unless ``tombstones`` is false."""

    kind: Literal["delta"]
    path: str
    tombstones: bool = True


class ChildSpec(StrictModel):
    """An array field of the parent stored as a child table (one row per element)."""

    field: str
    table: str
    key_columns: list[str] = Field(min_length=1)
    index_column: str = "idx"


class PostgresTarget(StrictModel):
    """A PostgreSQL table plus child tables; ``dsn``: a libpq string, secrets via ``${env:…}``."""

    kind: Literal["postgres"]
    dsn: str
    table: str
    children: list[ChildSpec] = Field(default_factory=list)


class MariaDbTarget(StrictModel):
    """A MariaDB / MySQL table plus child tables.

    ``url``: ``mysql://user:password@host:port/db`` (``mariadb://`` too); secrets via ``${env:…}``.
    """

    kind: Literal["mariadb", "mysql"]
    url: str = Field(pattern=r"^(mysql|mariadb)://")
    table: str
    children: list[ChildSpec] = Field(default_factory=list)


Source = Annotated[
    DeltaCdfSource
    | MongoEventsSource
    | MongoChangeStreamSource
    | WatermarkSource
    | LakeFilesSource,
    Field(discriminator="kind"),
]
Target = Annotated[DeltaTarget | PostgresTarget | MariaDbTarget, Field(discriminator="kind")]


class SyncConfig(StrictModel):
    """One sync: a change source, a target, keys and where its state lives.

    Attributes:
        name: names the state folder and the idempotency ids (Delta ``txnAppId``).
        keys: key columns (``_id`` for MongoDB sources); empty only for a ``lake_files``
            source appended to a Delta target.
        columns: target data columns as a DDL string (required for MongoDB sources).
        state_dir: folder for start point, position, pending batch and checkpoints.
        checkpoint: Structured Streaming checkpoint (default ``<state_dir>/<name>/checkpoint``).
        trigger_seconds: continuous mode's trigger interval.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    keys: list[str] = Field(default_factory=list)
    columns: str | None = None
    state_dir: str
    checkpoint: str | None = None
    trigger_seconds: float = Field(default=10.0, gt=0)
    source: Source
    target: Target

    @model_validator(mode="after")
    def _check(self) -> SyncConfig:
        if not self.keys and not (self.source.kind == "lake_files" and self.target.kind == "delta"):
            raise ValueError(
                "keys: expected at least one key column (only a lake_files source into a Delta "
                "target may append without keys)"
            )
        if self.source.kind in ("mongo_events", "mongo_change_stream"):
            if not self.columns:
                raise ValueError("columns: a DDL schema is required for MongoDB sources")
            if self.keys != ["_id"]:
                raise ValueError("keys: MongoDB sources are keyed by ['_id']")
        target = self.target
        sql = isinstance(target, PostgresTarget | MariaDbTarget)
        if sql and target.children and not self.columns:  # type: ignore[union-attr]
            raise ValueError("columns: child tables need the parent's DDL schema")
        return self
