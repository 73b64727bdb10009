"""Run a table copy: list → plan → for each chunk not yet committed: read, size, write, record.

Idempotency: every chunk commits once. Delta chunks are appended with ``txnAppId`` (derived from
the run id and target) and ``txnVersion`` (chunk index + 1), so a chunk committed by a crashed
run is skipped by Delta itself; the ledger (see :mod:`lakeshift.copy.ledger`) lets reruns skip
committed chunks without touching the data. Parquet chunks are staged and moved into place
after an intent record, and rolled forward on rerun.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import signal
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lakeshift.config.macros import expand_macros, parse_run_date
from lakeshift.copy.ledger import META_DIR, Ledger
from lakeshift.copy.plan import (
    Chunk,
    CopyPlan,
    FileEntry,
    bucket_keys,
    bucket_offsets,
    data_bytes,
    default_run_id,
    initial_ratio,
    learned_ratio,
    output_file_count,
    output_partition_keys,
    partition_file_counts,
    path_partition_columns,
    plan_chunks,
    plan_fingerprint,
    rewrite_location,
    sample_evenly,
    select_files,
    split_bytes,
)
from lakeshift.copy.progress import NullProgress, Progress
from lakeshift.copy.spec import RewriteRule, TableCopy
from lakeshift.errors import SourceError, UsageError
from lakeshift.sinks import catalog
from lakeshift.sinks import delta as delta_sink
from lakeshift.sinks import lake as lake_sink
from lakeshift.sinks.hadoopfs import HadoopFS
from lakeshift.sources.factory import from_spec
from lakeshift.sources.lake import LakeSource, parquet_metadata_bytes
from lakeshift.spark import col

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

#: test hook: seconds to sleep after each committed chunk (makes kill timing deterministic)
SLEEP_ENV = "LAKESHIFT_COPY_TEST_SLEEP"
#: test hook: chunk id whose process kills itself after the write, before the ledger record
CRASH_ENV = "LAKESHIFT_COPY_TEST_CRASH_BEFORE_RECORD"
_MAX_KEYS = 5000  # distinct output partition values sized one by one within a chunk
_MAX_BUCKETS = 20000  # output files of one chunk routed exactly; beyond, plain hashing
_GLOB_CHARS = "*?[{"


@dataclass
class ChunkResult:
    """Metrics of one chunk (one row of the JSON summary)."""

    chunk: str
    index: int
    status: str  # committed | skipped | planned
    files_in: int
    bytes_in: int
    rows: int | None = None
    files_out: int | None = None
    bytes_out: int | None = None
    seconds: float = 0.0
    partitions: int = 0
    table_version: int | None = None


@dataclass
class CopyResult:
    """What a table copy did."""

    run_id: str
    source: str
    target: str
    format: str
    fingerprint: str
    dry_run: bool
    resumed: bool
    plan: CopyPlan
    chunks: list[ChunkResult] = field(default_factory=list)
    seconds: float = 0.0
    registered: str | None = None
    catalog: str | None = None

    @property
    def rows(self) -> int:
        """Rows written by this run (committed chunks only)."""
        return sum(c.rows or 0 for c in self.chunks if c.status == "committed")

    def count(self, status: str) -> int:
        """How many chunks have ``status``."""
        return sum(1 for c in self.chunks if c.status == status)

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary of the table."""
        return {
            "run_id": self.run_id,
            "source": self.source,
            "target": self.target,
            "format": self.format,
            "fingerprint": self.fingerprint,
            "dry_run": self.dry_run,
            "resumed": self.resumed,
            "registered": self.registered,
            "catalog": self.catalog,
            "seconds": round(self.seconds, 3),
            "totals": {
                "chunks": len(self.chunks),
                "committed": self.count("committed"),
                "skipped": self.count("skipped"),
                "files_in": sum(c.files_in for c in self.chunks),
                "bytes_in": sum(c.bytes_in for c in self.chunks),
                "rows_written": self.rows,
                "files_out": sum(c.files_out or 0 for c in self.chunks if c.status == "committed"),
                "bytes_out": sum(c.bytes_out or 0 for c in self.chunks if c.status == "committed"),
            },
            "chunks": [asdict(c) for c in self.chunks],
        }


