"""Change sources for live sync. Each returns a *change frame* (see ``lakeshift.changeframe``).

* Delta Change Data Feed: ``readChangeFeed`` from a start version (preimage rows ignored);
  version = (commit version, 0 for deletes / 1 for inserts and postimages, so a delete and an
  insert of one key in one commit end with the insert);
* MongoDB change events: Extended JSON lines in the documented change-stream shape (files written
  by the live recorder :func:`record_change_stream`, or recorded elsewhere), parsed with
  ``mapInArrow``; version = (cluster time, resume token hex);
* an update-time (or monotonically increasing) column for JDBC/lake sources without a change
  feed, with deletes found by key-set difference on request;
* new and changed files of a lake path since a stored manifest (manifest diff of
  ``lakeshift.files``), read as rows.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeshift.changeframe import DELETED, HIDDEN, ORD, TS, pad_ord, pad_ord_col
from lakeshift.errors import SourceError
from lakeshift.sources.mongo_events import (
    RECORD_DDL,
    arrow_lines_to_records,
    event_to_json_line,
    history_lost_advice,
)
from lakeshift.spark import col, sql_string

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from lakeshift.sources.base import Source
    from lakeshift.sources.manifest import Record

log = logging.getLogger(__name__)

CDF_META = ("_change_type", "_commit_version", "_commit_timestamp")


# ---------------------------------------------------------------- Delta Change Data Feed


def delta_latest_version(spark: SparkSession, path: str) -> int:
    """The latest commit version of the Delta table at ``path``.

    Raises:
        SourceError: ``path`` is not a Delta table.
    """
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        raise SourceError(f"{path}: expected a Delta table, found none")
    row = DeltaTable.forPath(spark, path).history(1).select("version").first()
    return int(row["version"]) if row is not None else -1


def delta_commit_time(spark: SparkSession, path: str, version: int) -> float | None:
    """Epoch seconds of commit ``version`` (None if it is not in the history)."""
    from delta.tables import DeltaTable

    row = (
        DeltaTable.forPath(spark, path)
        .history()
        .where(f"version = {int(version)}")
        .select("timestamp")
        .first()
    )
    return float(row["timestamp"].timestamp()) if row is not None else None


def delta_rows_changed_after(spark: SparkSession, path: str, version: int) -> int:
    """Rows written or deleted by the commits after ``version`` (from the commit history).

    An estimate of the change events still to apply that reads no data: the sum of each
    commit's operation metrics (MERGE inserted/updated/deleted, DELETE and UPDATE rows, output
    rows of any other write).
    """
    from delta.tables import DeltaTable

    rows = (
        DeltaTable.forPath(spark, path)
        .history()
        .where(f"version > {int(version)}")
        .select("operation", "operationMetrics")
        .collect()  # one small row per unapplied commit
    )
    total = 0
    for row in rows:
        metrics = dict(row["operationMetrics"] or {})
        keys: tuple[str, ...]
        if row["operation"] == "MERGE":
            keys = ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted")
        elif row["operation"] in ("DELETE", "UPDATE"):
            keys = ("numDeletedRows", "numUpdatedRows")
        else:
            keys = ("numOutputRows",)
        total += sum(int(metrics.get(k, 0) or 0) for k in keys)
    return total


def cdf_to_changes(df: DataFrame, keys: Sequence[str]) -> DataFrame:
    """Turn Delta CDF rows into a change frame (pure transform; batch or streaming).

    ``update_preimage`` rows are dropped; deletes keep only their key columns.
    """
    from pyspark.sql import functions as F

    missing = [c for c in ("_change_type", "_commit_version") if c not in df.columns]
    if missing:
        raise SourceError(f"change data feed: expected columns {missing}, found {df.columns}")
    kind = F.col("_change_type")
    is_delete = kind == F.lit("delete")
    data = [c for c in df.columns if c not in CDF_META and c not in HIDDEN]
    return df.where(kind != F.lit("update_preimage")).select(
        *[
            col(c) if c in keys else F.when(is_delete, F.lit(None)).otherwise(col(c)).alias(c)
            for c in data
        ],
        F.col("_commit_version").cast("bigint").alias(TS),
        F.when(is_delete, F.lit(pad_ord(0))).otherwise(F.lit(pad_ord(1))).alias(ORD),
        is_delete.alias(DELETED),
    )


def read_delta_changes(
    spark: SparkSession, path: str, keys: Sequence[str], start: int, end: int
) -> DataFrame:
    """The change frame of commits ``start..end`` (inclusive) of a CDF-enabled Delta table.

    Raises:
        SourceError: the change feed cannot be read (not enabled, versions vacuumed).
    """
    from pyspark.errors import AnalysisException

    try:
        df = (
            spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", int(start))
            .option("endingVersion", int(end))
            .load(path)
        )
    except AnalysisException as exc:
        first = str(exc).strip().splitlines()[0]
        raise SourceError(
            f"{path}: cannot read the change data feed for versions {start}..{end} "
            f"(is delta.enableChangeDataFeed on since the start point?): {first}"
        ) from exc
    return cdf_to_changes(df, keys)


def stream_delta_changes(
    spark: SparkSession,
    path: str,
    keys: Sequence[str],
    start: int | str,
    max_files_per_trigger: int | None = None,
) -> DataFrame:
    """A streaming change frame of the table's change feed from version ``start`` (or "latest")."""
    reader = (
        spark.readStream.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", str(start))
    )
    if max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", int(max_files_per_trigger))
    return cdf_to_changes(reader.load(path), keys)


