"""``lakeshift files SRC DST``: verified, resumable byte copy of a folder tree."""

from __future__ import annotations

import argparse
import os
from typing import Any

from pydantic import ValidationError

from lakeshift.config import expand_macros, parse_size
from lakeshift.errors import ConfigError, LakeshiftError
from lakeshift.files.checksum import ALGORITHMS
from lakeshift.files.config import FilesConfig

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


def _size_option(p: argparse.ArgumentParser, flag: str, default: int, text: str) -> None:
    """Add a size option (``128MB``, ``1GiB``, plain bytes) with ``metavar`` SIZE."""
    p.add_argument(flag, type=_size, default=default, metavar="SIZE", help=text)


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
    p.add_argument("src", help="source folder (macros like ${ds} are expanded)")
    p.add_argument("dst", help="target folder")
    p.add_argument("--state", help="manifest folder (default: DST/_lakeshift_files)")
    p.add_argument("--checksum", choices=ALGORITHMS, default="crc32c", help="default: crc32c")
    p.add_argument(
        "--verify-mode",
        choices=["readback", "stream"],
        default="readback",
        help="how each written file is verified: readback re-reads the staged target and "
        "compares checksums (default); stream: checksum of the written stream plus size check",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare a finished mirror end to end instead of copying: list both sides, "
        "checksum every file of the same size on both, report every missing, extra or "
        "differing file (exit 1 if any); writes nothing",
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="with --verify: then re-copy the missing and differing files (and, with "
        "--delete, remove the extra ones)",
    )
    p.add_argument(
        "--update",
        action="store_true",
        help="decide from the target: copy files missing there or of another size; a file of "
        "the same size is skipped only when its checksum matches (the manifest's checksum "
        "counts while the target's size/mtime/inode or ETag is unchanged)",
    )
    p.add_argument(
        "--checksum-always",
        action="store_true",
        help="re-read every source file whose size and mtime match the manifest and compare "
        "checksums (default: only files whose ctime changed, e.g. after touch -r)",
    )
    p.add_argument(
        "--delete",
        action="store_true",
        help="remove target files and folders absent from SRC (never the state folder); "
        "names what it removed",
    )
    p.add_argument("--dry-run", action="store_true", help="plan and report only")
    p.add_argument(
        "--symlinks",
        choices=["follow", "preserve", "skip"],
        default="follow",
        help="follow: copy what a link points to, broken links fail (default); preserve: "
        "copy links as links (local targets; skipped and reported on S3/HDFS); skip: skip "
        "and report. FIFOs, sockets and devices are never opened: skipped and reported",
    )
    p.add_argument("--preserve", action="store_true", help="keep modification times (local)")
    p.add_argument("--include", action="append", default=[], metavar="GLOB")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    p.add_argument(
        "--blacklist",
        action="append",
        default=[],
        metavar="GLOB",
        help="live folders to skip (reported)",
    )
    p.add_argument(
        "--bandwidth",
        type=float,
        metavar="MB_PER_S",
        help="cap in MiB/s for the whole run: one limit shared by all its tasks, threads and "
        "processes on a machine (one file alone gets all of it)",
    )
    p.add_argument(
        "--max-requests-per-s",
        type=float,
        metavar="N",
        help="S3 targets: at most N requests per second per top-level prefix of DST "
        "(PUT, multipart, GET, HEAD, DELETE, LIST; shared like --bandwidth)",
    )
    sizes = [
        ("--task-size", 256 << 20, "bytes per task for small files (default 256MB)"),
        ("--big-file", 64 << 20, "files this large get their own task (default 64MB)"),
        (
            "--chunk-size",
            8 << 20,
            "read buffer; on S3 files up to this size (or below 5MB) are written with one PUT, "
            "larger ones streamed into a multipart upload of such parts (default 8MB)",
        ),
        (
            "--split-above",
            256 << 20,
            "files this large are copied in parts, --threads at a time: S3 multipart upload, "
            "local ranges (default 256MB)",
        ),
        ("--part-size", 64 << 20, "part size of split copies; S3 needs >= 5MB (default 64MB)"),
        ("--concat-size", 128 << 20, "target size of one --concat output (default 128MB)"),
    ]
    for flag, default, text in sizes:
        _size_option(p, flag, default, text)
    p.add_argument("--task-files", type=int, default=2000, help="most files per task")
    p.add_argument(
        "--concat",
        metavar="REGEX",
        help="concatenate small line-oriented text files: files whose relative path matches "
        "REGEX are grouped by its capture groups into outputs named <groups>-NNNNN[.ext]",
    )
    p.add_argument("--threads", type=int, default=4, help="copy threads per task (default 4)")
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="re-copies after a source change or a store error (default 2)",
    )
    p.add_argument(
        "--executor",
        choices=["auto", "spark", "processes", "threads"],
        default="auto",
        help="who runs the copy tasks: processes (--workers processes on this machine, no "
        "Spark session), threads (a pool in this process), spark (Spark executors), auto "
        "(default): processes when the master is local (local, local[N], local[*]), Spark "
        "executors for cluster masters",
    )
    p.add_argument("--local", action="store_true", help="same as --executor threads")
    p.add_argument(
        "--workers", type=int, help="concurrent tasks without Spark (default: CPU count)"
    )
    p.add_argument("--s3-endpoint", help="S3 endpoint URL (default: $AWS_ENDPOINT_URL)")
    p.add_argument("--s3-region", help="S3 region")
    p.add_argument("--json", dest="json_path", metavar="FILE", help="write a JSON summary")
    p.add_argument("--no-progress", dest="progress", action="store_false")
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
        "progress": args.progress,
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
