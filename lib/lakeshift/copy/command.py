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
from typing import Any

from lakeshift.config.base import load_model, validate_model
from lakeshift.copy.spec import CopySpec, RewriteRule
from lakeshift.errors import UsageError


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``copy`` subcommand."""
    p = subparsers.add_parser(
        "copy",
        parents=[common],
        help="bulk copy lake tables (Parquet/ORC/CSV/JSON/Delta) into Delta or Parquet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", nargs="?", help="source path or FORMAT:PATH (any Hadoop URI)")
    p.add_argument("target", nargs="?", help="target location")
    p.add_argument("--config", help="YAML file with a CopySpec (one or more tables)")
    p.add_argument("--source-format", choices=["parquet", "orc", "csv", "json", "delta"])
    p.add_argument(
        "--source-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="reader option (repeatable), e.g. sep=;",
    )
    p.add_argument("--source-schema", help="DDL schema for CSV/JSON sources")
    p.add_argument("--format", dest="target_format", choices=["delta", "parquet"], default=None)
    p.add_argument(
        "--partition-by",
        help="comma-separated target partition columns ('' = none; "
        "default: the source's Hive partitions)",
    )
    p.add_argument("--include", action="append", default=[], metavar="GLOB")
    p.add_argument("--exclude", action="append", default=[], metavar="GLOB")
    p.add_argument("--target-file-size", help="output file size to aim for (default 128MB)")
    p.add_argument("--chunk-size", help="input bytes per chunk (default 1GB)")
    p.add_argument("--run-id", help="resume key (default: from source, target and run date)")
    p.add_argument("--mode", choices=["append", "overwrite"], default=None)
    p.add_argument("--rewrite", action="append", default=[], metavar="OLD=NEW")
    p.add_argument("--register-table", metavar="DB.NAME")
    p.add_argument("--dry-run", action="store_true", help="print the chunk plan; write nothing")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="write a JSON summary")
    p.add_argument("--no-progress", action="store_true", help="no progress output")
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
