"""Settings of one ``lakeshift files`` run (CLI flags map one-to-one to these fields)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lakeshift.config.base import StrictModel

Checksum = Literal["crc32c", "md5", "sha256"]
Verify = Literal["readback", "stream"]
Executor = Literal["auto", "spark", "processes", "threads"]
Symlinks = Literal["follow", "preserve", "skip"]

STATE_DIR = "_lakeshift_files"

# what ``--preserve`` can keep, in the order it is rendered (distcp -p's p, u, g, t)
PRESERVE_ATTRS = ("perms", "owner", "group", "times")
Preserved = Literal["perms", "owner", "group", "times"]


def preserve_list(value: object) -> tuple[str, ...]:
    """The attributes a ``--preserve`` value names, in :data:`PRESERVE_ATTRS` order.

    ``True`` (a bare ``--preserve`` of older configs) means ``times``; ``False``/``None`` nothing.

    Example:
        >>> preserve_list("times,perms")
        ('perms', 'times')

    Raises:
        ValueError: a name is not one of :data:`PRESERVE_ATTRS` (or the list is empty).
    """
    if value is None or value is False:
        return ()
    if value is True:
        return ("times",)
    items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
    names = {str(v).strip().lower() for v in items}
    bad = sorted(n for n in names if n not in PRESERVE_ATTRS)
    if bad or not names:
        raise ValueError(
            f"expected a comma-separated list of {','.join(PRESERVE_ATTRS)}, found "
            f"{value!r}: --preserve"
        )
    return tuple(a for a in PRESERVE_ATTRS if a in names)


class FilesConfig(StrictModel):
    """One file-copy run.

    Attributes:
        src: source folder (local path, ``hdfs://…``, ``s3://bucket/prefix``…).
        dst: target folder.
        state: folder of the manifest and run journals (default ``<dst>/_lakeshift_files``).
        checksum: streaming checksum algorithm.
        verify: how each written file is verified (CLI ``--verify-mode``): ``readback``
            re-reads the staged target and compares its checksum with the source stream's;
            ``stream`` trusts the checksum of the written stream and checks sizes.
        update: decide from the target (distcp's ``-update``): the target is listed, files
            missing there or of another size are copied, files of the same size are skipped
            only when their checksums match (the manifest's cached checksum counts only while
            the target's stamp is unchanged; see :func:`lakeshift.files.plan.diff`).
        checksum_always: re-read every source file whose size and mtime match the manifest
            and compare its checksum (by default only files whose ctime changed are re-read).
        verify_mirror: ``--verify``: compare a finished mirror end to end (both listings, the
            checksum of every file of the same size on both sides) and report every missing,
            extra or differing file; nothing is written.
        repair: with ``verify_mirror``, re-copy the missing and differing files afterwards
            (and, with ``delete``, remove the extra ones).
        delete: remove target files and folders that are absent from the source.
        dry_run: plan and report only; nothing is written.
        symlinks: ``follow`` (copy what a link points to; broken links fail), ``preserve``
            (copy links as links where the target holds them: local paths; skipped and
            reported elsewhere), ``skip`` (skipped and reported).
        preserve: the file attributes copied to the target (distcp ``-p``): any of
            ``perms`` (permission bits), ``owner``, ``group`` and ``times`` (modification
            time), on local and HDFS targets. Owner and group are set by number between local
            paths and by name otherwise; where the run may not change them (not root / not
            the HDFS superuser) the files are copied anyway and the summary warns once. An S3
            target holds none of them (the summary says so). ``True`` means ``("times",)``.
        include: glob patterns (on the relative path); when given, a file must match one.
        exclude: glob patterns of files to leave out silently.
        blacklist: glob patterns of live folders: matching files are skipped and reported.
        bandwidth_mb: job-wide cap in MiB/s: one limit shared by every task of the run (all
            threads and processes on one machine; ``None``: no cap).
        max_requests_per_s: request budget per top-level prefix of an S3 target, shared
            like the bandwidth cap (``None``: none); see
            :class:`lakeshift.files.throttle.RequestBudget`.
        task_bytes: target bytes per task (small files are grouped up to this).
        task_files: most files per task.
        big_file: files of at least this size get a task of their own.
        threads: copy threads inside one task when a remote store is involved (S3, HDFS:
            latency-bound). Local-to-local tasks copy one file at a time (the work is CPU and
            page-cache bound; tasks already run in parallel); ``threads`` still bounds the
            parallel parts of one range-split file.
        retries: how often a file is copied again after it changed while being copied or after
            a store error (timeouts, throttling).
        chunk_bytes: read/write buffer size.
        split_bytes: files at least this large (and larger than ``part_bytes``) are copied in
            parts of ``part_bytes``, ``threads`` parts at a time: S3 targets by a multipart
            upload to the final key, local targets by ranges written into one staging file.
        part_bytes: part size of range-split copies (S3 needs at least 5 MiB).
        concat: opt-in small-file concatenation for line-oriented text: a regular expression
            matched against the whole relative path; matching files are grouped by the text of
            its capture groups and each group is written as outputs of about ``concat_bytes``
            (see :func:`lakeshift.files.plan.plan_concat`).
        concat_bytes: target size of one concatenation output.
        executor: who runs the copy tasks: ``processes`` (``workers`` worker processes on
            this machine, each copying one task at a time: no interpreter lock shared between
            tasks), ``threads`` (a thread pool in this process; in-process test hooks see
            it), ``spark`` (one Spark task per copy task on the executors) or ``auto`` (the
            default): processes when the Spark master is local (``local``, ``local[N]``,
            ``local[*]``, or no session at all): on one machine, shipping file tasks through
            Spark adds JVM and Python-worker round trips and buys no extra disks or cores;
            Spark executors for cluster masters (standalone, YARN, Kubernetes).
        local: same as ``executor="threads"`` (kept for compatibility).
        workers: concurrent tasks in local mode (default: CPU count).
        s3_endpoint: S3 endpoint URL (default: ``$AWS_ENDPOINT_URL_S3`` / ``$AWS_ENDPOINT_URL``).
        s3_region: S3 region (default: ``$AWS_REGION`` / ``$AWS_DEFAULT_REGION`` / us-east-1).
        json_path: where to write the JSON summary.
        progress: show progress (rich when a TTY, else a log line every few seconds).
    """

    src: str
    dst: str
    state: str | None = None
    checksum: Checksum = "crc32c"
    verify: Verify = "readback"
    update: bool = False
    checksum_always: bool = False
    verify_mirror: bool = False
    repair: bool = False
    delete: bool = False
    dry_run: bool = False
    preserve: tuple[Preserved, ...] = ()
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    blacklist: list[str] = Field(default_factory=list)
    symlinks: Symlinks = "follow"
    bandwidth_mb: float | None = Field(default=None, gt=0)
    max_requests_per_s: float | None = Field(default=None, gt=0)
    task_bytes: int = Field(default=256 << 20, ge=1)
    task_files: int = Field(default=2000, ge=1)
    big_file: int = Field(default=64 << 20, ge=1)
    threads: int = Field(default=4, ge=1, le=64)
    retries: int = Field(default=2, ge=0)
    chunk_bytes: int = Field(default=8 << 20, ge=4096)
    split_bytes: int = Field(default=256 << 20, ge=1)
    part_bytes: int = Field(default=64 << 20, ge=1 << 20)
    concat: str | None = None
    concat_bytes: int = Field(default=128 << 20, ge=1)
    executor: Executor = "auto"
    local: bool = False
    workers: int | None = Field(default=None, ge=1)
    s3_endpoint: str | None = None
    s3_region: str | None = None
    json_path: str | None = None
    progress: bool = True

    @field_validator("preserve", mode="before")
    @classmethod
    def _preserve(cls, value: object) -> tuple[str, ...]:
        return preserve_list(value)

    @model_validator(mode="after")
    def _consistent(self) -> FilesConfig:
        # SRC against DST (inside, the same folder, a file...) is checked on the resolved
        # paths before the run starts: lakeshift.sources.fs.check_locations
        if self.dst.split("://", 1)[0] in ("s3", "s3a", "s3n") and self.part_bytes < 5 << 20:
            raise ValueError(
                f"S3 needs parts of at least 5 MiB, found {self.part_bytes} B: --part-size"
            )
        if self.repair and not self.verify_mirror:
            raise ValueError("--repair works with --verify only: --repair")
        if self.verify_mirror and self.concat:
            raise ValueError("--verify compares one-to-one copies, not concatenations: --concat")
        return self