# ---------------------------------------------------------------- MongoDB change events


def mongo_records_to_changes(records: DataFrame, schema: StructType, key: str = "_id") -> DataFrame:
    """Change records (``RECORD_DDL``) → change frame with ``schema``'s columns (pure transform).

    Documents are parsed with ``from_json`` against ``schema``; the key column is the document
    ``_id`` as text (ObjectId hex). Deletes carry only the key.
    """
    from pyspark.sql import functions as F

    doc = F.from_json(F.col("_doc"), schema, {"mode": "PERMISSIVE"})
    cols: list[Column] = []
    for field in schema.fields:
        if field.name in HIDDEN:
            continue
        if field.name == key:
            cols.append(F.col("_key").cast(field.dataType).alias(key))
        else:
            cols.append(doc.getField(field.name).alias(field.name))
    return records.select(*cols, F.col(TS), F.col(ORD), F.col(DELETED))


def _parse_lines(lines: DataFrame, schema: StructType, key: str, after_ts: int | None) -> DataFrame:
    from pyspark.sql import functions as F

    records = lines.mapInArrow(arrow_lines_to_records, RECORD_DDL)
    if after_ts is not None:
        records = records.where(F.col(TS) > F.lit(int(after_ts)))
    return mongo_records_to_changes(records, schema, key)


def read_mongo_event_files(
    spark: SparkSession,
    files: Sequence[str],
    schema: StructType,
    key: str = "_id",
    after_ts: int | None = None,
) -> DataFrame:
    """The change frame of Extended JSON change-event files (one event per line).

    Args:
        spark: the session.
        files: event files (any Hadoop filesystem path).
        schema: the target's data columns (documents are parsed against it).
        key: the key column (the document ``_id``).
        after_ts: skip events at or before this packed cluster time (the bulk copy has them).
    """
    if not files:
        raise SourceError("change events: expected at least one event file, found none")
    return _parse_lines(spark.read.text(list(files)), schema, key, after_ts)


EVENT_FILE = "_lakeshift_event_file"


