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

from lakeshift.changeframe import HIDDEN, TS
from lakeshift.errors import SourceError, UsageError
from lakeshift.sources import changes
from lakeshift.sources.reduce import latest_per_key
from lakeshift.sync.config import (
    DeltaCdfSource,
    DeltaTarget,
    LakeFilesSource,
    MariaDbTarget,
    MongoChangeStreamSource,
    MongoEventsSource,
    PostgresTarget,
    SyncConfig,
    WatermarkSource,
)
from lakeshift.sync.state import SyncState

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from lakeshift.sources.manifest import Record

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
    """Record where sync starts (before the bulk copy) in the state folder and return it.

    A new start point means a new bulk copy: the committed position, a pending batch and
    stored manifests of an earlier start are cleared (the idempotency ids change with it).
    A streaming checkpoint outside the state folder (``checkpoint``) must be removed by hand.
    """
    src = cfg.source
    point: dict[str, Any]
    SyncState(cfg.state_dir, cfg.name).reset()
    if isinstance(src, DeltaCdfSource):
        point = {"version": changes.delta_latest_version(spark, src.path)}
    elif isinstance(src, MongoEventsSource):
        # the processed-files log starts with every file present: the bulk copy has them
        records = changes.event_file_records(src.path)
        name = SyncState(cfg.state_dir, cfg.name).save_manifest(0, records)
        point = {"after_file": max(records) if records else None, "manifest": name}
    elif isinstance(src, MongoChangeStreamSource):
        point = changes.mongo_start_point(src.uri, src.database, src.collection)
    elif isinstance(src, LakeFilesSource):
        records = changes.list_lake_files(src.path, src.include, src.exclude)
        name = SyncState(cfg.state_dir, cfg.name).save_manifest(0, records)
        point = {"manifest": name, "files": len(records)}
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
        plan = _plan_event_files(src, state, pos, batch_id)
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
    elif isinstance(src, LakeFilesSource):
        plan = _plan_lake_files(src, state, pos, batch_id)
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


def applied_event_files(
    state: SyncState, pos: dict[str, Any], current: dict[str, Record]
) -> dict[str, Record]:
    """The processed-files log of an event folder at position ``pos``.

    A position written before the log existed has only ``after_file``: the files named at or
    before it count as applied (with their current size and modification time).
    """
    if pos.get("manifest"):
        return state.load_manifest(str(pos["manifest"]))
    after = pos.get("after_file")
    return {n: r for n, r in current.items() if after is not None and n <= after}


def _plan_event_files(
    src: MongoEventsSource, state: SyncState, pos: dict[str, Any], batch_id: int
) -> dict[str, Any] | None:
    """Every event file not in the processed-files log (new, late or rewritten), by name.

    A file is applied when the log holds it with the same size and modification time, so a
    late file with a lower name is applied too; a rewritten file is applied again (the version
    guard makes its already applied events no-ops). The log after the batch is written now and
    named by the position only once the apply committed.
    """
    current = changes.event_file_records(src.path)
    applied = applied_event_files(state, pos, current)
    todo, gone = changes.manifest_diff(current, applied)
    if src.max_files_per_batch:
        todo = todo[: src.max_files_per_batch]
    if not todo:
        return None
    after = {k: v for k, v in applied.items() if k not in gone}
    after.update({n: current[n] for n in todo})
    name = state.save_manifest(batch_id, after)
    last = max([*todo, *([str(pos["after_file"])] if pos.get("after_file") else [])])
    return {
        "files": [str(Path(src.path) / n) for n in todo],
        "after": {**pos, "after_file": last, "manifest": name},
    }


def _plan_lake_files(
    src: LakeFilesSource, state: SyncState, pos: dict[str, Any], batch_id: int
) -> dict[str, Any] | None:
    """Diff the lake path against the committed manifest; write the manifest after the batch."""
    stored = state.load_manifest(str(pos["manifest"]))
    current = changes.list_lake_files(src.path, src.include, src.exclude)
    changed, gone = changes.manifest_diff(current, stored)
    if src.max_files_per_batch:
        changed = changed[: src.max_files_per_batch]
    if not changed and not gone:
        return None
    after = {k: v for k, v in stored.items() if k not in gone}
    after.update({rel: current[rel] for rel in changed})
    name = state.save_manifest(batch_id, after)
    plan: dict[str, Any] = {
        "files": changed,
        "gone": gone,
        "after": {"manifest": name, "files": len(after)},
    }
    return plan