def resolve_source(table: TableCopy) -> LakeSource:
    """The lake source of ``table`` (``format:path`` spec or bare path, ``source_format`` wins).

    Raises:
        UsageError: the source is not a lake table.
    """
    src = from_spec(table.source, table.source_options)
    if not isinstance(src, LakeSource) or src.format == "text":
        raise UsageError(
            f"copy source must be a lake table (parquet/orc/csv/json/delta), found {table.source!r}"
        )
    fmt = table.source_format or src.format
    return LakeSource(fmt, src.path.rstrip("/") or src.path, src.options, table.source_schema)


def _glob_free_root(path: str) -> str:
    cut = min((path.find(c) for c in _GLOB_CHARS if c in path), default=-1)
    if cut < 0:
        return path.rstrip("/")
    return path[:cut].rsplit("/", 1)[0]


def list_entries(
    spark: SparkSession, source: LakeSource, fs: HadoopFS
) -> tuple[str, list[FileEntry]]:
    """The qualified source root and every input file as a :class:`FileEntry`.

    Raises:
        SourceError: a listed file lies outside the source root.
    """
    base = fs.qualify(_glob_free_root(source.path))
    entries = []
    for uri, size in source.list_files(spark):
        if not uri.startswith(base + "/"):
            raise SourceError(
                f"{source.describe()}: file {uri} is not under the source root {base}"
            )
        entries.append(FileEntry(uri, uri[len(base) + 1 :], size))
    return base, entries


def build_plan(
    spark: SparkSession,
    table: TableCopy,
    run_date: dt.date,
    rules: list[RewriteRule],
    fs: HadoopFS,
) -> tuple[CopyPlan, LakeSource, str]:
    """List and select the input files and cut them into chunks.

    Returns:
        The plan, the (snapshot-pinned) source and the run id.

    Raises:
        SourceError: nothing to copy.
    """
    expand = lambda s: expand_macros(s, run_date=run_date)  # noqa: E731
    table = table.model_copy(
        update={
            "source": expand(table.source),
            "target": expand(table.target),
            "include": [expand(p) for p in table.include],
            "exclude": [expand(p) for p in table.exclude],
        }
    )
    source = resolve_source(table)
    if source.format == "delta":
        version = source.delta_version(spark)
        source = LakeSource("delta", source.path, {**source.options, "versionAsOf": str(version)})
    pairs = [(r.old, r.new) for r in rules] + [(r.old, r.new) for r in table.rewrite]
    target = rewrite_location(table.target.rstrip("/"), pairs)
    target = fs.qualify(target)
    base, entries = list_entries(spark, source, fs)
    selected = select_files(entries, table.include, table.exclude)
    if not selected:
        raise SourceError(
            f"{source.describe()}: no input files ({len(entries)} listed, none selected by "
            f"include={table.include} exclude={table.exclude})"
        )
    source_partitions = path_partition_columns(selected)
    partition_by = source_partitions if table.partition_by is None else list(table.partition_by)
    chunks = plan_chunks(selected, table.chunk_size)
    settings = {
        "source_format": source.format,
        "format": table.format,
        "partition_by": partition_by,
        "mode": table.mode,
        "source_schema": table.source_schema,
        "source_options": dict(sorted(source.options.items())),
    }
    run_id = table.run_id or default_run_id(source.describe(), target, run_date)
    plan = CopyPlan(
        source=source.describe(),
        target=target,
        base=base,
        chunks=chunks,
        source_partitions=source_partitions,
        partition_by=partition_by,
        fingerprint=plan_fingerprint(chunks, settings),
        settings=settings,
    )
    return plan, source, run_id


def _partition_key(partition_by: list[str]) -> Column:
    from pyspark.sql import functions as F

    return F.concat_ws(
        "\x01",
        *[
            F.coalesce(col(c).cast("string"), F.lit("__HIVE_DEFAULT_PARTITION__"))
            for c in partition_by
        ],
    )


