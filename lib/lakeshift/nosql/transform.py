"""``lakeshift transform``: source documents → mapping → tables + quarantine, with the invariant.

Config (YAML, ``${env:NAME}`` for secrets):

.. code-block:: yaml

    source:
      spec: mongodump:/data/dump/sample_supplies.gz      # or extjson:…, mongodb://…
    mapping: sales-mapping.yaml                           # path (relative to this file) or inline
    target:
      url: postgresql://lakeshift:${env:PGPASSWORD}@db:5432/shop   # mysql://…, sqlite:…, delta:…
      mode: replace                                      # create | replace | append
    run_id: sales-2026-03-01                              # default: a new id per run

Every run checks, per collection, ``documents in = documents loaded + documents quarantined`` and
that each table received exactly the rows the mapping produced; the JSON summary reports it.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from lakeshift.config import StrictModel, load_model
from lakeshift.errors import ConfigError
from lakeshift.nosql.mapping import Collection, MappingSpec, Table, resolve
from lakeshift.nosql.normalise import map_documents
from lakeshift.sinks.sql import (
    TIMING_PREFIX,
    Connection,
    Mode,
    SqlColumn,
    SqlSink,
    SqlTable,
    TableLoad,
    connection_from_url,
    quarantine_table,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


class SourceConfig(StrictModel):
    """Where documents come from: a source spec (``mongodump:``, ``extjson:``, ``mongodb:``)."""

    spec: str
    options: dict[str, str] = Field(default_factory=dict)


class TargetConfig(StrictModel):
    """Where tables go.

    Attributes:
        url: ``postgresql://user:pw@host:port/db``, ``mysql://…`` (MariaDB too), ``sqlite:PATH``,
            or ``delta:PATH`` (one Delta table per mapped table under PATH).
        db_schema: PostgreSQL schema / MySQL database (default: the URL's).
        mode: ``create`` (fail if a table exists), ``replace`` (drop and create), ``append``.
        batch_rows: rows per multi-row INSERT (MySQL, SQLite).
        quarantine_table: name of the quarantine table.
    """

    url: str
    db_schema: str | None = None
    mode: Mode = "create"
    batch_rows: int = Field(default=10_000, ge=1)
    quarantine_table: str = "lakeshift_quarantine"


class TransformConfig(StrictModel):
    """A whole ``transform`` config file."""

    source: SourceConfig
    mapping: str | MappingSpec
    target: TargetConfig
    run_id: str | None = None


def load_config(path: str, run_date: Any = None) -> tuple[TransformConfig, MappingSpec]:
    """Load a transform config and its mapping (a path relative to the config, or inline).

    Raises:
        ConfigError: either file is invalid.
    """
    cfg = load_model(path, TransformConfig, run_date=run_date)
    if isinstance(cfg.mapping, MappingSpec):
        return cfg, cfg.mapping
    mpath = Path(cfg.mapping)
    if not mpath.is_absolute():
        mpath = Path(path).parent / mpath
    return cfg, load_model(mpath, MappingSpec, run_date=run_date)


def to_sql_table(table: Table) -> SqlTable:
    """The DDL description of a resolved mapping table."""
    cols = tuple(
        SqlColumn(
            c.name,
            c.type,
            c.max_length,
            c.scale,
            c.nullable and c.key_role not in ("pk", "parent", "ord", "mapkey"),
        )
        for c in table.all_columns
    )
    parent = table.parent
    return SqlTable(
        name=table.name,
        columns=cols,
        primary_key=tuple(c.name for c in table.key_columns),
        parent=parent.name if parent else None,
        parent_key=tuple(c.name for c in table.parent_key),
        references=tuple(c.name for c in parent.key_columns) if parent else (),
    )


def make_sink(target: TargetConfig) -> tuple[Any, str]:
    """The sink for ``target`` and the dialect the mapper checks values against."""
    if target.url.startswith("delta:"):
        from lakeshift.sinks.delta_tables import DeltaTablesSink

        return DeltaTablesSink(target.url[len("delta:") :]), "delta"
    conn: Connection = connection_from_url(target.url, target.db_schema)
    return SqlSink(conn, batch_rows=target.batch_rows), conn.dialect


def _progress(message: str) -> None:
    print(f"transform: {message}", file=sys.stderr, flush=True)


def run_transform(
    spark: SparkSession,
    cfg: TransformConfig,
    mapping: MappingSpec,
    *,
    mode: Mode | None = None,
    docs: DataFrame | None = None,
    progress: Callable[[str], None] = _progress,
) -> dict[str, Any]:
    """Run a transform and return its summary (``ok`` false when the invariant fails).

    Args:
        spark: the session.
        cfg: the transform config.
        mapping: the mapping.
        mode: overrides ``cfg.target.mode``.
        docs: an already-built document frame (tests, notebooks); default: read ``cfg.source``.
        progress: receives one-line progress messages.
    """
    from pyspark import StorageLevel

    from lakeshift.sources.factory import from_spec

    started = time.monotonic()
    run_id = cfg.run_id or uuid.uuid4().hex[:16]
    sink, dialect = make_sink(cfg.target)
    colls: list[Collection] = resolve(mapping)
    if not colls:
        raise ConfigError("mapping: collections: expected at least one collection")
    tables = [(c, t, to_sql_table(t)) for c in colls for t in c.tables]
    qtable = quarantine_table(cfg.target.quarantine_table)
    chosen: Mode = mode or cfg.target.mode
    sink.prepare(
        [st for _, _, st in tables], chosen, keep=[qtable], labels=[c.source for c in colls]
    )
    progress(f"run {run_id}: {len(tables)} table(s) ready on {sink.describe()} (mode {chosen})")

    if docs is None:
        docs = from_spec(cfg.source.spec, cfg.source.options).read(spark)
    cached_here = not docs.is_cached
    if cached_here:
        docs = docs.persist(StorageLevel.MEMORY_AND_DISK)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "source": cfg.source.spec.split("?")[0],
        "target": sink.describe(),
        "mode": chosen,
        "collections": {},
    }
    try:
        # bounded: one row per source namespace (collection) of this run
        per_ns = {str(r["ns"]): int(r["count"]) for r in docs.groupBy("ns").count().collect()}
        summary["documents_read"] = sum(per_ns.values())
        progress(f"read {summary['documents_read']} document(s) in {len(per_ns)} namespace(s)")
        mapped_ns: set[str] = set()
        ok = True
        for coll in colls:
            mapped_ns |= {ns for ns in per_ns if coll.matches(ns)}
            result = _run_collection(
                spark,
                sink,
                dialect,
                coll,
                docs=docs,
                run_id=run_id,
                qtable=qtable,
                json_mode=mapping.json_mode,
                progress=progress,
                verify=chosen != "append",
            )
            ok = ok and result["invariant"]
            summary["collections"][coll.source] = result
        finish = getattr(sink, "finish", None)
        if finish is not None:  # keys deferred by prepare (PostgreSQL): one build after the load
            added = finish([st for _, _, st in tables])
            if added:
                progress(f"added {len(added)} deferred key(s) after the load")
        summary["unmapped_namespaces"] = {ns: n for ns, n in per_ns.items() if ns not in mapped_ns}
        summary["documents_loaded"] = sum(r["loaded"] for r in summary["collections"].values())
        summary["documents_quarantined"] = sum(
            r["quarantined"] for r in summary["collections"].values()
        )
        summary["ok"] = ok
    finally:
        if cached_here:
            docs.unpersist()
    summary["seconds"] = round(time.monotonic() - started, 3)
    return summary


def document_counter(batch: Any) -> dict[str, int]:
    """Per-batch counters of a wide batch: documents, loaded, quarantined, quarantine rows."""
    import pyarrow.compute as pc

    n = batch.num_rows
    ok = int(pc.sum(batch.column("_ok").cast("int64")).as_py() or 0)
    issues = int(pc.sum(pc.list_value_length(batch.column("_q"))).as_py() or 0)
    return {"#documents": n, "#ok": ok, "#quarantined": n - ok, "#issues": issues}


def _run_collection(
    spark: SparkSession,
    sink: Any,
    dialect: str,
    coll: Collection,
    *,
    docs: DataFrame,
    run_id: str,
    qtable: SqlTable,
    json_mode: Literal["relaxed", "canonical"],
    progress: Callable[[str], None],
    verify: bool,
) -> dict[str, Any]:
    t0 = time.monotonic()
    wide = map_documents(docs, coll, dialect, json_mode).drop("_doc_id")  # loaders skip it
    loads = [TableLoad(f"t{i}", to_sql_table(t)) for i, t in enumerate(coll.tables)]
    loads.append(TableLoad("_q", qtable, (("run_id", run_id), ("collection", coll.source))))
    totals, parts, skipped = sink.load_wide(wide, loads, run_id, coll.source, document_counter)
    rows = {t.name: totals.get(f"inserted:{t.name}", 0) for t in coll.tables}
    sent = {t.name: totals.get(f"sent:{t.name}", 0) for t in coll.tables}
    documents, ok, quarantined = totals["#documents"], totals["#ok"], totals["#quarantined"]
    qrows = totals.get(f"inserted:{qtable.name}", 0)
    checks = {
        "documents_in_equals_loaded_plus_quarantined": documents == ok + quarantined,
        "every_row_sent_was_inserted": rows == sent
        and qrows == totals.get(f"sent:{qtable.name}", 0),
        "one_parent_row_per_loaded_document": rows[coll.root.name] == ok,
        "quarantine_rows_match_issues": qrows == totals["#issues"],
    }
    db_rows: dict[str, int] | None = None
    if verify and hasattr(sink, "count_rows"):
        db_rows = {name: sink.count_rows(name) for name in rows}
        checks["tables_hold_exactly_the_loaded_rows"] = db_rows == rows
    invariant = all(checks.values())
    progress(
        f"{coll.source}: {documents} document(s): {ok} loaded, {quarantined} quarantined; "
        + ", ".join(f"{k} {v}" for k, v in rows.items())
        + f" ({skipped}/{parts} partition(s) already loaded) in {time.monotonic() - t0:.1f}s"
    )
    if not invariant:
        log.error("%s: invariant failed: %s (totals %s)", coll.source, checks, totals)
    return {
        "documents": documents,
        "loaded": ok,
        "quarantined": quarantined,
        "quarantine_rows": qrows,
        "rows": rows,
        "db_rows": db_rows,
        "partitions": parts,
        "skipped_partitions": skipped,
        "checks": checks,
        "invariant": invariant,
        "load_task_seconds": {  # where the load's time went, summed over tasks
            k[len(TIMING_PREFIX) :]: round(v / 1e6, 3)
            for k, v in sorted(totals.items())
            if k.startswith(TIMING_PREFIX)
        },
        "seconds": round(time.monotonic() - t0, 3),
    }