# ------------------------------------------------------------------ reading and applying


def read_batch(spark: SparkSession, cfg: SyncConfig, plan: dict[str, Any]) -> DataFrame | None:
    """The change frame of a planned batch (None: a lake-path batch with nothing to apply)."""
    src = cfg.source
    if isinstance(src, DeltaCdfSource):
        return changes.read_delta_changes(spark, src.path, cfg.keys, plan["start"], plan["end"])
    if isinstance(src, MongoEventsSource | MongoChangeStreamSource):
        schema = data_schema(cfg)
        assert schema is not None  # checked by the config model
        return changes.read_mongo_event_files(spark, plan["files"], schema, "_id")
    if isinstance(src, LakeFilesSource):
        frame = None
        if plan["files"]:
            frame = changes.read_lake_files(
                spark, src.path, plan["files"], fmt=src.format, options=src.options, keys=cfg.keys
            )
        removed = _removed_files(spark, cfg, src, plan) if plan.get("gone") else None
        if removed is not None:
            frame = (
                removed if frame is None else frame.unionByName(removed, allowMissingColumns=True)
            )
        return frame
    assert isinstance(src, WatermarkSource)
    from lakeshift.sources import from_spec

    source = from_spec(src.spec, src.options)
    frame = changes.read_watermark_changes(spark, source, src.column, plan["low"], plan["high"])
    if src.detect_deletes and isinstance(cfg.target, DeltaTarget):
        from lakeshift.changeframe import live_rows
        from lakeshift.sources.lake import LakeSource

        if _delta_exists(spark, cfg.target.path):
            target_keys = LakeSource("delta", cfg.target.path).read(spark).transform(live_rows)
            gone = changes.key_set_deletes(source.read(spark), target_keys, cfg.keys, plan["high"])
            frame = frame.unionByName(gone, allowMissingColumns=True)
    return frame