def _salted(df: DataFrame, partition_by: list[str], counts: dict[str, int]) -> DataFrame:
    """Repartition so each output partition value ``k`` gets ``counts[k]`` files.

    Value ``k`` owns buckets ``offset_k .. offset_k + counts[k] - 1``; a row goes to bucket
    ``offset_k + pmod(xxhash64(row), counts[k])``, and each bucket is routed to its own shuffle
    partition through an INT key known to hash there (:func:`bucket_keys`), so no two buckets
    share a task and each becomes exactly one file.
    """
    from pyspark.sql import functions as F

    total = max(1, sum(counts.values()))
    if all(n == 1 for n in counts.values()):
        return df.repartition(total, *partition_by)
    key = _partition_key(partition_by)
    offsets = bucket_offsets(counts)
    offset_of = F.create_map(*[F.lit(x) for k, o in sorted(offsets.items()) for x in (k, o)])
    many = [F.lit(x) for k, n in sorted(counts.items()) if n > 1 for x in (k, n)]
    files_for = F.coalesce(F.element_at(F.create_map(*many), key), F.lit(1))
    row_hash = F.xxhash64(*[col(c) for c in df.columns])
    bucket = F.coalesce(
        F.element_at(offset_of, key) + F.pmod(row_hash, files_for),
        F.pmod(F.xxhash64(key), F.lit(total)),  # a value missing from the plan (never expected)
    )
    name = f"_ls_bucket_{uuid.uuid4().hex[:8]}"
    if total > _MAX_BUCKETS:
        return df.withColumn(name, bucket).repartition(total, name).drop(name)
    route = F.array(*[F.lit(k).cast("int") for k in bucket_keys(total)])
    target = F.element_at(route, (bucket + 1).cast("int"))
    return df.withColumn(name, target).repartition(total, name).drop(name)


def size_output(
    df: DataFrame, chunk: Chunk, partition_by: list[str], ratio: float, target_file_size: int
) -> tuple[DataFrame, int]:
    """Shape ``df`` so the write produces files of about ``target_file_size``.

    Unpartitioned: reads are already split at about one target file per task; ``coalesce`` merges
    the rest without a shuffle. Partitioned: a repartition by the partition columns plus a bounded
    salt gives each output partition folder ``ceil(bytes / target)`` files.

    Returns:
        The shaped DataFrame and the number of output files aimed at.
    """
    est = output_file_count(chunk.bytes, ratio, target_file_size)
    if not partition_by:
        if df.rdd.getNumPartitions() > est:
            df = df.coalesce(est)
        return df, est
    by_key = output_partition_keys(chunk.files, partition_by)
    if by_key is not None:
        counts = partition_file_counts(by_key, ratio, target_file_size)
    else:
        # output partitions come from the data: size them by row share (one column-pruned pass)
        key = _partition_key(partition_by)
        rows = df.groupBy(key.alias("k")).count().limit(_MAX_KEYS + 1).collect()
        total_rows = sum(int(r["count"]) for r in rows) or 1
        if len(rows) > _MAX_KEYS:
            counts = {str(r["k"]): 1 for r in rows}
        else:
            est_bytes = chunk.bytes * ratio
            counts = {
                str(r["k"]): output_file_count(
                    int(est_bytes * r["count"] / total_rows), 1.0, target_file_size
                )
                for r in rows
            }
    return _salted(df, partition_by, counts), sum(counts.values())


def _app_id(run_id: str, target: str) -> str:
    digest = hashlib.sha1(f"{run_id}\n{target}".encode(), usedforsecurity=False).hexdigest()
    return f"lakeshift-copy-{digest[:16]}"


