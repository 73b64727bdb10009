"""Run a sync: record the start point, catch up batch by batch (``--once``) or continuously.

Every batch goes through the same path: source range → change frame → latest event per key →
one idempotent apply (Delta MERGE or the SQL transaction) → position committed.

Example:
    >>> cfg = load_model("sync.yaml", SyncConfig)  # doctest: +SKIP
    >>> with session(SparkProfile()) as spark:  # doctest: +SKIP
    ...     for report in run_once(spark, cfg):
    ...         print(report.line())
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeshift.errors import SourceError, UsageError
from lakeshift.sources import changes
from lakeshift.sync.columns import HIDDEN, TS
from lakeshift.sync.config import (
    DeltaCdfSource,
    DeltaTarget,
    MongoChangeStreamSource,
    MongoEventsSource,
    PostgresTarget,
    SyncConfig,
    WatermarkSource,
)
from lakeshift.sync.reduce import latest_per_key
from lakeshift.sync.state import SyncState

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    """What one applied batch did and how far behind the source the target still is."""

    batch_id: int
    events: int
    keys: int
    seconds: float
    position: dict[str, Any]
    applied: bool
    lag_seconds: float | None = None
    behind: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        """Throughput of this batch."""
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def metrics(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "events": self.events,
            "keys": self.keys,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "applied": self.applied,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "behind": self.behind,
        }

    def line(self) -> str:
        """One human-readable line."""
        lag = "n/a" if self.lag_seconds is None else f"{self.lag_seconds:.1f}s"
        behind = ", ".join(f"{v} {k}" for k, v in self.behind.items()) or "0"
        state = "applied" if self.applied else "already applied (skipped)"
        return (
            f"batch {self.batch_id}: {self.events} events → {self.keys} keys {state} in "
            f"{self.seconds:.1f}s ({self.events_per_second:.0f} ev/s); position {self.position}; "
            f"lag {lag}, behind {behind}"
        )


def data_schema(cfg: SyncConfig) -> StructType | None:
    """The configured target data columns (``columns`` DDL), if any."""
    if not cfg.columns:
        return None
    from pyspark.sql.types import StructType

    schema = StructType.fromDDL(cfg.columns)
    assert isinstance(schema, StructType)
    return schema


def app_id(cfg: SyncConfig, mode: str) -> str:
    """The idempotency id of this sync in ``mode`` (``once``/``stream``).

    It includes when the start point was recorded: a new start point (a new bulk copy) starts a
    new id, so restarted batch numbers are never mistaken for already applied ones.
    """
    start = SyncState(cfg.state_dir, cfg.name).start_point() or {}
    return f"lakeshift-sync:{cfg.name}:{mode}:{int(start.get('recorded_at', 0))}"


# ------------------------------------------------------------------ start point


def record_start_point(spark: SparkSession, cfg: SyncConfig) -> dict[str, Any]:
    """Record where sync starts (before the bulk copy) in the state folder and return it."""
    src = cfg.source
    point: dict[str, Any]
    if isinstance(src, DeltaCdfSource):
        point = {"version": changes.delta_latest_version(spark, src.path)}
    elif isinstance(src, MongoEventsSource):
        files = changes.list_event_files(src.path)
        point = {"after_file": Path(files[-1]).name if files else None}
    elif isinstance(src, MongoChangeStreamSource):
        point = changes.mongo_start_point(src.uri, src.database, src.collection)
    else:
        from lakeshift.sources import from_spec

        point = {
            "high": changes.watermark_high(spark, from_spec(src.spec, src.options), src.column)
        }
    point["kind"] = src.kind
    SyncState(cfg.state_dir, cfg.name).save_start_point(point)
    return point


# ------------------------------------------------------------------ planning


def _current_position(state: SyncState, cfg: SyncConfig) -> tuple[int, dict[str, Any]]:
    committed = state.position()
    if committed is not None:
        return int(committed["batch_id"]), dict(committed["position"])
    start = state.start_point()
    if start is None:
        raise UsageError(
            f"sync {cfg.name}: no start point in {state.dir}; run `lakeshift sync start-point "
            "--config FILE` before the bulk copy"
        )
    return 0, start


def plan_next(spark: SparkSession, cfg: SyncConfig, state: SyncState) -> dict[str, Any] | None:
    """The next batch (id, source range, position after it), or None when caught up."""
    pending = state.pending()
    if pending is not None:
        log.warning("sync %s: re-running pending batch %s", cfg.name, pending["batch_id"])
        return pending
    last_id, pos = _current_position(state, cfg)
    src = cfg.source
    batch_id = last_id + 1
    plan: dict[str, Any] | None = None
    if isinstance(src, DeltaCdfSource):
        applied = int(pos["version"])
        latest = changes.delta_latest_version(spark, src.path)
        if latest > applied:
            end = (
                latest
                if src.max_versions_per_batch is None
                else min(latest, applied + src.max_versions_per_batch)
            )
            plan = {"start": applied + 1, "end": end, "after": {"version": end}}
    elif isinstance(src, MongoEventsSource):
        files = changes.list_event_files(src.path, pos.get("after_file"))
        if src.max_files_per_batch:
            files = files[: src.max_files_per_batch]
        if files:
            plan = {"files": files, "after": {**pos, "after_file": Path(files[-1]).name}}
    elif isinstance(src, MongoChangeStreamSource):
        out = state.journal_dir() / f"batch-{batch_id:012d}.jsonl"
        count, token = changes.record_change_stream(
            src.uri,
            src.database,
            src.collection,
            str(out),
            resume_token=pos.get("resume_token"),
            start_at=pos.get("cluster_time"),
            max_events=src.max_events_per_batch,
            max_wait_s=src.max_wait_seconds,
        )
        if count:
            plan = {"files": [str(out)], "after": {"resume_token": token}}
        else:
            out.unlink(missing_ok=True)
    else:
        from lakeshift.sources import from_spec

        high = changes.watermark_high(spark, from_spec(src.spec, src.options), src.column)
        low = pos.get("high")
        if high is not None and (low is None or high > low or src.detect_deletes):
            plan = {"low": low, "high": high, "after": {"high": high}}
    if plan is None:
        return None
    plan["batch_id"] = batch_id
    state.plan(plan)
    return plan


# ------------------------------------------------------------------ reading and applying


def read_batch(spark: SparkSession, cfg: SyncConfig, plan: dict[str, Any]) -> DataFrame:
    """The change frame of a planned batch."""
    src = cfg.source
    if isinstance(src, DeltaCdfSource):
        return changes.read_delta_changes(spark, src.path, cfg.keys, plan["start"], plan["end"])
    if isinstance(src, MongoEventsSource | MongoChangeStreamSource):
        schema = data_schema(cfg)
        assert schema is not None  # checked by the config model
        return changes.read_mongo_event_files(spark, plan["files"], schema, "_id")
    assert isinstance(src, WatermarkSource)
    from lakeshift.sources import from_spec

    source = from_spec(src.spec, src.options)
    frame = changes.read_watermark_changes(spark, source, src.column, plan["low"], plan["high"])
    if src.detect_deletes and isinstance(cfg.target, DeltaTarget):
        from lakeshift.sources.lake import LakeSource
        from lakeshift.sync.columns import live_rows

        if _delta_exists(spark, cfg.target.path):
            target_keys = LakeSource("delta", cfg.target.path).read(spark).transform(live_rows)
            gone = changes.key_set_deletes(source.read(spark), target_keys, cfg.keys, plan["high"])
            frame = frame.unionByName(gone, allowMissingColumns=True)
    return frame


def _delta_exists(spark: SparkSession, path: str) -> bool:
    from lakeshift.sinks.delta_merge import is_delta

    return is_delta(spark, path)


def apply_batch(
    spark: SparkSession, cfg: SyncConfig, frame: DataFrame, mode: str, batch_id: int
) -> tuple[int, bool]:
    """Reduce ``frame`` to the latest event per key and apply it; returns (keys, committed)."""
    reduced = latest_per_key(frame, cfg.keys)
    target = cfg.target
    if isinstance(target, DeltaTarget):
        from lakeshift.sinks.delta_merge import merge_changes, prepare_target

        schema = data_schema(cfg)
        prepare_target(spark, target.path, schema if schema is not None else frame.schema)
        res = merge_changes(
            spark,
            target.path,
            reduced,
            cfg.keys,
            app_id=app_id(cfg, mode),
            txn_version=batch_id,
            tombstones=target.tombstones,
        )
        return res.inserted + res.updated + res.deleted, res.committed
    assert isinstance(target, PostgresTarget)
    from lakeshift.sinks.sql_apply import ChildTable, apply_sql_batch
    from lakeshift.sync.normalise import split_children

    reduced = reduced.persist()  # staged as parent and child tables: compute it once
    parent, kids = split_children(reduced, cfg.keys, target.children)
    child_tables = [ChildTable(c.table, kids[c.table], c.key_columns) for c in target.children]
    try:
        sql = apply_sql_batch(
            spark,
            target.dsn,
            target.table,
            parent,
            cfg.keys,
            children=child_tables,
            app_id=app_id(cfg, mode),
            batch_id=batch_id,
        )
    finally:
        reduced.unpersist()
    return sql.applied_keys, sql.committed


def _lag(
    spark: SparkSession, cfg: SyncConfig, plan: dict[str, Any], max_ts: int | None
) -> tuple[float | None, dict[str, int]]:
    src = cfg.source
    now = time.time()
    if isinstance(src, DeltaCdfSource):
        latest = changes.delta_latest_version(spark, src.path)
        behind = max(0, latest - int(plan["end"]))
        if behind == 0:
            return 0.0, {"versions": 0}
        first = changes.delta_commit_time(spark, src.path, int(plan["end"]) + 1)
        return (None if first is None else max(0.0, now - first)), {"versions": behind}
    if isinstance(src, MongoEventsSource):
        behind = len(changes.list_event_files(src.path, plan["after"]["after_file"]))
        lag = None if max_ts is None else max(0.0, now - (max_ts >> 32))
        return (0.0 if behind == 0 else lag), {"files": behind}
    if isinstance(src, MongoChangeStreamSource):
        return (None if max_ts is None else max(0.0, now - (max_ts >> 32))), {}
    return None, {}


def run_batch(
    spark: SparkSession, cfg: SyncConfig, state: SyncState, plan: dict[str, Any]
) -> BatchReport:
    """Apply one planned batch and commit its position."""
    from pyspark.sql import functions as F

    began = time.monotonic()
    frame = read_batch(spark, cfg, plan)
    stats = frame.agg(F.count(F.lit(1)).alias("n"), F.max(TS).alias("ts")).first()
    events = int(stats["n"]) if stats is not None else 0
    max_ts = int(stats["ts"]) if stats is not None and stats["ts"] is not None else None
    keys, committed = apply_batch(spark, cfg, frame, "once", int(plan["batch_id"]))
    elapsed = time.monotonic() - began
    lag, behind = _lag(spark, cfg, plan, max_ts)
    report = BatchReport(
        int(plan["batch_id"]), events, keys, elapsed, plan["after"], committed, lag, behind
    )
    state.commit(report.batch_id, plan["after"], report.metrics())
    log.info("sync %s: %s", cfg.name, report.line())
    return report


def run_once(
    spark: SparkSession, cfg: SyncConfig, max_batches: int | None = None
) -> Iterator[BatchReport]:
    """Catch up: apply batches until the source has nothing new (or ``max_batches``)."""
    state = SyncState(cfg.state_dir, cfg.name)
    done = 0
    once_only = isinstance(cfg.source, WatermarkSource)
    while max_batches is None or done < max_batches:
        plan = plan_next(spark, cfg, state)
        if plan is None:
            return
        yield run_batch(spark, cfg, state, plan)
        done += 1
        if once_only:
            return


# ------------------------------------------------------------------ continuous


def run_continuous(
    spark: SparkSession,
    cfg: SyncConfig,
    stop_after: float | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    stop_when: Callable[[], bool] | None = None,
) -> None:
    """Keep the target in step until interrupted, ``stop_after`` seconds or ``stop_when()``.

    Delta CDF and event-folder sources run as Structured Streaming queries (checkpoint location,
    ``foreachBatch`` calling the same apply, processing-time trigger); live change streams and
    watermark sources poll with ``run_once`` every ``trigger_seconds``.
    """
    state = SyncState(cfg.state_dir, cfg.name)
    src = cfg.source
    if isinstance(src, DeltaCdfSource | MongoEventsSource):
        _stream(spark, cfg, state, stop_after, on_batch, stop_when)
        return
    deadline = None if stop_after is None else time.monotonic() + stop_after
    while (deadline is None or time.monotonic() < deadline) and not (stop_when and stop_when()):
        for report in run_once(spark, cfg):
            if on_batch:
                on_batch(report)
        time.sleep(cfg.trigger_seconds)


def _stream(  # noqa: PLR0917
    spark: SparkSession,
    cfg: SyncConfig,
    state: SyncState,
    stop_after: float | None,
    on_batch: Callable[[BatchReport], None] | None,
    stop_when: Callable[[], bool] | None = None,
) -> None:
    from pyspark.sql import functions as F

    if state.pending() is not None:
        raise UsageError(
            f"sync {cfg.name}: a --once batch is pending in {state.dir}; finish it with --once"
        )
    once_id, pos = _current_position(state, cfg)
    src = cfg.source
    checkpoint = cfg.checkpoint or str(state.dir / "checkpoint")
    if isinstance(src, DeltaCdfSource):
        applied = int(pos["version"])
        latest = changes.delta_latest_version(spark, src.path)
        # a start version past the last commit does not exist yet: "latest" means "after it"
        first: int | str = applied + 1 if applied < latest else "latest"
        stream = changes.stream_delta_changes(spark, src.path, cfg.keys, first)
    else:
        assert isinstance(src, MongoEventsSource)
        schema = data_schema(cfg)
        assert schema is not None
        stream = changes.stream_mongo_event_dir(spark, src.path, schema, "_id")

    def each(batch: DataFrame, batch_id: int) -> None:
        began = time.monotonic()
        stats = batch.agg(F.count(F.lit(1)).alias("n"), F.max(TS).alias("ts")).first()
        events = int(stats["n"]) if stats is not None else 0
        if events == 0:
            return
        assert stats is not None
        max_ts = int(stats["ts"])
        keys, committed = apply_batch(spark, cfg, batch, "stream", int(batch_id))
        position: dict[str, Any] = {"stream_batch": int(batch_id)}
        lag: float | None = None
        behind: dict[str, int] = {}
        if isinstance(src, DeltaCdfSource):
            position["version"] = max_ts
            lag, behind = _lag(spark, cfg, {"end": max_ts}, max_ts)
        else:
            lag = max(0.0, time.time() - (max_ts >> 32))
        report = BatchReport(
            int(batch_id), events, keys, time.monotonic() - began, position, committed, lag, behind
        )
        # the --once batch counter (Delta txnVersion of the "once" app id) is kept as it was
        state.commit(once_id, {**pos, **position}, report.metrics())
        log.info("sync %s (stream): %s", cfg.name, report.line())
        if on_batch:
            on_batch(report)

    query = (
        stream.writeStream.foreachBatch(each)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=f"{cfg.trigger_seconds} seconds")
        .queryName(f"lakeshift_sync_{cfg.name.replace('-', '_').replace('.', '_')}")
        .start()
    )
    deadline = None if stop_after is None else time.monotonic() + stop_after
    try:
        while query.isActive and (deadline is None or time.monotonic() < deadline):
            if stop_when is not None and stop_when():
                break
            query.awaitTermination(1)
    finally:
        if query.isActive:
            query.stop()
    if query.exception() is not None:
        raise SourceError(
            f"sync {cfg.name}: streaming query failed: {str(query.exception()).splitlines()[0]}"
        )


__all__ = [
    "HIDDEN",
    "BatchReport",
    "app_id",
    "apply_batch",
    "plan_next",
    "read_batch",
    "record_start_point",
    "run_batch",
    "run_continuous",
    "run_once",
]