def _removed_files(
    spark: SparkSession, cfg: SyncConfig, src: LakeFilesSource, plan: dict[str, Any]
) -> DataFrame | None:
    """Delete (or re-show) events for the keys of removed lake files (None: no target yet).

    See :func:`lakeshift.sources.changes.removed_file_events`.
    """
    from lakeshift.changeframe import DELETED, ORD, TS

    target = cfg.target
    gone = list(plan["gone"])
    if isinstance(target, DeltaTarget):
        if not _delta_exists(spark, target.path):
            return None
        from pyspark.sql import functions as F

        from lakeshift.sources.lake import LakeSource

        rows = LakeSource("delta", target.path).read(spark)
        if ORD not in rows.columns:  # only the bulk copy wrote it so far
            rows = rows.withColumn(TS, F.lit(None).cast("bigint"))
            rows = rows.withColumn(ORD, F.lit(None).cast("string"))
        if DELETED in rows.columns:
            rows = rows.where(~F.coalesce(F.col(DELETED), F.lit(False)))
    else:
        from lakeshift.sinks.sql_apply import jdbc_from_dsn, mysql_jdbc

        if isinstance(target, PostgresTarget):
            jdbc, quote = jdbc_from_dsn(target.dsn), '"'
        else:
            jdbc, quote = mysql_jdbc(target.url), "`"
        rows = changes.sql_target_versions(spark, jdbc, target.table, cfg.keys, gone, quote=quote)
    state = SyncState(cfg.state_dir, cfg.name)
    left = sorted(state.load_manifest(str(plan["after"]["manifest"])))
    remaining = (
        changes.read_lake_files(
            spark, src.path, left, fmt=src.format, options=src.options, keys=cfg.keys
        )
        if left
        else None
    )
    return changes.removed_file_events(rows, remaining, gone, cfg.keys)


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
    assert isinstance(target, PostgresTarget | MariaDbTarget)
    from lakeshift.sinks.sql_apply import ChildTable, apply_mysql_batch, apply_sql_batch
    from lakeshift.sync.normalise import split_children

    reduced = reduced.persist()  # staged as parent and child tables: compute it once
    parent, kids = split_children(reduced, cfg.keys, target.children)
    child_tables = [ChildTable(c.table, kids[c.table], c.key_columns) for c in target.children]
    apply = apply_sql_batch if isinstance(target, PostgresTarget) else apply_mysql_batch
    conn = target.dsn if isinstance(target, PostgresTarget) else target.url
    try:
        sql = apply(
            spark,
            conn,
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


def finalize(spark: SparkSession, cfg: SyncConfig) -> dict[str, Any]:
    """After the last sync before cut-over: leave the target as its readers should see it.

    Delta: tombstones deleted, hidden version columns dropped
    (:func:`lakeshift.sinks.delta_merge.finalize_target`). SQL targets hold live rows only
    (deletes are recorded in a side table); their two version columns stay, as ordinary
    nullable columns, so a rolled-back sync can go on guarding.
    """
    target = cfg.target
    if isinstance(target, DeltaTarget):
        from lakeshift.sinks.delta_merge import finalize_target

        return {"name": cfg.name, "target": "delta", **finalize_target(spark, target.path)}
    return {"name": cfg.name, "target": target.kind, "dropped_columns": []}


def _lag(
    spark: SparkSession, cfg: SyncConfig, plan: dict[str, Any], max_ts: int | None
) -> tuple[float | None, dict[str, int]]:
    src = cfg.source
    now = time.time()
    if isinstance(src, DeltaCdfSource):
        latest = changes.delta_latest_version(spark, src.path)
        behind = max(0, latest - int(plan["end"]))
        if behind == 0:
            return 0.0, {"versions": 0, "events": 0}
        first = changes.delta_commit_time(spark, src.path, int(plan["end"]) + 1)
        events = changes.delta_rows_changed_after(spark, src.path, int(plan["end"]))
        lag = None if first is None else max(0.0, now - first)
        return lag, {"versions": behind, "events": events}
    if isinstance(src, MongoEventsSource):
        current = changes.event_file_records(src.path)
        state = SyncState(cfg.state_dir, cfg.name)
        pending, _ = changes.manifest_diff(
            current, applied_event_files(state, plan["after"], current)
        )
        size = sum(current[n].size for n in pending)
        lag = None if max_ts is None else max(0.0, now - (max_ts >> 32))
        return (0.0 if not pending else lag), {"files": len(pending), "bytes": size}
    if isinstance(src, MongoChangeStreamSource):
        return (None if max_ts is None else max(0.0, now - (max_ts >> 32))), {}
    if isinstance(src, LakeFilesSource):
        state = SyncState(cfg.state_dir, cfg.name)
        stored = state.load_manifest(str(plan["after"]["manifest"]))
        current = changes.list_lake_files(src.path, src.include, src.exclude)
        changed, gone = changes.manifest_diff(current, stored)
        if not changed and not gone:
            return 0.0, {"files": 0, "bytes": 0}
        oldest = min((current[r].mtime_ns for r in changed), default=time.time_ns())
        size = sum(current[r].size for r in changed)
        return max(0.0, now - oldest / 1e9), {"files": len(changed) + len(gone), "bytes": size}
    return None, {}


def run_batch(
    spark: SparkSession, cfg: SyncConfig, state: SyncState, plan: dict[str, Any]
) -> BatchReport:
    """Apply one planned batch and commit its position."""
    from pyspark.sql import functions as F

    began = time.monotonic()
    frame = None
    if isinstance(cfg.source, LakeFilesSource) and not cfg.keys:
        events, keys, committed = _apply_lake_files(spark, cfg, plan)
        max_ts = None
    elif (frame := read_batch(spark, cfg, plan)) is None:
        events, keys, committed, max_ts = 0, 0, True, None
    else:
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
    if isinstance(cfg.source, LakeFilesSource | MongoEventsSource) and plan["after"].get(
        "manifest"
    ):
        state.prune_manifests(str(plan["after"]["manifest"]))
    log.info("sync %s: %s", cfg.name, report.line())
    return report


def _apply_lake_files(
    spark: SparkSession, cfg: SyncConfig, plan: dict[str, Any]
) -> tuple[int, int, bool]:
    """Apply a keyless lake-path batch: append the rows, replacing rows of changed/removed files.

    Returns ``(rows read, rows written, committed)``.
    """
    from pyspark.sql import functions as F

    src = cfg.source
    assert isinstance(src, LakeFilesSource)
    target = cfg.target
    assert isinstance(target, DeltaTarget)  # checked by the config model
    from lakeshift.sinks.delta_merge import replace_files

    if plan["files"]:
        rows = changes.read_lake_files(
            spark, src.path, plan["files"], fmt=src.format, options=src.options, keys=[]
        ).persist()
    else:  # only removed files: their earlier rows go, nothing comes
        from lakeshift.sources.lake import LakeSource

        have = LakeSource("delta", target.path).read(spark).limit(0)
        if changes.FILE_COL not in have.columns:
            have = have.withColumn(changes.FILE_COL, F.lit(None).cast("string"))
        rows = have.drop(*[c for c in HIDDEN if c in have.columns]).persist()
    try:
        n = rows.agg(F.count(F.lit(1)).alias("n")).first()
        count = int(n["n"]) if n is not None else 0
        res = replace_files(
            spark,
            target.path,
            rows,
            [*plan["files"], *plan["gone"]],
            file_col=changes.FILE_COL,
            app_id=app_id(cfg, "once"),
            txn_version=int(plan["batch_id"]),
        )
    finally:
        rows.unpersist()
    return count, res.inserted, res.committed


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


def _checkpoint_started(checkpoint: str) -> bool:
    """True when the streaming checkpoint already holds offsets (a restart)."""
    from lakeshift.sources.fs import resolve, stat

    try:
        return stat(resolve(checkpoint), "offsets") is not None
    except Exception:  # an unreachable or missing checkpoint: treat as a first start
        return False


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
    current = dict(pos)  # the committed position, advanced by every micro-batch
    src = cfg.source
    checkpoint = cfg.checkpoint or str(state.dir / "checkpoint")
    schema = data_schema(cfg)
    if isinstance(src, DeltaCdfSource):
        applied = int(pos["version"])
        latest = changes.delta_latest_version(spark, src.path)
        # a start version past the last commit does not exist yet: "latest" means "after it"
        first: int | str = applied + 1 if applied < latest else "latest"
        stream = changes.stream_delta_changes(spark, src.path, cfg.keys, first)
    else:
        assert isinstance(src, MongoEventsSource)
        assert schema is not None
        # first start: skip the files in the processed-files log (start point and what --once
        # applied); after that the checkpoint's file log alone decides, so a late file with a
        # lower name still applies
        skip: list[str] | None = None
        after = None
        if not _checkpoint_started(checkpoint):
            if pos.get("manifest"):
                skip = sorted(state.load_manifest(str(pos["manifest"])))
            else:
                after = pos.get("after_file")
        stream = changes.stream_event_lines(
            spark, src.path, after, src.max_files_per_batch, skip_files=skip
        )

    def each(batch: DataFrame, batch_id: int) -> None:
        began = time.monotonic()
        files: list[str] = []
        if isinstance(src, MongoEventsSource):
            assert schema is not None
            batch = batch.persist()
            # the files of one trigger: a short list (maxFilesPerTrigger bounds it)
            files = sorted(r[0] for r in batch.select(changes.EVENT_FILE).distinct().collect())
            frame = changes.parse_event_lines(batch, schema, "_id")
        else:
            frame = batch
        try:
            stats = frame.agg(F.count(F.lit(1)).alias("n"), F.max(TS).alias("ts")).first()
            events = int(stats["n"]) if stats is not None else 0
            if events == 0 and not files:
                return
            max_ts = int(stats["ts"]) if stats is not None and stats["ts"] is not None else None
            keys, committed = (0, True)
            if events:
                keys, committed = apply_batch(spark, cfg, frame, "stream", int(batch_id))
        finally:
            if files:
                batch.unpersist()
        position: dict[str, Any] = {"stream_batch": int(batch_id)}
        lag: float | None = None
        behind: dict[str, int] = {}
        if isinstance(src, DeltaCdfSource):
            assert max_ts is not None
            position["version"] = max_ts
            lag, behind = _lag(spark, cfg, {"end": max_ts}, max_ts)
        else:
            assert isinstance(src, MongoEventsSource)
            last = max([*files, *([current["after_file"]] if current.get("after_file") else [])])
            position["after_file"] = last
            if files:  # the processed-files log, so a later --once does not re-read them
                now = changes.event_file_records(src.path)
                log_ = applied_event_files(state, current, now)
                log_.update({n: now[n] for n in files if n in now})
                position["manifest"] = state.save_manifest(
                    once_id, log_, tag=f"-s{int(batch_id):012d}"
                )
            lag, behind = _lag(spark, cfg, {"after": {**current, **position}}, max_ts)
        report = BatchReport(
            int(batch_id), events, keys, time.monotonic() - began, position, committed, lag, behind
        )
        current.update(position)
        # the --once batch counter (Delta txnVersion of the "once" app id) is kept as it was
        state.commit(once_id, dict(current), report.metrics())
        if current.get("manifest"):
            state.prune_manifests(str(current["manifest"]))
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
