"""Driver side of ``lakeshift files``: list once, diff with the manifest, plan, copy, report.

Before anything is read or written, SRC and DST are checked on their resolved paths
(:func:`lakeshift.sources.fs.check_locations`). What a run lists:

* the source tree, once (one recursive listing; the only way to see new and changed files);
* the target tree with ``--update`` (the target decides what is copied), ``--delete`` (to find
  files and folders absent from the source) and ``--verify`` (to compare the mirror);
* the state folder (manifest versions and journals).

Files the manifest holds as verified with the source's current size, mtime and ctime (and,
with ``--update``, the target's current stamp) are not touched at all, on either side. Every
other selected file is stat'ed on the source (and, for adopt candidates, on the target) by
the task that copies it. ``--verify`` runs the same tasks to compare instead of copying and
writes nothing.

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
from lakeshift.files import worker
from lakeshift.files.config import STATE_DIR, FilesConfig
from lakeshift.files.copier import CopyContext, run_task
from lakeshift.files.manifest import save as save_manifest
from lakeshift.files.plan import (
    ConcatUnit,
    Unit,
    VerifyPlan,
    delete_plan,
    plan_concat,
    plan_tasks,
    release_concatenated,
    verify_plan,
)
from lakeshift.files.progress import Progress, journal_totals
from lakeshift.files.throttle import RequestBudget, limiter_path, remove_limiter, shared_limiter
from lakeshift.log import redact
from lakeshift.sinks import fs as sink_fs
from lakeshift.sources import fs as source_fs
from lakeshift.sources import manifest as mf
from lakeshift.sources.aws import DriverAws
from lakeshift.sources.listing_diff import Diff, PlannedFile, diff

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeshift.files.plan import Task

log = logging.getLogger(__name__)

MAX_LISTED = 1000  # most failed / deleted paths named in a summary


@dataclass
class Summary:
    """What one run did. Lists of names hold up to 1000 entries (the counts are exact).

    ``mode`` is the executor used (``processes``, ``threads`` or ``spark``); ``phases`` holds
    seconds per phase of the run (``list``, ``plan``, ``manifest``, ``copy``, ``finish``) plus
    ``task_sum`` and ``task_max`` (the copy tasks' own wall times): ``copy`` minus
    ``task_sum / slots`` is what scheduling the tasks cost. ``skipped`` lists entries the
    special-file policy did not copy, with the reason (FIFOs, sockets, devices, links under
    ``--symlinks skip``...); ``failed_files`` every file that failed, with the reason.
    ``kind`` is ``copy``, ``verify`` or ``repair`` (``--verify [--repair]``); a verification
    fills ``missing``, ``extra`` and ``differing`` (counts) and their ``*_files`` lists.
    ``warnings`` says, once each, what ``--preserve`` could not keep (a store that holds no
    such attribute; an owner the run may not set, with the number of files).
    """

    run_id: str
    src: str
    dst: str
    state: str
    mode: str
    checksum: str
    verify: str
    dry_run: bool
    kind: str = "copy"
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
    checked: int = 0
    concatenated: int = 0
    concat_outputs: int = 0
    failed: int = 0
    deleted: int = 0
    empty_dirs: int = 0
    missing: int = 0
    extra: int = 0
    differing: int = 0
    compared: int = 0
    seconds: float = 0.0
    mb_per_s: float = 0.0
    files_per_s: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)
    failed_files: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)
    deleted_dirs: list[str] = field(default_factory=list)
    blacklisted_files: list[str] = field(default_factory=list)
    missing_files: list[str] = field(default_factory=list)
    extra_files: list[str] = field(default_factory=list)
    differing_files: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    def exit_code(self) -> int:
        """0 ok; 1 when a file failed, or a verification found the mirror differs."""
        if self.failed:
            return 1
        if self.kind == "verify" and (self.missing or self.extra or self.differing):
            return 1
        if self.kind == "repair" and self.extra > self.deleted + len(self.deleted_dirs):
            return 1
        return 0

    def report(self) -> str:
        """A short human-readable report."""
        if self.kind != "copy":
            return self._verify_report()
        verb = "would copy" if self.dry_run else "copied"
        gone = "would delete" if self.dry_run else "deleted"
        lines = [
            f"lakeshift files {self.src} -> {self.dst} ({self.mode}, run {self.run_id})",
            f"  listed {self.listed_files} files ({self.listed_bytes} B); excluded "
            f"{self.excluded}, blacklisted {self.blacklisted}, skipped {len(self.skipped)}, "
            f"unchanged {self.unchanged}",
            f"  {verb} {self.copied if not self.dry_run else self.planned_files} files "
            f"({self.copied_bytes if not self.dry_run else self.planned_bytes} B) in "
            f"{self.tasks} tasks; adopted {self.adopted}; checked {self.checked}; "
            f"concatenated {self.concatenated} into {self.concat_outputs} outputs; "
            f"failed {self.failed}; {gone} {self.deleted} files and "
            f"{len(self.deleted_dirs)} folders; empty dirs {self.empty_dirs}",
            f"  {self.seconds:.1f}s, {self.mb_per_s:.1f} MiB/s, {self.files_per_s:.0f} files/s",
        ]
        if self.phases:
            lines.append("  phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.phases.items()))
        lines += [f"  WARNING {w}" for w in self.warnings[:50]]
        lines += [f"  FAILED {f['path']}: {f['reason']}" for f in self.failed_files[:50]]
        lines += [f"  SKIPPED {f['path']}: {f['reason']}" for f in self.skipped[:50]]
        big = gone.upper()
        lines += [f"  {big} {p}" for p in self.deleted_files[:50]]
        lines += [f"  {big} {p}/" for p in self.deleted_dirs[:50]]
        return "\n".join(lines)

    def _verify_report(self) -> str:
        what = "--verify --repair" if self.kind == "repair" else "--verify"
        lines = [
            f"lakeshift files {what} {self.src} -> {self.dst} ({self.mode}, run {self.run_id})",
            f"  listed {self.listed_files} source files ({self.listed_bytes} B); compared "
            f"{self.compared} by {self.checksum} on both sides; skipped {len(self.skipped)}",
            f"  missing {self.missing}, extra {self.extra}, differing {self.differing}"
            + (
                f"; repaired: copied {self.copied}, deleted {self.deleted} files and "
                f"{len(self.deleted_dirs)} folders, failed {self.failed}"
                if self.kind == "repair"
                else ""
            ),
            f"  {self.seconds:.1f}s",
        ]
        lines += [f"  MISSING {p}" for p in self.missing_files[:50]]
        lines += [f"  EXTRA {p}" for p in self.extra_files[:50]]
        lines += [f"  DIFFERS {f['path']}: {f['reason']}" for f in self.differing_files[:50]]
        lines += [f"  FAILED {f['path']}: {f['reason']}" for f in self.failed_files[:50]]
        lines += [f"  SKIPPED {f['path']}: {f['reason']}" for f in self.skipped[:50]]
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
) -> list[dict[str, Any]]:
    if pool is not None:
        return pool.run(ctx, tasks)
    if spark is None and resolve_executor(cfg, None) == "processes":
        return worker.run_tasks(ctx, tasks, slots)
    if spark is None:
        with ThreadPoolExecutor(max_workers=slots) as threads:
            return list(threads.map(lambda t: run_task(ctx, t), tasks))
    sc = spark.sparkContext
    sc.setJobDescription(f"lakeshift files {ctx.run_id}: {len(tasks)} tasks")
    # executors get the driver's S3 identity in the closure (never in ctx, logs or reports)
    aws = _driver_aws(ctx)

    def part(it: Any) -> list[dict[str, Any]]:
        if aws is not None:
            aws.install()
        return [run_task(ctx, t) for t in it]

    # largest tasks first (plan order): the scheduler hands out partitions in index order
    rdd = sc.parallelize(tasks, len(tasks))  # exactly one task per partition
    # one small dict of counts per task comes back (file records stay in the journals)
    return rdd.mapPartitions(part).collect()


def _driver_aws(ctx: CopyContext) -> DriverAws | None:
    """The driver's AWS identity when the run touches S3 (else ``None``: nothing to hand on)."""
    kinds = {source_fs.resolve_kind(u) for u in (ctx.src, ctx.dst, ctx.state)}
    return DriverAws.capture() if "s3" in kinds else None


def _executors(spark: SparkSession | None) -> int:
    """Machines that share no limits file: executors of a cluster master, else 1."""
    if spark is None or is_local_master(spark.sparkContext.master):
        return 1
    try:  # block managers: the executors plus the driver
        n = int(spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size()) - 1
    except Exception:  # not reachable through py4j: assume one machine per slot
        n = int(spark.sparkContext.defaultParallelism)
    return max(1, n)


_NOUNS = {
    "perms": "permissions",
    "owner": "owners",
    "group": "groups",
    "times": "settable modification times",
}


def preserve_notes(preserve: tuple[str, ...], src: str, dst: str) -> list[str]:
    """What ``--preserve`` cannot keep because a store holds no such attribute, in words.

    Example:
        >>> preserve_notes(("perms",), "/data", "s3a://b/x")
        ['perms not preserved: s3a target holds no permissions']
    """
    notes = []
    for where, uri, asked in (
        ("source", src, [k for k in preserve if k != "times"]),  # every store has an mtime
        ("target", dst, list(preserve)),
    ):
        kind = source_fs.resolve_kind(uri)
        lost = [k for k in asked if k not in sink_fs.PRESERVABLE.get(kind, ())]
        if lost:
            nouns = [_NOUNS[k] for k in lost]
            words = nouns[0] if len(nouns) == 1 else ", ".join(nouns[:-1]) + " or " + nouns[-1]
            scheme = uri.split("://", 1)[0] if "://" in uri else kind
            notes.append(f"{','.join(lost)} not preserved: {scheme} {where} holds no {words}")
    return notes


def _state_rel(dst: source_fs.Location, state: source_fs.Location) -> str | None:
    """The state folder's path below the target root, when it lies there."""
    if dst.kind != state.kind or dst.fs.type_name != state.fs.type_name:
        return None
    prefix = dst.root.rstrip("/") + "/"
    return state.root[len(prefix) :] if state.root.startswith(prefix) else None


def _list_target(
    dst: source_fs.Location, reserved: tuple[str, ...]
) -> dict[str, source_fs.FileEntry]:
    """The target's listing (links as links), or nothing when it does not exist yet."""
    root = source_fs.stat(dst, "")
    if root is None or not root.is_dir:
        return {}
    listed = source_fs.list_tree(dst, reserved=reserved, symlinks="preserve", special=True)
    return {e.rel: e for e in listed}


def _delete(  # noqa: PLR0917
    cfg: FilesConfig,
    dst: source_fs.Location,
    target: dict[str, source_fs.FileEntry],
    d: Diff,
    keep: set[str],
    summary: Summary,
) -> None:
    """``--delete``: remove target files and folders absent from the source; name them."""
    files, folders = delete_plan(
        target, d, include=cfg.include, exclude=cfg.exclude, blacklist=cfg.blacklist, keep=keep
    )
    if not cfg.dry_run:
        sink_fs.remove_files(dst, files)
        folders = [r for r in folders if sink_fs.remove_empty_dir(dst, r)]
    summary.deleted = len(files)
    summary.deleted_files = files[:MAX_LISTED]
    summary.deleted_dirs = folders[:MAX_LISTED]


def run_files(cfg: FilesConfig, spark: SparkSession | None = None) -> Summary:
    """Run one file copy (or ``--verify``; see the module docstring) and return its summary.

    Args:
        cfg: the run's settings (paths already macro-expanded).
        spark: the session whose executors may copy; :func:`resolve_executor` decides between
            its executors and worker processes or threads on this machine.

    Raises:
        UsageError: a bad source or target (checked before anything is written: see
            :func:`lakeshift.sources.fs.check_locations`), or ``executor="spark"`` without
            a Spark session.
        SourceError: the source cannot be listed.
        JobFailedError: the copy job failed as a whole.
    """
    started = time.monotonic()
    master = spark.sparkContext.master if spark is not None else None
    mode = resolve_executor(cfg, master)
    if mode == "spark" and spark is None:
        raise UsageError("executor 'spark' needs a Spark session, found none: --executor")
    if mode in ("processes", "threads"):
        spark = None
    log.debug("files: executor %s (requested %s, master %s)", mode, cfg.executor, master)
    run = _Run(cfg, spark, mode, started)
    try:
        run.check()
        if mode != "processes" or cfg.dry_run:
            return run.main(None)
        # workers start now: their interpreter start and imports overlap listing and planning
        with worker.Pool(_slots(cfg, None)) as pool:
            return run.main(pool)
    finally:
        run.close()


class _Run:
    """One run's driver state (locations, limits, phases, summary)."""

    def __init__(
        self, cfg: FilesConfig, spark: SparkSession | None, mode: str, started: float
    ) -> None:
        self.cfg, self.spark, self.mode, self.started = cfg, spark, mode, started
        self.mark = started
        self.phases: dict[str, float] = {}
        s3 = source_fs.S3Options(cfg.s3_endpoint, cfg.s3_region)
        self.state_uri = cfg.state or default_state(cfg.dst)
        self.src = source_fs.resolve(cfg.src, s3)
        self.dst = source_fs.resolve(cfg.dst, s3)
        self.state = source_fs.resolve(self.state_uri, s3)
        self.run_id = new_run_id()
        self.writes = not cfg.verify_mirror or cfg.repair
        kind = ("repair" if cfg.repair else "verify") if cfg.verify_mirror else "copy"
        self.summary = Summary(
            self.run_id,
            redact(cfg.src),
            redact(cfg.dst),
            redact(self.state_uri),
            mode,
            cfg.checksum,
            cfg.verify,
            cfg.dry_run,
            kind=kind,
            phases=self.phases,
        )
        rel = _state_rel(self.dst, self.state)
        self.dst_reserved: tuple[str, ...] = (STATE_DIR, sink_fs.STAGING_DIR) + (
            (rel,) if rel else ()
        )
        self.src_reserved = (STATE_DIR, sink_fs.STAGING_DIR)
        self.limits: str | None = None
        self.hosts = 1

    def phase(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(now - self.mark, 3)
        self.mark = now

    def check(self) -> None:
        """Validate SRC and DST (and a separate state folder) before anything is written."""
        source_fs.check_locations(self.src, self.dst, write=self.writes and not self.cfg.dry_run)
        if self.cfg.state:
            write = self.writes and not self.cfg.dry_run
            source_fs.check_locations(self.src, self.state, write=write, what="state folder")

    def close(self) -> None:
        if self.limits:
            remove_limiter(self.limits)
        source_fs.set_request_observer(None)

    def _open_limits(self) -> None:
        """The run's shared limits file, and the request budget for the driver's own requests."""
        cfg = self.cfg
        if not (cfg.bandwidth_mb or cfg.max_requests_per_s):
            return
        self.limits = limiter_path(self.run_id)
        limiter = shared_limiter(self.limits)
        self.hosts = _executors(self.spark)
        if cfg.max_requests_per_s and self.dst.kind == "s3":
            bucket, root = source_fs.bucket_key(self.dst.root)
            rate = cfg.max_requests_per_s / self.hosts
            source_fs.set_request_observer(RequestBudget(rate, bucket, root, limiter).observe)

    def context(self, *, verify_only: bool = False) -> CopyContext:
        cfg = self.cfg
        rate = cfg.bandwidth_mb * (1 << 20) / self.hosts if cfg.bandwidth_mb else None
        requests = cfg.max_requests_per_s / self.hosts if cfg.max_requests_per_s else None
        return CopyContext(
            src=cfg.src,
            dst=cfg.dst,
            state=self.state_uri,
            run_id=self.run_id,
            checksum=cfg.checksum,
            verify=cfg.verify,
            update=cfg.update,
            preserve=cfg.preserve,
            retries=cfg.retries,
            chunk_bytes=cfg.chunk_bytes,
            split_bytes=cfg.split_bytes,
            part_bytes=cfg.part_bytes,
            threads=cfg.threads,
            rate=rate,
            s3_endpoint=cfg.s3_endpoint,
            s3_region=cfg.s3_region,
            symlinks=cfg.symlinks,
            limits=self.limits,
            requests_per_s=requests,
            verify_only=verify_only,
        )

    def main(self, pool: worker.Pool | None) -> Summary:
        self._open_limits()
        if self.cfg.verify_mirror:
            return self._verify(pool)
        return self._copy(pool)

    def _listing_problems(self, d: Diff | VerifyPlan) -> None:
        s = self.summary
        s.skipped = [{"path": r, "reason": why} for r, why in sorted(d.skipped)[:MAX_LISTED]]
        s.failed += len(d.failed)
        s.failed_files += [{"path": r, "reason": w} for r, w in sorted(d.failed)[:MAX_LISTED]]

    def _copy(self, pool: worker.Pool | None) -> Summary:
        cfg, src, dst, state, summary = self.cfg, self.src, self.dst, self.state, self.summary
        if not cfg.dry_run:  # staging files and unfinished uploads of killed runs
            sink_fs.remove_dir(dst, dst.path(sink_fs.STAGING_DIR))
            sink_fs.abort_stale_uploads(dst)
        loaded = mf.load(state)
        written = {r.output for r in loaded.records.values() if r.output}  # concat outputs
        entries = list(
            source_fs.list_tree(
                src, reserved=self.src_reserved, symlinks=cfg.symlinks, special=True
            )
        )
        target = _list_target(dst, self.dst_reserved) if cfg.update or cfg.delete else None
        self.phase("list")
        files = [e for e in entries if not e.is_dir and not e.kind]
        summary.listed_files = len(files)
        summary.listed_bytes = sum(e.size for e in files)
        d = diff(
            entries,
            loaded.records,
            cfg.include,
            cfg.exclude,
            cfg.blacklist,
            target=target if cfg.update else None,
            store=dst.kind,
            checksum_always=cfg.checksum_always,
            symlinks=cfg.symlinks,
        )
        concat = (
            plan_concat(d, loaded.records, cfg.concat, cfg.concat_bytes) if cfg.concat else None
        )
        release_concatenated(d, loaded.records, concat.inputs if concat else set())
        units: list[Unit] = [*d.to_copy, *(concat.units if concat else [])]
        summary.excluded = d.excluded
        summary.blacklisted = len(d.blacklisted)
        summary.blacklisted_files = d.blacklisted[:MAX_LISTED]
        summary.unchanged = len(d.unchanged) - (concat.rewritten_unchanged if concat else 0)
        self._listing_problems(d)
        keep = concat.outputs if concat else set()
        summary.empty_dirs = len(d.empty_dirs)
        summary.warnings = preserve_notes(cfg.preserve, cfg.src, cfg.dst)
        self._copy_units(units, loaded, gone=d.gone, pool=pool)
        if cfg.dry_run:
            if cfg.delete and target is not None:
                _delete(cfg, dst, target, d, keep, summary)
            return _finish(summary, cfg, self.started)
        for rel in d.empty_dirs:
            sink_fs.make_dir(dst, rel)
        for rel in sorted(written - keep - d.source_files):  # earlier outputs not produced now
            sink_fs.remove(dst, dst.path(rel))
        if cfg.delete and target is not None:
            _delete(cfg, dst, target, d, keep, summary)
        sink_fs.remove_dir(dst, dst.path(sink_fs.STAGING_DIR))
        self.phase("finish")
        return _finish(summary, cfg, self.started)

    def _copy_units(
        self,
        units: list[Unit],
        loaded: mf.Loaded,
        *,
        gone: list[str],
        pool: worker.Pool | None,
    ) -> None:
        """Plan ``units`` into tasks, record the plan, copy, fold the journals, count."""
        cfg, state, summary, run_id = self.cfg, self.state, self.summary, self.run_id
        planned = [f for u in units for f in _inputs(u)]
        summary.planned_files = len(planned)
        summary.planned_bytes = sum(f.size for f in planned)
        slots = _slots(cfg, self.spark)
        tasks = plan_tasks(units, slots, cfg.task_bytes, cfg.task_files, cfg.big_file)
        summary.tasks = len(tasks)
        self.phase("plan")
        if cfg.dry_run:
            return
        # record the plan first: a killed run leaves its files "queued" (adopt candidates)
        records = loaded.records
        for rel in gone:
            records.pop(rel, None)
        now = time.time_ns()
        for u in units:
            for f in _inputs(u):
                records[f.rel] = mf.Record(
                    f.rel, f.size, f.mtime_ns, algo=cfg.checksum, run_id=run_id, updated_ns=now
                )
                records[f.rel].output = u.rel if isinstance(u, ConcatUnit) else ""
        save_manifest(state, records, loaded)
        self.phase("manifest")
        if tasks:
            ctx = self.context()
            counts = _execute(
                cfg, ctx, tasks, slots, self.spark, state=state, summary=summary, pool=pool
            )
            task_s = [c.get("task_ms", 0) / 1000 for c in counts]
            summary.warnings += _merge_warnings(counts)
            self.phase("copy")
            self.phases["task_sum"] = round(sum(task_s), 3)
            self.phases["task_max"] = round(max(task_s, default=0.0), 3)
        final = mf.load(state)
        save_manifest(state, final.records, final)
        outputs: set[str] = set()  # concatenation outputs written by this run
        for rec in final.records.values():
            if rec.run_id != run_id:
                continue
            if rec.action == "copied":
                summary.copied += 1
                summary.copied_bytes += rec.size
            elif rec.action == "adopted":
                summary.adopted += 1
            elif rec.action == "checked":
                summary.checked += 1
            elif rec.action == "concatenated":
                summary.concatenated += 1
                summary.copied_bytes += rec.size
                outputs.add(rec.output)
            elif rec.status == "failed":
                summary.failed += 1
                if len(summary.failed_files) < MAX_LISTED:
                    summary.failed_files.append({"path": rec.rel, "reason": rec.reason})
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
        summary.failed_files.sort(key=lambda x: x["path"])

    def _verify(self, pool: worker.Pool | None) -> Summary:
        """``--verify``: compare listings, then checksums of same-size files; ``--repair``."""
        cfg, src, dst, summary = self.cfg, self.src, self.dst, self.summary
        loaded = mf.load(self.state)
        outputs = {r.output for r in loaded.records.values() if r.output}
        entries = list(
            source_fs.list_tree(
                src, reserved=self.src_reserved, symlinks=cfg.symlinks, special=True
            )
        )
        target = _list_target(dst, self.dst_reserved)
        self.phase("list")
        files = [e for e in entries if not e.is_dir and not e.kind]
        summary.listed_files = len(files)
        summary.listed_bytes = sum(e.size for e in files)
        vp = verify_plan(
            entries,
            target,
            cfg.include,
            cfg.exclude,
            cfg.blacklist,
            store=dst.kind,
            symlinks=cfg.symlinks,
            keep=outputs,
        )
        self._listing_problems(vp)
        slots = _slots(cfg, self.spark)
        tasks = plan_tasks(vp.compare, slots, cfg.task_bytes, cfg.task_files, cfg.big_file)
        summary.compared = len(vp.compare)
        self.phase("plan")
        differing = list(vp.differing)
        if tasks:
            ctx = self.context(verify_only=True)
            counts = _execute(
                cfg,
                ctx,
                tasks,
                slots,
                self.spark,
                state=self.state,
                summary=summary,
                pool=pool,
                progress=False,
            )
            for c in counts:
                differing += [(r, why) for r, why in c.get("problems", [])]
            extra_differ = sum(int(c.get("differ", 0)) for c in counts) - sum(
                len(c.get("problems", [])) for c in counts
            )
            self.phase("compare")
        else:
            extra_differ = 0
        differing.sort()
        summary.missing = len(vp.missing)
        summary.missing_files = vp.missing[:MAX_LISTED]
        summary.extra = len(vp.extra)
        summary.extra_files = vp.extra[:MAX_LISTED]
        summary.differing = len(differing) + extra_differ
        summary.differing_files = [{"path": r, "reason": w} for r, w in differing[:MAX_LISTED]]
        if cfg.repair and not cfg.dry_run:
            self._repair(entries, target, vp, differing, loaded, pool)
        return _finish(summary, cfg, self.started)

    def _repair(  # noqa: PLR0917
        self,
        entries: list[source_fs.FileEntry],
        target: dict[str, source_fs.FileEntry],
        vp: VerifyPlan,
        differing: list[tuple[str, str]],
        loaded: mf.Loaded,
        pool: worker.Pool | None,
    ) -> None:
        """Re-copy what ``--verify`` found missing or differing; ``--delete`` the extras."""
        cfg, dst = self.cfg, self.dst
        by_rel = {e.rel: e for e in entries}
        wanted = {r for r in vp.missing if not r.endswith("/")} | {r for r, _ in differing}
        units: list[Unit] = []
        for rel in sorted(wanted):
            e = by_rel.get(rel)
            if e is None:
                continue
            link = e.link if e.kind == source_fs.SYMLINK else ""
            units.append(PlannedFile(rel, e.size, e.mtime_ns, link=link, why="repair"))
        self._copy_units(units, loaded, gone=[], pool=pool)
        for rel in vp.missing:
            if rel.endswith("/"):
                sink_fs.make_dir(dst, rel.rstrip("/"))
        if cfg.delete:
            d = diff(
                entries,
                {},
                cfg.include,
                cfg.exclude,
                cfg.blacklist,
                store=dst.kind,
                symlinks=cfg.symlinks,
            )
            keep = {r.output for r in loaded.records.values() if r.output}
            _delete(cfg, dst, target, d, keep, self.summary)
        self.phase("repair")


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
    progress: bool = True,
) -> list[dict[str, Any]]:
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
    bar = Progress(summary.planned_files, summary.planned_bytes, enabled=cfg.progress and progress)
    bar.follow(lambda: journal_totals(state, ctx.run_id), done)
    thread.join()
    if "error" in outcome:
        exc = outcome["error"]
        msg = " ".join(str(exc).split())[:500]
        raise JobFailedError(f"copy tasks failed ({msg}): run {ctx.run_id}") from exc
    counts: list[dict[str, Any]] = outcome["counts"]
    return counts


def _merge_warnings(counts: list[dict[str, Any]]) -> list[str]:
    """The tasks' warnings, once each, with the number of files: ``<words> (N files)``."""
    merged: dict[str, int] = {}
    for c in counts:
        for w, n in c.get("warnings", {}).items():
            merged[w] = merged.get(w, 0) + int(n)
    return [f"{w} ({n} file{'s' if n != 1 else ''})" for w, n in sorted(merged.items())]


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