def _plan_record(plan: CopyPlan, run_id: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "fingerprint": plan.fingerprint,
        "source": plan.source,
        "target": plan.target,
        "settings": plan.settings,
        "chunks": [
            {"chunk": c.id, "files": len(c.files), "bytes": c.bytes, "first": c.files[0].rel}
            for c in plan.chunks
        ],
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


class _ReadTuning:
    """Set file-split settings for the chunk reads and restore them afterwards."""

    KEYS = (
        "spark.sql.files.maxPartitionBytes",
        "spark.sql.files.openCostInBytes",
        "spark.sql.sources.parallelPartitionDiscovery.parallelism",
    )

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.saved = {k: spark.conf.get(k, None) for k in self.KEYS}
        # chunks name thousands of files: list them with a few tasks, not one task per file
        cores = spark.sparkContext.defaultParallelism
        spark.conf.set(self.KEYS[2], str(max(2, min(cores, 64))))

    def apply(self, split: int) -> None:
        self.spark.conf.set(self.KEYS[0], str(split))
        self.spark.conf.set(self.KEYS[1], str(max(1024, min(4 << 20, split // 128))))

    def restore(self) -> None:
        for key, value in self.saved.items():
            if value is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, value)


def copy_table(
    spark: SparkSession,
    table: TableCopy,
    *,
    run_date: dt.date | None = None,
    rewrite: list[RewriteRule] | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy one table chunk by chunk, resuming a previous run with the same run id.

    Args:
        spark: the session.
        table: what to copy.
        run_date: the date for ``${ds}`` macros and the default run id (default: today, UTC).
        rewrite: location rewrite rules applied before the table's own.
        dry_run: plan only; write nothing.
        progress: progress display (default: none).

    Returns:
        The per-chunk result; ``status`` is ``committed``, ``skipped`` (committed by an earlier
        run) or ``planned`` (dry run).

    Raises:
        PlanChangedError: the run id was used for a different plan.
        SourceError: the source cannot be listed or read, or nothing is selected.
        SinkError: the target cannot be written.
    """
    tuning = _ReadTuning(spark)
    try:
        return _copy_table(spark, table, run_date, rewrite, dry_run, progress, tuning)
    finally:
        tuning.restore()


def _copy_table(  # noqa: PLR0917
    spark: SparkSession,
    table: TableCopy,
    run_date: dt.date | None,
    rewrite: list[RewriteRule] | None,
    dry_run: bool,
    progress: Progress | None,
    tuning: _ReadTuning,
) -> CopyResult:
    started = time.monotonic()
    day = run_date or parse_run_date(None)
    fs = HadoopFS(spark)
    plan, source, run_id = build_plan(spark, table, day, list(rewrite or []), fs)
    log.info(
        "copy %s: planned %d chunks over %d files in %.1fs (run %s)",
        plan.target,
        len(plan.chunks),
        plan.files,
        time.monotonic() - started,
        run_id,
    )
    ledger = Ledger(fs, plan.target, run_id)
    result = CopyResult(
        run_id=run_id,
        source=plan.source,
        target=plan.target,
        format=table.format,
        fingerprint=plan.fingerprint,
        dry_run=dry_run,
        resumed=False,
        plan=plan,
    )
    if dry_run:
        stored = ledger.load_plan()
        done = ledger.entries() if stored and stored.get("fingerprint") == plan.fingerprint else {}
        for c in plan.chunks:
            status = "skipped" if done.get(c.id, {}).get("status") == "committed" else "planned"
            result.chunks.append(
                ChunkResult(
                    c.id, c.index, status, len(c.files), c.bytes, partitions=len(c.partitions)
                )
            )
        result.seconds = time.monotonic() - started
        return result

    result.resumed = ledger.check_or_save_plan(_plan_record(plan, run_id))
    entries = ledger.entries()
    if table.format == "parquet":
        _recover_parquet(fs, ledger, plan, entries)
        if table.mode == "overwrite" and not entries:
            lake_sink.clear_target(fs, plan.target, keep=META_DIR)
    schema = _chunk_schema(spark, source, plan)
    # output/input ratio on data bytes (input less per-file Parquet footers), learned as we go
    ratio = table.compression_ratio or initial_ratio(source.format)
    overhead = 0
    if source.format in ("parquet", "delta"):
        sample = sample_evenly([(f.path, f.size) for c in plan.chunks for f in c.files], 16)
        overhead = parquet_metadata_bytes(spark, sample) or 0
    learned = any(e.get("bytes_out") for e in entries.values())
    if table.compression_ratio is None and not learned:
        ratio = _calibrate(spark, source, plan, schema, ledger, table, ratio, overhead) or ratio
    log.info(
        "copy %s: ledger, schema and footers ready at %.1fs (%d chunks done, metadata %d B/file)",
        plan.target,
        time.monotonic() - started,
        len(entries),
        overhead,
    )
    total_in = total_out = 0
    bar = progress or NullProgress()
    bar.start(f"{plan.source} -> {plan.target}", len(plan.chunks), plan.bytes)
    sleep = float(os.environ.get(SLEEP_ENV, "0") or 0)
    try:
        for chunk in plan.chunks:
            record = entries.get(chunk.id)
            if record is not None and record.get("status") == "committed":
                res = ChunkResult(
                    chunk.id,
                    chunk.index,
                    "skipped",
                    len(chunk.files),
                    chunk.bytes,
                    rows=record.get("rows"),
                    files_out=record.get("files_out"),
                    bytes_out=record.get("bytes_out"),
                    seconds=0.0,
                    partitions=len(chunk.partitions),
                    table_version=record.get("table_version"),
                )
                if record.get("bytes_out"):
                    total_in += data_bytes(chunk.bytes, len(chunk.files), overhead)
                    total_out += int(record["bytes_out"])
                    ratio = learned_ratio(total_in, total_out, ratio)
                result.chunks.append(res)
                bar.chunk(chunk.id, "skipped", res.rows, chunk.bytes, 0.0)
                continue
            # the ratio on the chunk's file bytes, footers included (what Spark's splits count)
            eff = ratio * data_bytes(chunk.bytes, len(chunk.files), overhead) / chunk.bytes
            tuning.apply(split_bytes(table.target_file_size, eff))
            res = _copy_chunk(spark, table, source, plan, chunk, schema, eff, ledger, run_id)
            result.chunks.append(res)
            if res.bytes_out:
                total_in += data_bytes(chunk.bytes, len(chunk.files), overhead)
                total_out += res.bytes_out
                ratio = learned_ratio(total_in, total_out, ratio)
            bar.chunk(chunk.id, res.status, res.rows, chunk.bytes, res.seconds)
            if sleep:
                time.sleep(sleep)
    finally:
        bar.close()
    if table.format == "parquet":
        fs.delete(ledger.staging_root)  # every chunk's staging folder is gone already
    if table.register_table and not dry_run:
        catalog.register_table(spark, table.register_table, plan.target, table.format)
        result.registered = table.register_table
        result.catalog = catalog.describe_catalog(spark)
    result.seconds = time.monotonic() - started
    return result


def _chunk_schema(spark: SparkSession, source: LakeSource, plan: CopyPlan) -> StructType | None:
    """One schema for every chunk, inferred once (Delta: none needed).

    JSON is inferred over every selected file; the other formats over an even sample of files
    (Parquet/ORC read one footer, CSV one header; partition types come from the sampled paths).
    """
    if source.format == "delta":
        return None
    files = [f.path for c in plan.chunks for f in c.files]
    if source.format != "json":
        files = sample_evenly(files, 64)
    return source.read_chunk(spark, plan.base, files, None).schema


def _calibrate(  # noqa: PLR0917
    spark: SparkSession,
    source: LakeSource,
    plan: CopyPlan,
    schema: StructType | None,
    ledger: Ledger,
    table: TableCopy,
    guess: float,
    overhead: int,
) -> float | None:
    """Learn the output/input ratio before the first chunk by writing a small sample.

    An evenly spread sample of about two target files' worth of input (at most 64 MiB) is written
    as one Parquet file to a hidden probe folder, measured and deleted. Skipped when the copy is
    smaller than four such samples (the cost would not pay off; later chunks learn anyway).
    """
    files = [f for c in plan.chunks for f in c.files]
    budget = min(64 << 20, int(2 * table.target_file_size / max(guess, 0.05)))
    if plan.bytes < 4 * budget:
        return None
    sample = sample_evenly(files, max(1, math.ceil(budget * len(files) / plan.bytes)))
    probe = f"{ledger.root}/probe-{uuid.uuid4().hex[:8]}"
    df = source.read_chunk(spark, plan.base, [f.path for f in sample], schema)
    df = df.drop(*[c for c in plan.partition_by if c in df.columns]).coalesce(1)
    try:
        lake_sink.write_staged(df, probe, [])
        written = sum(size for _, size in lake_sink.staged_files(ledger.fs, probe))
    finally:
        ledger.fs.delete(probe)
    data_in = data_bytes(sum(f.size for f in sample), len(sample), overhead)
    ratio = learned_ratio(data_in, written, guess)
    log.info("copy %s: sampled %d files: output/input ratio %.3f", plan.target, len(sample), ratio)
    return ratio


def _recover_parquet(
    fs: HadoopFS, ledger: Ledger, plan: CopyPlan, entries: dict[str, dict[str, Any]]
) -> None:
    """Roll forward chunks caught mid-move; drop staging of uncommitted chunks."""
    for chunk_id, record in sorted(entries.items()):
        if record.get("status") == "moving":
            lake_sink.promote(fs, ledger.staging(chunk_id), plan.target, list(record["files"]))
            done = {**record, "status": "committed", "recovered": True}
            done.pop("files", None)
            ledger.record(done)
            entries[chunk_id] = done
            log.warning("copy %s: chunk %s rolled forward after a crash", plan.target, chunk_id)
    fs.delete(ledger.staging_root)


def _copy_chunk(  # noqa: PLR0917
    spark: SparkSession,
    table: TableCopy,
    source: LakeSource,
    plan: CopyPlan,
    chunk: Chunk,
    schema: StructType | None,
    ratio: float,
    ledger: Ledger,
    run_id: str,
) -> ChunkResult:
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    t0 = time.monotonic()
    df = source.read_chunk(spark, plan.base, [f.path for f in chunk.files], schema)
    if table.format == "parquet":
        obs = Observation(f"lakeshift_copy_{uuid.uuid4().hex[:8]}")
        df = df.observe(obs, F.count(F.lit(1)).alias("rows"))
    df, _ = size_output(df, chunk, plan.partition_by, ratio, table.target_file_size)
    entry: dict[str, Any] = {
        "chunk": chunk.id,
        "index": chunk.index,
        "run_id": run_id,
        "files_in": len(chunk.files),
        "bytes_in": chunk.bytes,
        "format": table.format,
    }
    if table.format == "delta":
        commit = delta_sink.write_chunk(
            df,
            plan.target,
            app_id=_app_id(run_id, plan.target),
            txn_version=chunk.index + 1,
            tag=f"lakeshift:{run_id}:{chunk.id}",
            partition_by=plan.partition_by,
            overwrite=table.mode == "overwrite" and chunk.index == 0,
        )
        entry.update(
            rows=commit.rows,
            bytes_out=commit.bytes,
            files_out=commit.files,
            table_version=commit.table_version,
            recovered=not commit.committed,
        )
    else:
        staging = ledger.staging(chunk.id)
        lake_sink.write_staged(df, staging, plan.partition_by)
        staged = lake_sink.staged_files(fs := ledger.fs, staging)
        rows = obs.get.get("rows")
        entry.update(
            rows=int(rows) if rows is not None else None,
            bytes_out=sum(s for _, s in staged),
            files_out=len(staged),
            table_version=None,
        )
        ledger.record_moving({**entry, "status": "moving", "files": [r for r, _ in staged]})
        lake_sink.promote(fs, staging, plan.target, [r for r, _ in staged])
        fs.delete(staging)
    if os.environ.get(CRASH_ENV) == chunk.id:
        os.kill(os.getpid(), signal.SIGKILL)  # test hook: the data is in, the record is not
    entry["seconds"] = round(time.monotonic() - t0, 3)
    entry["status"] = "committed"
    entry["committed_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    ledger.record(entry)
    return ChunkResult(
        chunk.id,
        chunk.index,
        "committed",
        len(chunk.files),
        chunk.bytes,
        rows=entry["rows"],
        files_out=entry["files_out"],
        bytes_out=entry["bytes_out"],
        seconds=entry["seconds"],
        partitions=len(chunk.partitions),
        table_version=entry["table_version"],
    )
