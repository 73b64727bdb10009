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


Source = Annotated[
    DeltaCdfSource | MongoEventsSource | MongoChangeStreamSource | WatermarkSource,
    Field(discriminator="kind"),
]
Target = Annotated[DeltaTarget | PostgresTarget, Field(discriminator="kind")]


class SyncConfig(StrictModel):
    """One sync: a change source, a target, keys and where its state lives.

    Attributes:
        name: names the state folder and the idempotency ids (Delta ``txnAppId``).
        keys: key columns (``_id`` for MongoDB sources).
        columns: target data columns as a DDL string (required for MongoDB sources).
        state_dir: folder for start point, position, pending batch and checkpoints.
        checkpoint: Structured Streaming checkpoint (default ``<state_dir>/<name>/checkpoint``).
        trigger_seconds: continuous mode's trigger interval.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    keys: list[str] = Field(min_length=1)
    columns: str | None = None
    state_dir: str
    checkpoint: str | None = None
    trigger_seconds: float = Field(default=10.0, gt=0)
    source: Source
    target: Target

    @model_validator(mode="after")
    def _check(self) -> SyncConfig:
        if self.source.kind in ("mongo_events", "mongo_change_stream"):
            if not self.columns:
                raise ValueError("columns: a DDL schema is required for MongoDB sources")
            if self.keys != ["_id"]:
                raise ValueError("keys: MongoDB sources are keyed by ['_id']")
        if isinstance(self.target, PostgresTarget) and self.target.children and not self.columns:
            raise ValueError("columns: child tables need the parent's DDL schema")
        return self
