"""``lakeshift copy``: bulk copy of lake tables into Delta or Parquet.

Examples::

    lakeshift copy s3a://lake/events s3a://delta/events --partition-by dt --exclude 'dt=${ds}'
    lakeshift copy csv:/landing/orders /lake/orders --format parquet --dry-run
    lakeshift copy --config conf/examples/copy.yaml --json summary.json
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Annotated, Any, Literal

from pydantic import Field

from lakeshift.config.base import load_model, validate_model
from lakeshift.contracts import CommonArgs, Opt
from lakeshift.copy.spec import CopySpec, RewriteRule
from lakeshift.errors import UsageError


class CopyArgs(CommonArgs):
    """The arguments of ``lakeshift copy`` (and of ``jobs/bulk_copy.py``)."""

    COMMAND = ("copy",)
    JOB = "jobs/bulk_copy.py"

    source: Annotated[
        str | None, Opt(positional=True, help="source path or FORMAT:PATH (any Hadoop URI)")
    ] = None
    target: Annotated[str | None, Opt(positional=True, help="target location")] = None
    config: Annotated[str | None, Opt(help="YAML file with a CopySpec (one or more tables)")] = None
    source_format: Annotated[
        Literal["parquet", "orc", "csv", "json", "delta"] | None, Opt(help="source format")
    ] = None
    source_option: Annotated[
        list[str], Opt(metavar="KEY=VALUE", help="reader option (repeatable), e.g. sep=;")
    ] = Field(default_factory=list)
    source_schema: Annotated[str | None, Opt(help="DDL schema for CSV/JSON sources")] = None
    target_format: Annotated[
        Literal["delta", "parquet"] | None, Opt("--format", help="target format (default delta)")
    ] = None
    partition_by: Annotated[
        str | None,
        Opt(
            help="comma-separated target partition columns ('' = none; "
            "default: the source's Hive partitions)"
        ),
    ] = None
    include: Annotated[list[str], Opt(metavar="GLOB", help="only these partitions/files")] = Field(
        default_factory=list
    )
    exclude: Annotated[list[str], Opt(metavar="GLOB", help="leave these out")] = Field(
        default_factory=list
    )
    target_file_size: Annotated[
        str | None, Opt(help="output file size to aim for (default 128MB)")
    ] = None
    chunk_size: Annotated[str | None, Opt(help="input bytes per chunk (default 1GB)")] = None
    run_id: Annotated[
        str | None, Opt(help="resume key (default: from source, target and run date)")
    ] = None
    mode: Annotated[Literal["append", "overwrite"] | None, Opt(help="write mode")] = None
    rewrite: Annotated[list[str], Opt(metavar="OLD=NEW", help="rewrite path prefixes")] = Field(
        default_factory=list
    )
    register_table: Annotated[
        str | None, Opt(metavar="DB.NAME", help="register the target in the catalog")
    ] = None
    dry_run: Annotated[bool, Opt(help="print the chunk plan; write nothing")] = False
    json_out: Annotated[str | None, Opt("--json", metavar="FILE", help="write a JSON summary")] = (
        None
    )
    no_progress: Annotated[bool, Opt(help="no progress output")] = False


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``copy`` subcommand."""
    p = subparsers.add_parser(
        "copy",
        parents=[common],
        help="bulk copy lake tables (Parquet/ORC/CSV/JSON/Delta) into Delta or Parquet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    CopyArgs.add_arguments(p)
    p.set_defaults(func=run)


def _key_values(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag}: expected KEY=VALUE, found {item!r}")
        out[key] = value
    return out


def spec_from_args(args: argparse.Namespace) -> CopySpec:
    """The :class:`CopySpec` of the command line (``--config`` or positional SOURCE TARGET).

    Raises:
        UsageError: missing or conflicting arguments.
        ConfigError: the config file or a value is invalid.
    """
    from lakeshift.runtime import run_date_from_args

    table_flags = {
        "source_format": args.source_format,
        "source_schema": args.source_schema,
        "format": args.target_format,
        "target_file_size": args.target_file_size,
        "chunk_size": args.chunk_size,
        "run_id": args.run_id,
        "mode": args.mode,
        "register_table": args.register_table,
    }
    if args.config:
        if args.source or args.target:
            raise UsageError("copy: give either --config FILE or SOURCE TARGET, not both")
        given = [k for k, v in table_flags.items() if v is not None]
        if (
            given
            or args.include
            or args.exclude
            or args.partition_by is not None
            or args.source_option
        ):
            raise UsageError(
                "copy --config: table options belong in the config file, found "
                f"{', '.join(given) or 'include/exclude/partition-by/source-option'} "
                "on the command line"
            )
        spec = load_model(args.config, CopySpec, run_date=run_date_from_args(args))
    else:
        if not (args.source and args.target):
            raise UsageError("copy: expected SOURCE TARGET or --config FILE")
        table: dict[str, Any] = {k: v for k, v in table_flags.items() if v is not None}
        table.update(source=args.source, target=args.target)
        if args.include:
            table["include"] = args.include
        if args.exclude:
            table["exclude"] = args.exclude
        if args.partition_by is not None:
            table["partition_by"] = [c.strip() for c in args.partition_by.split(",") if c.strip()]
        if args.source_option:
            table["source_options"] = _key_values(args.source_option, "--source-option")
        spec = validate_model(CopySpec, {"tables": [table]}, "copy")
    extra: list[RewriteRule] = []
    for item in args.rewrite:
        try:
            extra.append(RewriteRule.parse(item))
        except ValueError as exc:
            raise UsageError(f"--rewrite: {exc}") from exc
    if extra:
        spec = spec.model_copy(update={"rewrite": [*spec.rewrite, *extra]})
    return spec


def run(args: argparse.Namespace) -> int:
    """Run ``lakeshift copy``; 0 when every table copied (or was planned)."""
    from lakeshift.copy.progress import make_progress
    from lakeshift.copy.runner import copy_table
    from lakeshift.runtime import profile_from_args, run_date_from_args
    from lakeshift.spark import check_filesystems, session

    spec = spec_from_args(args)  # config errors surface before Spark starts
    run_date = run_date_from_args(args)
    summaries = []
    profile = profile_from_args(args, "lakeshift-copy")
    check_filesystems(profile, [loc for t in spec.tables for loc in (t.source, t.target)])
    with session(profile) as spark:
        for table in spec.tables:
            progress = make_progress(enabled=not (args.no_progress or args.dry_run))
            result = copy_table(
                spark,
                table,
                run_date=run_date,
                rewrite=spec.rewrite,
                dry_run=args.dry_run,
                progress=progress,
            )
            summaries.append(result.to_dict())
            if args.dry_run:
                print(result.plan.describe())
                print(f"  run {result.run_id}: dry run, nothing written")
            else:
                t = result.to_dict()["totals"]
                print(
                    f"copied {result.source} -> {result.target} (run {result.run_id}): "
                    f"{t['committed']} chunks committed, {t['skipped']} skipped, "
                    f"{t['rows_written']} rows, files {t['files_in']} -> {t['files_out']}, "
                    f"{result.seconds:.1f}s"
                )
                if result.registered:
                    print(f"  registered {result.registered} in {result.catalog}")
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump({"tables": summaries}, fh, indent=1)
    sys.stdout.flush()
    return 0
