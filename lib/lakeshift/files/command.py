"""``lakeshift files SRC DST``: verified, resumable byte copy of a folder tree."""

from __future__ import annotations

import argparse
import os
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator

from lakeshift.config import expand_macros, parse_size
from lakeshift.contracts import CommonArgs, Opt
from lakeshift.errors import ConfigError, LakeshiftError
from lakeshift.files.config import PRESERVE_ATTRS, FilesConfig, preserve_list

# config field -> the flag that sets it (for messages)
_FLAGS = {
    "src": "SRC",
    "dst": "DST",
    "verify": "--verify-mode",
    "verify_mirror": "--verify",
    "bandwidth_mb": "--bandwidth",
    "task_bytes": "--task-size",
    "chunk_bytes": "--chunk-size",
    "split_bytes": "--split-above",
    "part_bytes": "--part-size",
    "concat_bytes": "--concat-size",
    "json_path": "--json",
}


def _size(value: str) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _preserve(value: str) -> str:
    try:
        return ",".join(preserve_list(value))
    except ValueError as exc:
        msg = str(exc).removesuffix(": --preserve")
        if value.startswith(("/", ".")) or "://" in value:  # `--preserve SRC DST`
            msg += " (write --preserve=LIST, or --preserve after SRC DST)"
        raise argparse.ArgumentTypeError(msg) from exc


SIZE = "SIZE"


