"""Driver side of ``lakeshift files``: list once, diff with the manifest, plan, copy, report.

What a run lists:

* the source tree, once (one recursive listing; the only way to see new and changed files);
* the target tree only with ``--delete`` (to find files absent from the source);
* the state folder (manifest versions and journals).

Files the manifest holds as verified with the source's current size and mtime are not touched
at all, on either side. Every other selected file is stat'ed on the source (and, for adopt /
``--update`` candidates, on the target) by the task that copies it.

Example:
    >>> cfg = FilesConfig(src="/data/in", dst="/data/out", local=True)  # doctest: +SKIP
    >>> run_files(cfg).failed  # doctest: +SKIP
    0
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lakeshift.errors import JobFailedError, UsageError
from lakeshift.files import manifest as mf
from lakeshift.files import worker
from lakeshift.files.config import STATE_DIR, FilesConfig
from lakeshift.files.copier import CopyContext, run_task
from lakeshift.files.plan import (
    ConcatUnit,
    PlannedFile,
    Unit,
    diff,
    is_blacklisted,
    is_selected,
    plan_concat,
    plan_tasks,
    release_concatenated,
)
from lakeshift.files.progress import Progress, journal_totals
from lakeshift.files.throttle import per_task_rate
from lakeshift.log import redact
from lakeshift.sinks import fs as sink_fs
from lakeshift.sources import fs as source_fs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeshift.files.plan import Task

log = logging.getLogger(__name__)

MAX_LISTED = 1000  # most failed / deleted paths named in a summary


@dataclass
class Summary:
    """What one run did. ``failed_files`` and ``deleted_files`` hold up to 1000 entries.

    ``mode`` is the executor used (``processes``, ``threads`` or ``spark``); ``phases`` holds
    seconds per phase of the run (``list``, ``plan``, ``manifest``, ``copy``, ``finish``) plus
    ``task_sum`` and ``task_max`` (the copy tasks' own wall times): ``copy`` minus
    ``task_sum / slots`` is what scheduling the tasks cost.
    """

    run_id: str
    src: str
    dst: str
    state: str
    mode: str
    checksum: str
    verify: str
    dry_run: bool
    listed_files: int = 0
    listed_bytes: int = 0
    excluded: int = 0
    blacklisted: int = 0
    unchanged: int = 0
    planned_files: int = 0
    planned_bytes: int = 0
    tasks: int = 0
    copied: int = 0
    copied_bytes: int = 0
    adopted: int = 0
    concatenated: int = 0
    concat_outputs: int = 0
    failed: int = 0
    deleted: int = 0
    empty_dirs: int = 0
    seconds: float = 0.0
    mb_per_s: float = 0.0
    files_per_s: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    failed_files: list[dict[str, str]] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    blacklisted_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def report(self) -> str:
        """A short human-readable report."""
        verb = "would copy" if self.dry_run else "copied"
        lines = [
            f"lakeshift files {self.src} -> {self.dst} ({self.mode}, run {self.run_id})",
            f"  listed {self.listed_files} files ({self.listed_bytes} B); excluded "
            f"{self.excluded}, blacklisted {self.blacklisted}, unchanged {self.unchanged}",
            f"  {verb} {self.copied if not self.dry_run else self.planned_files} files "
            f"({self.copied_bytes if not self.dry_run else self.planned_bytes} B) in "
            f"{self.tasks} tasks; adopted {self.adopted}; concatenated {self.concatenated} "
            f"into {self.concat_outputs} outputs; failed {self.failed}; "
            f"{'would delete' if self.dry_run else 'deleted'} {self.deleted}; "
            f"empty dirs {self.empty_dirs}",
            f"  {self.seconds:.1f}s, {self.mb_per_s:.1f} MiB/s, {self.files_per_s:.0f} files/s",
        ]
        if self.phases:
            lines.append("  phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.phases.items()))
        lines += [f"  FAILED {f['path']}: {f['reason']}" for f in self.failed_files[:50]]
        return "\n".join(lines)


def new_run_id() -> str:
    """A sortable unique run id."""
    now = dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def default_state(dst: str) -> str:
    """``<dst>/_lakeshift_files``."""
    return f"{dst.rstrip('/')}/{STATE_DIR}"


def is_local_master(master: str | None) -> bool:
    """True for a master that runs everything on this machine, or for no master at all.

    Local masters: ``local``, ``local[N]``, ``local[*]``, ``local[N,F]``, ``local-cluster[...]``.

    Example:
        >>> [is_local_master(m) for m in ("local[2]", "spark://h:7077", "yarn", None)]
        [True, False, False, True]
    """
    return master is None or master.strip().lower().startswith("local")


def resolve_executor(cfg: FilesConfig, master: str | None) -> str:
    """``processes``, ``threads`` or ``spark``: who runs the copy tasks of ``cfg``.

    ``local=True`` or ``executor="threads"`` gives threads; ``executor="spark"`` gives Spark,
    ``executor="processes"`` worker processes; ``auto`` gives processes for a local Spark
    master ``master`` (see :func:`is_local_master`) and Spark otherwise.

    Example:
        >>> resolve_executor(FilesConfig(src="/a", dst="/b"), "yarn")
        'spark'
    """
    if cfg.local or cfg.executor == "threads":
        return "threads"
    if cfg.executor in ("spark", "processes"):
        return cfg.executor
    return "processes" if is_local_master(master) else "spark"


def _slots(cfg: FilesConfig, spark: SparkSession | None) -> int:
    if spark is None:
        return cfg.workers or max(1, os.cpu_count() or 1)
    return max(1, int(spark.sparkContext.defaultParallelism))


def _run_tasks(
    cfg: FilesConfig,
    ctx: CopyContext,
    tasks: list[Task],
    slots: int,
    spark: SparkSession | None,
    *,
    pool: worker.Pool | None = None,
) -> list[dict[str, int]]:
    if pool is not None:
        return pool.run(ctx, tasks)
    if spark is None and resolve_executor(cfg, None) == "processes":
        return worker.run_tasks(ctx, tasks, slots)
    if spark is None:
        with ThreadPoolExecutor(max_workers=slots) as threads:
            return list(threads.map(lambda t: run_task(ctx, t), tasks))
    sc = spark.sparkContext
    sc.setJobDescription(f"lakeshift files {ctx.run_id}: {len(tasks)} tasks")
    # largest tasks first (plan order): the scheduler hands out partitions in index order
    rdd = sc.parallelize(tasks, len(tasks))  # exactly one task per partition
    # one small dict of counts per task comes back (file records stay in the journals)
    return rdd.mapPartitions(lambda it: [run_task(ctx, t) for t in it]).collect()


def _delete_absent(
    cfg: FilesConfig, dst: source_fs.Location, source_files: set[str], blacklist: list[str]
) -> list[str]:
    reserved = (STATE_DIR, sink_fs.STAGING_DIR)
    root = source_fs.stat(dst, "")
    if root is None or not root.is_dir:
        return []  # nothing at the target yet
    doomed = [
        e.rel
        for e in source_fs.list_tree(dst, reserved=reserved)
        if not e.is_dir
        and e.rel not in source_files
        and is_selected(e.rel, cfg.include, cfg.exclude)
        and not is_blacklisted(e.rel, blacklist)
    ]
    if not cfg.dry_run:
        for rel in doomed:
            sink_fs.remove(dst, dst.path(rel))
    return sorted(doomed)


def run_files(cfg: FilesConfig, spark: SparkSession | None = None) -> Summary:
    """Run one file copy (see the module docstring) and return its summary.

    Args:
        cfg: the run's settings (paths already macro-expanded).
        spark: the session whose executors may copy; :func:`resolve_executor` decides between
            its executors and worker processes or threads on this machine.

    Raises:
        SourceError: the source cannot be listed.
        UsageError: ``executor="spark"`` without a Spark session.
        JobFailedError: the Spark job failed as a whole.
    """
    started = time.monotonic()
    master = spark.sparkContext.master if spark is not None else None
    mode = resolve_executor(cfg, master)
    if mode == "spark" and spark is None:
        raise UsageError("files: executor 'spark' needs a Spark session, found none")
    if mode in ("processes", "threads"):
        spark = None
    log.debug("files: executor %s (requested %s, master %s)", mode, cfg.executor, master)
    if mode != "processes" or cfg.dry_run:
        return _run(cfg, spark, mode, None, started)
    # workers start now: their interpreter start and imports overlap listing and planning
    with worker.Pool(_slots(cfg, None)) as pool:
        return _run(cfg, None, mode, pool, started)


def _run(
    cfg: FilesConfig,
    spark: SparkSession | None,
    mode: str,
    pool: worker.Pool | None,
    started: float,
) -> Summary:
    mark = started
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        nonlocal mark
        now = time.monotonic()
        phases[name] = round(now - mark, 3)
        mark = now

    s3 = source_fs.S3Options(cfg.s3_endpoint, cfg.s3_region)
    state_uri = cfg.state or default_state(cfg.dst)
    src = source_fs.resolve(cfg.src, s3)
    dst = source_fs.resolve(cfg.dst, s3)
    state = source_fs.resolve(state_uri, s3)
    run_id = new_run_id()
    summary = Summary(
        run_id,
        redact(cfg.src),
        redact(cfg.dst),
        redact(state_uri),
        mode,
        cfg.checksum,
        cfg.verify,
        cfg.dry_run,
        phases=phases,
    )

    root = source_fs.stat(src, "")
    if root is None or not root.is_dir:
        found = "nothing" if root is None else "a file"
        raise UsageError(f"files: expected SRC to be an existing folder, found {found}: {cfg.src}")
    if not cfg.dry_run:  # staging files and unfinished uploads of killed runs
        sink_fs.remove_dir(dst, dst.path(sink_fs.STAGING_DIR))
        sink_fs.abort_stale_uploads(dst)
    loaded = mf.load(state)
    written = {r.output for r in loaded.records.values() if r.output}  # concat outputs so far
    entries = list(source_fs.list_tree(src, reserved=(STATE_DIR, sink_fs.STAGING_DIR)))
    phase("list")
    files = [e for e in entries if not e.is_dir]
    summary.listed_files = len(files)
    summary.listed_bytes = sum(e.size for e in files)
    d = diff(entries, loaded.records, cfg.include, cfg.exclude, cfg.blacklist, adopt_all=cfg.update)
    concat = plan_concat(d, loaded.records, cfg.concat, cfg.concat_bytes) if cfg.concat else None
    release_concatenated(d, loaded.records, concat.inputs if concat else set())
    units: list[Unit] = [*d.to_copy, *(concat.units if concat else [])]
    summary.excluded = d.excluded
    summary.blacklisted = len(d.blacklisted)
    summary.blacklisted_files = d.blacklisted[:MAX_LISTED]
    summary.unchanged = len(d.unchanged) - (concat.rewritten_unchanged if concat else 0)
    planned = [f for u in units for f in _inputs(u)]
    summary.planned_files = len(planned)
    summary.planned_bytes = sum(f.size for f in planned)
    slots = _slots(cfg, spark)
    tasks = plan_tasks(units, slots, cfg.task_bytes, cfg.task_files, cfg.big_file)
    keep = d.source_files | (concat.outputs if concat else set())
    summary.tasks = len(tasks)
    summary.empty_dirs = len(d.empty_dirs)
    phase("plan")

    if cfg.dry_run:
        if cfg.delete:
            doomed = _delete_absent(cfg, dst, keep, cfg.blacklist)
            summary.deleted = len(doomed)
            summary.deleted_files = doomed[:MAX_LISTED]
        return _finish(summary, cfg, started)

    # record the plan first: a killed run leaves its files "queued" (adopt candidates next time)
    records = loaded.records
    for rel in d.gone:
        records.pop(rel, None)
    now = time.time_ns()
    for u in units:
        for f in _inputs(u):
            records[f.rel] = mf.Record(
                f.rel, f.size, f.mtime_ns, algo=cfg.checksum, run_id=run_id, updated_ns=now
            )
            records[f.rel].output = u.rel if isinstance(u, ConcatUnit) else ""
    mf.save(state, records, loaded)
    phase("manifest")

    ctx = CopyContext(
        src=cfg.src,
        dst=cfg.dst,
        state=state_uri,
        run_id=run_id,
        checksum=cfg.checksum,
        verify=cfg.verify,
        update=cfg.update,
        preserve=cfg.preserve,
        retries=cfg.retries,
        chunk_bytes=cfg.chunk_bytes,
        split_bytes=cfg.split_bytes,
        part_bytes=cfg.part_bytes,
        threads=cfg.threads,
        rate=per_task_rate(cfg.bandwidth_mb * (1 << 20) if cfg.bandwidth_mb else None, slots),
        s3_endpoint=cfg.s3_endpoint,
        s3_region=cfg.s3_region,
    )
    if tasks:
        counts = _execute(cfg, ctx, tasks, slots, spark, state=state, summary=summary, pool=pool)
        task_s = [c.get("task_ms", 0) / 1000 for c in counts]
        phase("copy")
        phases["task_sum"] = round(sum(task_s), 3)
        phases["task_max"] = round(max(task_s, default=0.0), 3)

    final = mf.load(state)
    mf.save(state, final.records, final)
    outputs: set[str] = set()  # concatenation outputs written by this run
    for rec in final.records.values():
        if rec.run_id != run_id:
            continue
        if rec.action == "copied":
            summary.copied += 1
            summary.copied_bytes += rec.size
        elif rec.action == "adopted":
            summary.adopted += 1
        elif rec.action == "concatenated":
            summary.concatenated += 1
            summary.copied_bytes += rec.size
            outputs.add(rec.output)
        elif rec.status == "failed":
            summary.failed += 1
            if len(summary.failed_files) < MAX_LISTED:
                summary.failed_files.append({"path": rec.rel, "reason": rec.reason})
    summary.failed_files.sort(key=lambda x: x["path"])
    summary.concat_outputs = len(outputs)
    lost = [
        f.rel
        for t in tasks
        for u in t.files
        for f in _inputs(u)
        if final.records[f.rel].status == "queued"
    ]
    for rel in lost:  # a task ended without journaling a file (should not happen)
        summary.failed += 1
        summary.failed_files.append({"path": rel, "reason": "no result recorded"})

    for rel in d.empty_dirs:
        sink_fs.make_dir(dst, rel)
    for rel in sorted(written - keep):  # concatenation outputs of earlier runs not produced now
        sink_fs.remove(dst, dst.path(rel))
    if cfg.delete:
        doomed = _delete_absent(cfg, dst, keep, cfg.blacklist)
        summary.deleted = len(doomed)
        summary.deleted_files = doomed[:MAX_LISTED]
    sink_fs.remove_dir(dst, dst.path(sink_fs.STAGING_DIR))
    phase("finish")
    return _finish(summary, cfg, started)


def _execute(
    cfg: FilesConfig,
    ctx: CopyContext,
    tasks: list[Task],
    slots: int,
    spark: SparkSession | None,
    *,
    state: source_fs.Location,
    summary: Summary,
    pool: worker.Pool | None = None,
) -> list[dict[str, int]]:
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["counts"] = _run_tasks(cfg, ctx, tasks, slots, spark, pool=pool)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=work, name="lakeshift-files", daemon=True)
    thread.start()
    progress = Progress(summary.planned_files, summary.planned_bytes, enabled=cfg.progress)
    progress.follow(lambda: journal_totals(state, ctx.run_id), done)
    thread.join()
    if "error" in outcome:
        exc = outcome["error"]
        msg = " ".join(str(exc).split())[:500]
        raise JobFailedError(f"files copy {ctx.run_id}: tasks failed: {msg}") from exc
    counts: list[dict[str, int]] = outcome["counts"]
    return counts


def _inputs(unit: Unit) -> tuple[PlannedFile, ...]:
    return unit.inputs if isinstance(unit, ConcatUnit) else (unit,)


def _finish(summary: Summary, cfg: FilesConfig, started: float) -> Summary:
    summary.seconds = round(time.monotonic() - started, 3)
    if summary.seconds > 0:
        summary.mb_per_s = round(summary.copied_bytes / (1 << 20) / summary.seconds, 2)
        done = summary.copied + summary.adopted + summary.concatenated
        summary.files_per_s = round(done / summary.seconds, 1)
    if cfg.json_path:
        with open(cfg.json_path, "w", encoding="utf-8") as fh:
            json.dump(summary.to_dict(), fh, indent=2)
    return summary
