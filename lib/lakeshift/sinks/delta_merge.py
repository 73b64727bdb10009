"""Apply a reduced change batch to a Delta table with one idempotent, version-guarded MERGE.

Deletes leave a *tombstone* by default: the row stays with ``_lakeshift_deleted = true``, its data
columns null and the delete's version, so a late, older insert or update of the same key loses
the version guard and cannot resurrect it. Readers use :func:`lakeshift.changeframe.live_rows`
(or ``WHERE NOT _lakeshift_deleted``); :func:`purge_tombstones` removes them after cut-over.
With ``tombstones=False`` a delete removes the row (``whenMatchedDelete``); only safe when events
arrive in order (Delta Change Data Feed) because nothing then remembers the deleted version.

Idempotency: the MERGE commits with Delta's ``txnAppId``/``txnVersion`` (set through the session
confs ``spark.databricks.delta.write.txnAppId`` / ``.txnVersion``, which Delta honours for
MERGE); Delta skips a commit whose version is not above the last one recorded for the app id.
Re-applying a batch under a new id still changes nothing because of the version guard.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lakeshift.changeframe import DELETED, HIDDEN, ORD, TS, newer_sql
from lakeshift.errors import SinkError
from lakeshift.spark import sql_name, sql_string

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

TXN_APP_ID = "spark.databricks.delta.write.txnAppId"
TXN_VERSION = "spark.databricks.delta.write.txnVersion"
_TXN_LOCK = threading.Lock()


@dataclass(frozen=True)
class MergeResult:
    """What one MERGE did (from Delta's operation metrics; zeros when Delta skipped it)."""

    committed: bool
    table_version: int
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


def is_delta(spark: SparkSession, path: str) -> bool:
    """True if ``path`` holds a Delta table."""
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, path))


def prepare_target(spark: SparkSession, path: str, schema: StructType | None = None) -> None:
    """Make ``path`` a Delta table with the hidden change columns.

    A missing table is created empty from ``schema`` (data columns; hidden ones are added). An
    existing table (e.g. the bulk copy's output) gets the missing hidden columns added as nulls,
    which the version guard treats as "older than any event".

    Raises:
        SinkError: the table is missing and no schema was given.
    """
    from delta.tables import DeltaTable
    from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

    hidden = [
        StructField(TS, LongType()),
        StructField(ORD, StringType()),
        StructField(DELETED, BooleanType()),
    ]
    if not is_delta(spark, path):
        if schema is None:
            raise SinkError(
                f"{path}: expected a Delta table (or a schema to create one), found none"
            )
        fields = [f for f in schema.fields if f.name not in HIDDEN] + hidden
        spark.createDataFrame([], StructType(fields)).write.format("delta").save(path)
        return
    have = set(DeltaTable.forPath(spark, path).toDF().columns)
    add = [f for f in hidden if f.name not in have]
    if add:
        cols = ", ".join(f"{sql_name(f.name)} {f.dataType.simpleString().upper()}" for f in add)
        spark.sql(f"ALTER TABLE delta.{sql_name(path)} ADD COLUMNS ({cols})")


def _metrics(spark: SparkSession, path: str) -> tuple[int, dict[str, str], str]:
    from delta.tables import DeltaTable

    last = (
        DeltaTable.forPath(spark, path)
        .history(1)
        .select("version", "operation", "operationMetrics")
        .first()
    )
    if last is None:
        return -1, {}, ""
    return int(last["version"]), dict(last["operationMetrics"] or {}), str(last["operation"])


def merge_changes(
    spark: SparkSession,
    path: str,
    batch: DataFrame,
    keys: Sequence[str],
    *,
    app_id: str,
    txn_version: int,
    tombstones: bool = True,
) -> MergeResult:
    """MERGE a reduced change batch (at most one event per key) into the Delta table at ``path``.

    Args:
        spark: the session.
        path: the target Delta table (prepared by :func:`prepare_target`).
        batch: reduced change frame (see :func:`lakeshift.sources.reduce.latest_per_key`).
        keys: key columns.
        app_id: Delta ``txnAppId`` (one per sync and mode).
        txn_version: Delta ``txnVersion``, strictly increasing per ``app_id``.
        tombstones: keep deletes as tombstones (default) or remove the rows.

    Returns:
        :class:`MergeResult`; ``committed`` is False when Delta skipped an already applied batch.

    Raises:
        SinkError: the MERGE failed.
    """
    from delta.tables import DeltaTable

    target = DeltaTable.forPath(spark, path)
    tcols = set(target.toDF().columns)
    cols = [c for c in batch.columns if c in tcols]
    on = " AND ".join(f"t.{sql_name(k)} = s.{sql_name(k)}" for k in keys)
    newer = f"({newer_sql('s', 't')})"
    values: dict[str, str | Column] = {sql_name(c): f"s.{sql_name(c)}" for c in cols}
    merge = target.alias("t").merge(batch.alias("s"), on)
    if tombstones:
        merge = merge.whenMatchedUpdate(condition=newer, set=values).whenNotMatchedInsert(
            values=values
        )
    else:
        merge = (
            merge.whenMatchedDelete(condition=f"s.{DELETED} AND {newer}")
            .whenMatchedUpdate(condition=f"NOT s.{DELETED} AND {newer}", set=values)
            .whenNotMatchedInsert(condition=f"NOT s.{DELETED}", values=values)
        )
    before, _, _ = _metrics(spark, path)
    with _TXN_LOCK:
        spark.conf.set(TXN_APP_ID, app_id)
        spark.conf.set(TXN_VERSION, str(int(txn_version)))
        try:
            merge.execute()
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SinkError(f"{path}: MERGE of sync batch {txn_version} failed: {first}") from exc
        finally:
            spark.conf.unset(TXN_APP_ID)
            spark.conf.unset(TXN_VERSION)
    after, metrics, op = _metrics(spark, path)
    if after == before or op != "MERGE":
        log.info("%s: batch %s of %s already applied; Delta skipped it", path, txn_version, app_id)
        return MergeResult(False, after)
    return MergeResult(
        True,
        after,
        inserted=int(metrics.get("numTargetRowsInserted", 0)),
        updated=int(metrics.get("numTargetRowsUpdated", 0)),
        deleted=int(metrics.get("numTargetRowsDeleted", 0)),
    )


