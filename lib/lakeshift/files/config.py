"""Settings of one ``lakeshift files`` run (CLI flags map one-to-one to these fields)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from lakeshift.config.base import StrictModel

Checksum = Literal["crc32c", "md5", "sha256"]
Verify = Literal["readback", "stream"]
Executor = Literal["auto", "spark", "processes", "threads"]

STATE_DIR = "_lakeshift_files"


class FilesConfig(StrictModel):
    """One file-copy run.

    Attributes:
        src: source folder (local path, ``hdfs://…``, ``s3://bucket/prefix``…).
        dst: target folder.
        state: folder of the manifest and run journals (default ``<dst>/_lakeshift_files``).
        checksum: streaming checksum algorithm.
        verify: ``readback`` re-reads the staged target and compares its checksum with the
            source stream's; ``stream`` trusts the checksum of the written stream and checks sizes.
        update: skip files whose target already has the same size and checksum.
        delete: remove target files that are absent from the source.
        dry_run: plan and report only; nothing is written.
        preserve: copy modification times where the target store allows it (local paths).
        include: glob patterns (on the relative path); when given, a file must match one.
        exclude: glob patterns of files to leave out silently.
        blacklist: glob patterns of live folders: matching files are skipped and reported.
        bandwidth_mb: job-wide cap in MiB/s shared by all concurrent tasks (``None``: no cap).
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
    delete: bool = False
    dry_run: bool = False
    preserve: bool = False
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    blacklist: list[str] = Field(default_factory=list)
    bandwidth_mb: float | None = Field(default=None, gt=0)
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

    @model_validator(mode="after")
    def _distinct(self) -> FilesConfig:
        src = self.src.rstrip("/")
        dst = self.dst.rstrip("/")
        if src == dst or dst.startswith(src + "/"):
            raise ValueError(f"dst must not be inside src (src {self.src!r}, dst {self.dst!r})")
        if self.dst.split("://", 1)[0] in ("s3", "s3a", "s3n") and self.part_bytes < 5 << 20:
            raise ValueError(
                f"part_bytes: S3 needs parts of at least 5 MiB, found {self.part_bytes}"
            )
        return self
