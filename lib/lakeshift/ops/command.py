"""``lakeshift scan SOURCE…``: profile a source tree for planning (sizes, small files, prefixes)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Annotated, Any

from lakeshift.contracts import CommonArgs, Opt
from lakeshift.errors import UsageError
from lakeshift.files.command import SIZE, _size


class ScanArgs(CommonArgs):
    """The arguments of ``lakeshift scan``."""

    COMMAND = ("scan",)

    sources: Annotated[
        list[str],
        Opt(
            positional=True,
            metavar="SOURCE",
            help="folders to scan: local paths, hdfs://…, s3a://… or s3://…",
        ),
    ]
    out: Annotated[
        str | None,
        Opt(metavar="PROFILE.json", help="write the profile here (default: print a summary only)"),
    ] = None
    html: Annotated[
        str | None, Opt(metavar="REPORT.html", help="write a self-contained HTML report")
    ] = None
    since: Annotated[
        str | None,
        Opt(
            metavar="PREVIOUS.json",
            help="an earlier profile of the same sources: adds the observed change rate "
            "(new/changed/deleted files and bytes per second, median changed size)",
        ),
    ] = None
    state: Annotated[
        str | None,
        Opt(
            metavar="DIR",
            help="keep each finished top-level folder here; a re-run with the same DIR lists "
            "only the folders not finished yet",
        ),
    ] = None
    small_file_size: Annotated[
        int,
        Opt(metavar=SIZE, parse=_size, help="files below this size are small (default 32MB)"),
    ] = 32 << 20
    threads: Annotated[
        int,
        Opt(
            help="top-level folders listed at once (local: at most one process per core; default 8)"
        ),
    ] = 8
    max_folders: Annotated[
        int | None,
        Opt(
            metavar="N",
            help="list at most N top-level folders in this run, then stop (exit 1; with "
            "--state a re-run continues)",
        ),
    ] = None
    s3_endpoint: Annotated[str | None, Opt(help="S3 endpoint URL (default: $AWS_ENDPOINT_URL)")] = (
        None
    )
    s3_region: Annotated[str | None, Opt(help="S3 region")] = None
    no_progress: Annotated[bool, Opt(help="no progress output")] = False


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``scan`` subcommand."""
    p = subparsers.add_parser(
        "scan",
        parents=[common],
        help="profile a source tree: size buckets, small files, objects per prefix, change rate",
        description=(
            "List SOURCE… once (the listing lakeshift files copies from), one top-level folder "
            "per task (threads; processes for local trees), and fold it into a profile: files "
            "and bytes per size bucket, the folders with most small files, objects per "
            "top-level prefix and, with --since, the change rate. Feed it to 'lakeshift plan "
            "PLAN --estimate --scan PROFILE.json'. Exit 0 ok, 1 if a folder could not be "
            "listed (or --max-folders stopped early), 2 on bad input (one line: lakeshift "
            "scan: error: <what>)."
        ),
    )
    ScanArgs.add_arguments(p)
    p.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    """Run the scan, write the outputs, print a summary."""
    from lakeshift.ops import scan
    from lakeshift.sources.fs import S3Options, resolve

    args = ScanArgs.from_namespace(ns)
    assert isinstance(args, ScanArgs)
    if args.threads < 1:
        raise UsageError(f"--threads: expected at least 1, found {args.threads}")
    if args.max_folders is not None and args.max_folders < 0:
        raise UsageError(f"--max-folders: expected 0 or more, found {args.max_folders}")
    since = scan.load_profile(args.since) if args.since else None
    s3 = S3Options(args.s3_endpoint, args.s3_region)
    result = scan.run_scan(
        args.sources,
        small_file_size=args.small_file_size,
        state=args.state,
        since=since,
        threads=args.threads,
        max_folders=args.max_folders,
        resolve_source=lambda uri: resolve(uri, s3),
        progress=not args.no_progress,
    )
    print(
        f"lakeshift scan: listed {len(result.listed)} top-level folders"
        + (f", {len(result.resumed)} taken from {args.state}" if args.state else ""),
        file=sys.stderr,
    )
    if result.profile is None:
        print(
            f"lakeshift scan: stopped after --max-folders {args.max_folders}: {result.left} "
            f"folders left" + ("; re-run with the same --state to continue" if args.state else ""),
            file=sys.stderr,
        )
        return 1
    if args.out:
        _write(args.out, json.dumps(result.profile, separators=(",", ":")))
    if args.html:
        from lakeshift.ops.report import render_html

        _write(args.html, render_html(result.profile))
    print("\n".join(scan.summary_lines(result.profile)))
    return 0


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write ({os.strerror(exc.errno or 0).lower()}): {path}") from exc