def stream_event_lines(
    spark: SparkSession,
    directory: str,
    after_file: str | None = None,
    max_files_per_trigger: int | None = None,
    skip_files: Sequence[str] | None = None,
) -> DataFrame:
    """A streaming frame of the lines of new ``*.jsonl`` event files in ``directory``.

    Columns: ``value`` (one event) and ``_lakeshift_event_file`` (its file name). The file
    source records the files each micro-batch read in the query's checkpoint, so a restarted
    query never reads them again; files named at or before ``after_file`` (the start point, or
    what ``--once`` already applied) are filtered out on the file's name before any parsing;
    ``skip_files`` (the names in the processed-files log) are filtered out the same way and
    replace the ``after_file`` rule when given. Parse a micro-batch with
    :func:`parse_event_lines`.
    """
    from pyspark.sql import functions as F

    reader = spark.readStream.format("text").option("pathGlobFilter", "*.jsonl")
    if max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", int(max_files_per_trigger))
    lines = reader.load(directory).select("value", F.col("_metadata.file_name").alias(EVENT_FILE))
    if skip_files is not None:
        if skip_files:
            lines = lines.where(~F.col(EVENT_FILE).isin(sorted(skip_files)))
    elif after_file:
        lines = lines.where(F.col(EVENT_FILE) > F.lit(after_file))
    return lines


def parse_event_lines(lines: DataFrame, schema: StructType, key: str = "_id") -> DataFrame:
    """The change frame of event lines (a micro-batch of :func:`stream_event_lines`)."""
    return _parse_lines(lines.select("value"), schema, key, None)


def event_file_records(directory: str) -> dict[str, Record]:
    """The processed-files view of a local event folder now: ``name → Record(size, mtime)``.

    Only ``*.jsonl`` files directly in the folder count (a writer's ``.tmp`` file does not).

    Raises:
        SourceError: the folder does not exist.
    """
    from lakeshift.sources.manifest import Record

    folder = Path(directory)
    if not folder.is_dir():
        raise SourceError(f"{directory}: expected a folder of change-event files, found none")
    out: dict[str, Record] = {}
    for path in folder.glob("*.jsonl"):
        try:
            st = path.stat()
        except FileNotFoundError:  # removed while listing
            continue
        if path.is_file():
            out[path.name] = Record(path.name, st.st_size, st.st_mtime_ns, status="verified")
    return out


def _mongo_collection(uri: str, database: str, collection: str) -> Any:
    from pymongo import MongoClient

    client: Any = MongoClient(uri, tz_aware=True)
    return client, client[database][collection]


def mongo_start_point(uri: str, database: str, collection: str) -> dict[str, Any]:
    """The current resume token (and cluster time) of a collection's change stream.

    Raises:
        SourceError: the server has no change streams (not a replica set, or FerretDB).
    """
    from bson import json_util
    from pymongo.errors import PyMongoError

    client, coll = _mongo_collection(uri, database, collection)
    try:
        with coll.watch(full_document="updateLookup", max_await_time_ms=100) as stream:
            stream.try_next()
            token = stream.resume_token
        hello = client.admin.command("hello")
    except PyMongoError as exc:
        raise SourceError(
            f"mongodb {database}.{collection}: cannot open a change stream (a replica set or "
            f"sharded cluster is required): {str(exc).splitlines()[0]}"
        ) from exc
    finally:
        client.close()
    cluster = hello.get("$clusterTime", {}).get("clusterTime")
    return {
        "resume_token": json_util.dumps(token) if token is not None else None,
        "cluster_time": ((cluster.time << 32) | cluster.inc) if cluster is not None else None,
    }