def purge_tombstones(spark: SparkSession, path: str, before_ts: int | None = None) -> None:
    """Delete tombstones (all, or those older than ``before_ts``) once no late event can come."""
    from delta.tables import DeltaTable

    cond = f"{DELETED}" if before_ts is None else f"{DELETED} AND {TS} < {int(before_ts)}"
    DeltaTable.forPath(spark, path).delete(cond)


def finalize_target(spark: SparkSession, path: str) -> dict[str, Any]:
    """Make a synced Delta target what its readers should see at cut-over.

    Tombstones are deleted and the hidden version columns dropped (Delta column mapping
    ``name`` is switched on for that: readers need Delta reader version 2). A later sync (after
    a rollback) adds the columns back as nulls, "older than every event"; what it loses is the
    guard against a late, older insert of a key deleted before the cut-over.
    """
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, path)
    have = table.toDF().columns
    if DELETED in have:
        table.delete(f"coalesce({DELETED}, false)")
    hidden = [c for c in HIDDEN if c in have]
    if hidden:
        props = {
            r["key"]: r["value"]
            for r in spark.sql(f"SHOW TBLPROPERTIES delta.{sql_name(path)}").collect()
        }
        if props.get("delta.columnMapping.mode", "none") == "none":
            spark.sql(
                f"ALTER TABLE delta.{sql_name(path)} SET TBLPROPERTIES ("
                "'delta.columnMapping.mode' = 'name', 'delta.minReaderVersion' = '2', "
                "'delta.minWriterVersion' = '5')"
            )
        cols = ", ".join(sql_name(c) for c in hidden)
        spark.sql(f"ALTER TABLE delta.{sql_name(path)} DROP COLUMNS ({cols})")
    rows = DeltaTable.forPath(spark, path).toDF().count()
    return {"path": path, "dropped_columns": hidden, "rows": rows}


def replace_files(
    spark: SparkSession,
    path: str,
    rows: DataFrame,
    files: Sequence[str],
    *,
    file_col: str,
    app_id: str,
    txn_version: int,
) -> MergeResult:
    """Append ``rows`` and drop earlier rows of ``files`` in one idempotent Delta commit.

    ``rows`` carry ``file_col`` (the source file each row came from). The write is an overwrite
    with ``replaceWhere = file_col IN (files)``, so rows an earlier batch appended from a file
    that changed or vanished are replaced in the same commit, and it carries Delta's
    ``txnAppId``/``txnVersion`` options: a replayed batch is skipped by Delta (and would replace
    the same rows with the same rows anyway). A missing table is created; a table without
    ``file_col`` (the bulk copy's output, whose rows then stay) gets the column added.

    Raises:
        SinkError: the write failed.

    Example:
        >>> replace_files(spark, "/lake/t", rows, ["a.parquet"], file_col="_lakeshift_file",
        ...               app_id="sync", txn_version=3)  # doctest: +SKIP
    """
    from delta.tables import DeltaTable

    if not files:
        raise SinkError(f"{path}: expected files to replace, found none")
    if not is_delta(spark, path):
        spark.createDataFrame([], rows.schema).write.format("delta").save(path)
    elif file_col not in DeltaTable.forPath(spark, path).toDF().columns:
        spark.sql(f"ALTER TABLE delta.{sql_name(path)} ADD COLUMNS ({sql_name(file_col)} STRING)")
    quoted = ", ".join(sql_string(f) for f in files)
    before, _, _ = _metrics(spark, path)
    try:
        (
            rows.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", f"{sql_name(file_col)} IN ({quoted})")
            .option("txnAppId", app_id)
            .option("txnVersion", int(txn_version))
            .save(path)
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SinkError(
            f"{path}: file replace of sync batch {txn_version} failed: {first}"
        ) from exc
    after, metrics, _ = _metrics(spark, path)
    if after == before:
        log.info("%s: batch %s of %s already applied; Delta skipped it", path, txn_version, app_id)
        return MergeResult(False, after)
    return MergeResult(
        True,
        after,
        inserted=int(metrics.get("numOutputRows", 0)),
        deleted=int(metrics.get("numRemovedRows", metrics.get("numDeletedRows", 0)) or 0),
    )