class FilesArgs(CommonArgs):
    """The arguments of ``lakeshift files`` (and of ``jobs/files_copy.py``)."""

    COMMAND = ("files",)
    JOB = "jobs/files_copy.py"

    src: Annotated[str, Opt(positional=True, help="source folder (macros like ${ds} are expanded)")]
    dst: Annotated[str, Opt(positional=True, help="target folder")]
    state: Annotated[str | None, Opt(help="manifest folder (default: DST/_lakeshift_files)")] = None
    checksum: Annotated[Literal["crc32c", "md5", "sha256"], Opt(help="default: crc32c")] = (
        "crc32c"  # = checksum.ALGORITHMS (a unit test keeps them equal)
    )
    verify_mode: Annotated[
        Literal["readback", "stream"],
        Opt(
            help="how each written file is verified: readback re-reads the staged target and "
            "compares checksums (default); stream: checksum of the written stream plus size check"
        ),
    ] = "readback"
    verify: Annotated[
        bool,
        Opt(
            help="compare a finished mirror end to end instead of copying: list both sides, "
            "checksum every file of the same size on both, report every missing, extra or "
            "differing file (exit 1 if any); writes nothing"
        ),
    ] = False
    repair: Annotated[
        bool,
        Opt(
            help="with --verify: then re-copy the missing and differing files (and, with "
            "--delete, remove the extra ones)"
        ),
    ] = False
    update: Annotated[
        bool,
        Opt(
            help="decide from the target: copy files missing there or of another size; a file "
            "of the same size is skipped only when its checksum matches (the manifest's "
            "checksum counts while the target's size/mtime/inode or ETag is unchanged)"
        ),
    ] = False
    checksum_always: Annotated[
        bool,
        Opt(
            help="re-read every source file whose size and mtime match the manifest and compare "
            "checksums (default: only files whose ctime changed, e.g. after touch -r)"
        ),
    ] = False
    delete: Annotated[
        bool,
        Opt(
            help="remove target files and folders absent from SRC (never the state folder); "
            "names what it removed"
        ),
    ] = False
    dry_run: Annotated[bool, Opt(help="plan and report only")] = False
    symlinks: Annotated[
        Literal["follow", "preserve", "skip"],
        Opt(
            help="follow: copy what a link points to, broken links fail (default); preserve: "
            "copy links as links (local targets; skipped and reported on S3/HDFS); skip: skip "
            "and report. FIFOs, sockets and devices are never opened: skipped and reported"
        ),
    ] = "follow"
    preserve: Annotated[
        str | None,
        Opt(
            metavar="LIST",
            parse=_preserve,
            const="times",
            help="keep file attributes on local and HDFS targets (distcp -p): a comma list of "
            f"{','.join(PRESERVE_ATTRS)}; --preserve alone keeps times. Owner and group need "
            "root / the HDFS superuser (else a warning); S3 holds none of them (noted in the "
            "summary)",
        ),
    ] = None
    include: Annotated[list[str], Opt(metavar="GLOB")] = Field(default_factory=list)
    exclude: Annotated[list[str], Opt(metavar="GLOB")] = Field(default_factory=list)
    blacklist: Annotated[list[str], Opt(metavar="GLOB", help="live folders to skip (reported)")] = (
        Field(default_factory=list)
    )
    bandwidth: Annotated[
        float | None,
        Opt(
            metavar="MB_PER_S",
            help="cap in MiB/s for the whole run: one limit shared by all its tasks, threads "
            "and processes on a machine (one file alone gets all of it)",
        ),
    ] = None
    max_requests_per_s: Annotated[
        float | None,
        Opt(
            metavar="N",
            help="S3 targets: at most N requests per second per top-level prefix of DST "
            "(PUT, multipart, GET, HEAD, DELETE, LIST; shared like --bandwidth)",
        ),
    ] = None
    task_size: Annotated[
        int, Opt(metavar=SIZE, parse=_size, help="bytes per task for small files (default 256MB)")
    ] = 256 << 20
    big_file: Annotated[
        int,
        Opt(metavar=SIZE, parse=_size, help="files this large get their own task (default 64MB)"),
    ] = 64 << 20
    chunk_size: Annotated[
        int,
        Opt(
            metavar=SIZE,
            parse=_size,
            help="read buffer; on S3 files up to this size (or below 5MB) are written with one "
            "PUT, larger ones streamed into a multipart upload of such parts (default 8MB)",
        ),
    ] = 8 << 20
    split_above: Annotated[
        int,
        Opt(
            metavar=SIZE,
            parse=_size,
            help="files this large are copied in parts, --threads at a time: S3 multipart "
            "upload, local ranges (default 256MB)",
        ),
    ] = 256 << 20
    part_size: Annotated[
        int,
        Opt(
            metavar=SIZE,
            parse=_size,
            help="part size of split copies; S3 needs >= 5MB (default 64MB)",
        ),
    ] = 64 << 20
    concat_size: Annotated[
        int,
        Opt(metavar=SIZE, parse=_size, help="target size of one --concat output (default 128MB)"),
    ] = 128 << 20
    task_files: Annotated[int, Opt(help="most files per task")] = 2000
    concat: Annotated[
        str | None,
        Opt(
            metavar="REGEX",
            help="concatenate small line-oriented text files: files whose relative path matches "
            "REGEX are grouped by its capture groups into outputs named <groups>-NNNNN[.ext]",
        ),
    ] = None
    threads: Annotated[int, Opt(help="copy threads per task (default 4)")] = 4
    retries: Annotated[
        int, Opt(help="re-copies after a source change or a store error (default 2)")
    ] = 2
    executor: Annotated[
        Literal["auto", "spark", "processes", "threads"],
        Opt(
            help="who runs the copy tasks: processes (--workers processes on this machine, no "
            "Spark session), threads (a pool in this process), spark (Spark executors), auto "
            "(default): processes when the master is local (local, local[N], local[*]), Spark "
            "executors for cluster masters"
        ),
    ] = "auto"
    local: Annotated[bool, Opt(help="same as --executor threads")] = False
    workers: Annotated[
        int | None, Opt(help="concurrent tasks without Spark (default: CPU count)")
    ] = None
    s3_endpoint: Annotated[str | None, Opt(help="S3 endpoint URL (default: $AWS_ENDPOINT_URL)")] = (
        None
    )
    s3_region: Annotated[str | None, Opt(help="S3 region")] = None
    json_path: Annotated[str | None, Opt("--json", metavar="FILE", help="write a JSON summary")] = (
        None
    )
    no_progress: Annotated[bool, Opt(help="no progress output")] = False

    @field_validator("preserve", mode="before")
    @classmethod
    def _preserve_value(cls, value: object) -> str | None:
        return ",".join(preserve_list(value)) or None  # True (older callers) means times


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``files`` subcommand."""
    p = subparsers.add_parser(
        "files",
        parents=[common],
        help="copy a folder tree byte for byte with checksums, a manifest and resume",
        description=(
            "Copy SRC to DST (local paths, hdfs://, s3://) with streaming checksums, atomic "
            "writes and a manifest under DST/_lakeshift_files; reruns copy only what is new or "
            "changed. With --verify, compare a finished mirror instead (nothing is written "
            "unless --repair). Exit 0 ok, 1 if any file failed (or --verify found "
            "differences), 2 on bad input (one line: lakeshift files: error: <what>: <where>)."
        ),
    )
    FilesArgs.add_arguments(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> FilesConfig:
    """Build the run's :class:`FilesConfig` from parsed arguments (macros expanded).

    Raises:
        ConfigError: a macro or a value is invalid.
    """
    from lakeshift.runtime import run_date_from_args

    day = run_date_from_args(args)

    def x(value: str | None) -> str | None:
        return None if value is None else expand_macros(value, run_date=day, where="files")

    data = {
        "src": x(args.src),
        "dst": x(args.dst),
        "state": x(args.state),
        "checksum": args.checksum,
        "verify": args.verify_mode,
        "verify_mirror": args.verify,
        "repair": args.repair,
        "update": args.update,
        "checksum_always": args.checksum_always,
        "symlinks": args.symlinks,
        "max_requests_per_s": args.max_requests_per_s,
        "delete": args.delete,
        "dry_run": args.dry_run,
        "preserve": args.preserve,
        "include": [x(g) for g in args.include],
        "exclude": [x(g) for g in args.exclude],
        "blacklist": [x(g) for g in args.blacklist],
        "bandwidth_mb": args.bandwidth,
        "task_bytes": args.task_size,
        "task_files": args.task_files,
        "big_file": args.big_file,
        "threads": args.threads,
        "chunk_bytes": args.chunk_size,
        "split_bytes": args.split_above,
        "part_bytes": args.part_size,
        "concat": args.concat,
        "concat_bytes": args.concat_size,
        "retries": args.retries,
        "executor": args.executor,
        "local": args.local,
        "workers": args.workers,
        "s3_endpoint": args.s3_endpoint,
        "s3_region": args.s3_region,
        "json_path": args.json_path,
        "progress": not args.no_progress,
    }
    try:
        return FilesConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(config_message(exc)) from exc


def config_message(exc: ValidationError) -> str:
    """The first error of ``exc`` as ``<what>: <flag>`` (no pydantic wording or prefixes)."""
    err = exc.errors()[0]
    if err["type"] == "value_error" and "error" in err.get("ctx", {}):
        return str(err["ctx"]["error"])  # our own validators say "<what>: <where>"
    field = str(err["loc"][0]) if err["loc"] else ""
    flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
    msg = str(err["msg"])
    msg = msg[:1].lower() + msg[1:]
    found = err.get("input")
    shown = f" (found {found!r})" if isinstance(found, str | int | float) else ""
    return f"{msg}{shown}: {flag}"


def run(args: argparse.Namespace) -> int:
    """Run the copy (or ``--verify``); print the report; 0 ok, 1 if any file failed."""
    cfg = config_from_args(args)
    try:
        return _run(cfg, args)
    except OSError as exc:  # anything the run did not turn into words itself
        where = exc.filename if isinstance(exc.filename, str) else cfg.dst
        words = os.strerror(exc.errno).lower() if exc.errno else " ".join(str(exc).split())
        raise LakeshiftError(f"{words}: {where}") from exc


def _run(cfg: FilesConfig, args: argparse.Namespace) -> int:
    from lakeshift.files.runner import resolve_executor, run_files
    from lakeshift.runtime import profile_from_args

    profile = profile_from_args(args, "lakeshift-files")
    # under spark-submit the master is not known before the session exists: start it then
    master = profile.master if profile.master is not None else "unknown"
    if resolve_executor(cfg, master) in ("processes", "threads"):
        summary = run_files(cfg, None)  # no JVM at all
    else:
        from lakeshift.spark import session

        with session(profile) as spark:
            summary = run_files(cfg, spark)
    print(summary.report(), flush=True)
    return summary.exit_code()