def record_change_stream(
    uri: str,
    database: str,
    collection: str,
    out_path: str,
    *,
    resume_token: str | None = None,
    start_at: int | None = None,
    max_events: int = 100_000,
    max_wait_s: float = 5.0,
) -> tuple[int, str | None]:
    """Read up to ``max_events`` change events into ``out_path`` (Extended JSON lines).

    The driver reads the stream (there is no other way); the file is then applied by the same
    Spark code as recorded replays. Returns ``(events, resume token after the last one)``; the
    caller stores the token only after the batch is applied.

    Raises:
        ChangeStreamHistoryLostError: the resume point fell off the oplog (code 286).
        SourceError: any other change-stream failure.
    """
    from bson import Timestamp, json_util
    from pymongo.errors import PyMongoError

    client, coll = _mongo_collection(uri, database, collection)
    kwargs: dict[str, Any] = {"full_document": "updateLookup", "max_await_time_ms": 500}
    if resume_token:
        kwargs["start_after"] = json_util.loads(resume_token)
    elif start_at is not None:
        kwargs["start_at_operation_time"] = Timestamp(start_at >> 32, start_at & 0xFFFFFFFF)
    where = f"mongodb {database}.{collection}"
    tmp = f"{out_path}.tmp"
    count = 0
    token: Mapping[str, Any] | None = None
    deadline = time.monotonic() + max_wait_s
    try:
        with coll.watch(**kwargs) as stream, open(tmp, "w", encoding="utf-8") as fh:
            while count < max_events and time.monotonic() < deadline:
                event = stream.try_next()
                token = stream.resume_token
                if event is None:
                    continue
                fh.write(event_to_json_line(event) + "\n")
                count += 1
    except PyMongoError as exc:
        mapped = history_lost_advice(exc, where)
        if mapped is not None:
            raise mapped from exc
        raise SourceError(f"{where}: change stream failed: {str(exc).splitlines()[0]}") from exc
    finally:
        client.close()
    os.replace(tmp, out_path)
    return count, (json_util.dumps(token) if token is not None else resume_token)


# ---------------------------------------------------------------- update-time column


def version_expr(col: Column, type_name: str) -> Column:
    """A watermark column as a comparable ``bigint``: microseconds for timestamps/dates."""
    from pyspark.sql import functions as F

    if type_name.startswith("timestamp"):
        return F.unix_micros(col.cast("timestamp"))
    if type_name == "date":
        return F.unix_micros(col.cast("timestamp"))
    return col.cast("bigint")


def watermark_high(spark: SparkSession, source: Source, column: str) -> int | None:
    """The current maximum of the watermark column as ``bigint`` (None for an empty source)."""
    from pyspark.sql import functions as F

    df = source.read(spark)
    type_name = df.schema[column].dataType.simpleString()
    row = df.agg(F.max(version_expr(col(column), type_name)).alias("m")).first()
    return None if row is None or row["m"] is None else int(row["m"])


def read_watermark_changes(
    spark: SparkSession, source: Source, column: str, low: int | None, high: int
) -> DataFrame:
    """Rows whose watermark lies in ``(low, high]`` as upsert events.

    Rows changed with a watermark at or below an already applied ``high`` are missed by design
    (the column must only grow); deletes need :func:`key_set_deletes`.
    """
    from pyspark.sql import functions as F

    df = source.read(spark)
    type_name = df.schema[column].dataType.simpleString()
    ver = version_expr(col(column), type_name)
    cond = ver <= F.lit(int(high))
    if low is not None:
        cond = cond & (ver > F.lit(int(low)))
    return df.where(cond).select(
        *[col(c) for c in df.columns if c not in HIDDEN],
        ver.alias(TS),
        pad_ord_col(F.lit(0)).alias(ORD),
        F.lit(False).alias(DELETED),
    )


def key_set_deletes(
    source_keys: DataFrame, target_keys: DataFrame, keys: Sequence[str], ts: int
) -> DataFrame:
    """Delete events for keys live in the target but gone from the source (pure transform).

    The deletes get version ``(ts, 1)``: newer than any row at the same watermark.
    """
    from pyspark.sql import functions as F

    gone = target_keys.select(*keys).join(source_keys.select(*keys), list(keys), "left_anti")
    return gone.select(
        *[col(k) for k in keys],
        F.lit(int(ts)).cast("bigint").alias(TS),
        F.lit(pad_ord(1)).alias(ORD),
        F.lit(True).alias(DELETED),
    )


# ---------------------------------------------------------------- lake path by manifest diff

FILE_COL = "_lakeshift_file"


def _is_hidden(rel: str) -> bool:
    return any(part.startswith(("_", ".")) for part in rel.split("/"))


def list_lake_files(
    path: str, include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> dict[str, Record]:
    """The manifest of a lake path now: ``rel → Record(size, mtime)`` of every visible file.

    Files and folders whose name starts with ``_`` or ``.`` are left out (Spark ignores them
    too); ``include``/``exclude`` are globs on the relative path or the file name.

    Raises:
        SourceError: the path does not exist or cannot be listed.
    """
    from lakeshift.sources.fs import list_tree, resolve
    from lakeshift.sources.listing_diff import is_selected
    from lakeshift.sources.manifest import Record

    out: dict[str, Record] = {}
    for entry in list_tree(resolve(path)):
        if entry.is_dir or _is_hidden(entry.rel):
            continue
        if not is_selected(entry.rel, list(include), list(exclude)):
            continue
        out[entry.rel] = Record(entry.rel, entry.size, entry.mtime_ns, status="verified")
    return out


def manifest_diff(
    current: Mapping[str, Record], stored: Mapping[str, Record]
) -> tuple[list[str], list[str]]:
    """``(new or changed, gone)`` relative paths of ``current`` against the ``stored`` manifest.

    A file is unchanged when the stored manifest has it with the same size and modification
    time (the rule of ``lakeshift files``, whose diff this reuses).
    """
    from lakeshift.sources.fs import FileEntry
    from lakeshift.sources.listing_diff import diff

    entries = [FileEntry(r.rel, r.size, r.mtime_ns) for r in current.values()]
    out = diff(entries, stored, [], [], [])
    return sorted(f.rel for f in out.to_copy), sorted(out.gone)


def lake_file_uri(path: str, rel: str) -> str:
    """The path Spark reads for ``rel`` under the lake path ``path``."""
    return f"{path.rstrip('/')}/{rel}"


def read_lake_files(
    spark: SparkSession,
    path: str,
    rels: Sequence[str],
    *,
    fmt: str,
    options: Mapping[str, str],
    keys: Sequence[str],
) -> DataFrame:
    """Rows of the files ``rels`` under the lake path ``path``.

    Every row gets ``_lakeshift_file`` (its file's relative path). With ``keys`` the rows become
    upsert events of a change frame: version = (file modification time in microseconds, file
    path), so a newer file's row of a key wins; without keys they are plain rows to append.
    Partition folders (``col=value``) become columns (``basePath`` is the lake path).
    """
    from pyspark.sql import functions as F

    from lakeshift.sources.fs import resolve

    if not rels:
        raise SourceError(f"{path}: expected at least one changed file to read, found none")
    root = resolve(path).root.rstrip("/") + "/"
    reader = spark.read.format(fmt).option("basePath", path).options(**dict(options))
    df = reader.load([lake_file_uri(path, r) for r in rels])
    data = [c for c in df.columns if c not in HIDDEN and c != FILE_COL]
    # _metadata.file_path is a URI with %-escapes ('+' stays literal): decode it, cut the root
    decoded = F.url_decode(F.regexp_replace(F.col("_metadata.file_path"), r"\+", "%2B"))
    rel = F.expr(f"substr(__p, instr(__p, {sql_string(root)}) + {len(root)})")
    out = df.select(*[col(c) for c in data], decoded.alias("__p"), "_metadata")
    out = out.withColumn(FILE_COL, rel)
    if not keys:
        return out.select(*[col(c) for c in data], F.col(FILE_COL))
    return out.select(
        *[col(c) for c in data],
        F.unix_micros(F.col("_metadata.file_modification_time")).alias(TS),
        F.col(FILE_COL).alias(ORD),
        F.lit(False).alias(DELETED),
    )


def removed_file_events(
    target_rows: DataFrame,
    remaining: DataFrame | None,
    gone: Sequence[str],
    keys: Sequence[str],
) -> DataFrame:
    """Change events for the removal of lake files ``gone`` (keyed sync; pure transform).

    The lake path is the source of truth: a key no file holds any more is deleted. Candidates
    are the target's live rows written from a removed file (``_lakeshift_ord`` is the file that
    last wrote the row) or by the bulk copy (no version):

    * a candidate key that no remaining file holds becomes a delete;
    * a key whose row came from a removed file but that a remaining file still holds gets the
      row of the newest remaining file holding it (an older row shows through again);
    * bulk-copied rows whose key a remaining file holds are left alone.

    The events are versioned just above the row they replace (its time plus 1 µs; time 0 for
    bulk rows), so any file written after the removed one still wins over the removal, and a
    replay changes nothing. A row that shows through keeps its own file as ordinal, so it is
    attributed to that file when that one is removed in turn.

    Args:
        target_rows: live target rows with the key columns, ``_lakeshift_ts`` and
            ``_lakeshift_ord`` (other columns are kept as data columns of the deletes, as nulls).
        remaining: the rows of every remaining file as a change frame (:func:`read_lake_files`
            with keys), or None when no file is left.
        gone: relative paths of the removed files.
        keys: key columns.
    """
    from pyspark.sql import functions as F

    from lakeshift.sources.reduce import latest_per_key

    from_gone = F.col(ORD).isin(list(gone))
    cand = target_rows.where(F.col(ORD).isNull() | from_gone)
    data = [f for f in cand.schema.fields if f.name not in HIDDEN and f.name != FILE_COL]
    key_cols = [col(k) for k in keys]
    bump_ts = F.coalesce(F.col(TS) + F.lit(1), F.lit(0)).cast("bigint")
    bump_ord = F.concat(F.coalesce(F.col(ORD), F.lit("")), F.lit("/removed"))
    held = None if remaining is None else remaining.select(*key_cols).distinct()
    lost = cand if held is None else cand.join(held, list(keys), "left_anti")
    deletes = lost.select(
        *[
            col(f.name) if f.name in keys else F.lit(None).cast(f.dataType).alias(f.name)
            for f in data
        ],
        bump_ts.alias(TS),
        bump_ord.alias(ORD),
        F.lit(True).alias(DELETED),
    )
    if remaining is None:
        return deletes
    removed = cand.where(from_gone).select(*key_cols, bump_ts.alias("__ts"))
    shown = latest_per_key(remaining.join(removed.select(*key_cols), list(keys), "left_semi"), keys)
    shown = shown.join(removed, list(keys))
    shown = shown.withColumn(TS, F.greatest(F.col(TS), F.col("__ts"))).drop("__ts")
    return shown.unionByName(deletes, allowMissingColumns=True)


def sql_target_versions(
    spark: SparkSession,
    jdbc: tuple[str, Mapping[str, str]],
    table: str,
    keys: Sequence[str],
    gone: Sequence[str],
    *,
    quote: str = '"',
) -> DataFrame:
    """Keys and version of a SQL target's rows from the files ``gone`` or the bulk copy.

    Args:
        spark: the session.
        jdbc: JDBC URL and properties (user, password, driver).
        table: the parent table.
        keys: key columns.
        gone: removed files (their relative paths are the rows' ordinals).
        quote: the identifier quote of the dialect (a backtick for MySQL/MariaDB).
    """

    def q(name: str) -> str:
        return ".".join(quote + p.replace(quote, quote * 2) + quote for p in name.split(".", 1))

    def lit(text: str) -> str:  # MySQL string literals treat a backslash as an escape
        text = text.replace("\\", "\\\\") if quote == "`" else text
        return "'" + text.replace("'", "''") + "'"

    files = ", ".join(lit(g) for g in gone)
    cols = ", ".join(q(c) for c in [*keys, TS, ORD])
    query = f"SELECT {cols} FROM {q(table)} WHERE {q(ORD)} IS NULL OR {q(ORD)} IN ({files})"
    url, props = jdbc
    return (
        spark.read.format("jdbc").option("url", url).option("query", query).options(**props).load()
    )
