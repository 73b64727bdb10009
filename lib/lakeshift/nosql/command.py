"""``lakeshift profile`` and ``lakeshift transform`` (MongoDB → SQL).

``lakeshift profile SOURCE [--out mapping.yaml]`` scans every document (distributed) and prints
a JSON profile; with ``--out`` it also writes a proposed mapping to edit.

``lakeshift transform --config FILE [--create|--replace|--append]`` migrates documents into the
target and prints a JSON summary (documents read, rows per table, quarantined, seconds). Exit 1
when the invariant ``documents in = loaded + quarantined`` fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Annotated, Any, Literal

from lakeshift.contracts import CommonArgs, Opt


class TransformArgs(CommonArgs):
    """The arguments of ``lakeshift transform`` (and of ``jobs/nosql_to_sql.py``)."""

    COMMAND = ("transform",)
    JOB = "jobs/nosql_to_sql.py"

    config: Annotated[str, Opt(help="transform YAML (source, mapping, target)")]
    mode: Annotated[
        Literal["create", "replace", "append"] | None,
        Opt(
            switches=(
                ("create", "--create", "create the tables; fail if one exists"),
                ("replace", "--replace", "drop and re-create the tables"),
                (
                    "append",
                    "--append",
                    "create missing tables and append (resume a run with the same run_id)",
                ),
            )
        ),
    ] = None
    run_id: Annotated[str | None, Opt(help="run id (default: the config's, else a new one)")] = None
    summary: Annotated[str | None, Opt(help="also write the JSON summary to this file")] = None


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``profile`` and ``transform`` subcommands."""
    p = subparsers.add_parser(
        "profile",
        parents=[common],
        help="full-scan profile of MongoDB documents; propose a mapping",
        description="Scan every document of SOURCE (mongodump:PATH, extjson:PATH, mongodb://…) "
        "and report per field path the BSON types, null/missing counts, lengths, decimal "
        "scales, array shapes and dynamic-key sub-documents.",
    )
    p.add_argument("source", help="source spec: mongodump:PATH, extjson:PATH or mongodb://HOST/DB")
    p.add_argument("--out", help="write the proposed mapping YAML here")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="source option (e.g. partitions=8)",
    )
    p.add_argument(
        "--json-depth",
        type=int,
        default=6,
        help="nesting depth beyond which sub-documents become JSON columns (default 6)",
    )
    p.set_defaults(func=run_profile)

    t = subparsers.add_parser(
        "transform",
        parents=[common],
        help="migrate MongoDB documents into SQL tables (PostgreSQL, MariaDB, SQLite, Delta)",
        description="Read documents, map them with the mapping, load tables and quarantine, "
        "check documents in = loaded + quarantined, print a JSON summary.",
    )
    TransformArgs.add_arguments(t)
    t.set_defaults(func=run_transform_cmd)


def _options(items: list[str]) -> dict[str, str]:
    from lakeshift.errors import UsageError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--option: expected KEY=VALUE, found {item!r}")
        out[key.strip()] = value
    return out


def run_profile(args: argparse.Namespace) -> int:
    """Entry point of ``lakeshift profile``."""
    from lakeshift.nosql.profile import profile_documents, propose_mapping, write_mapping
    from lakeshift.runtime import profile_from_args
    from lakeshift.sources.factory import from_spec
    from lakeshift.spark import session

    source = from_spec(args.source, _options(args.option))
    with session(profile_from_args(args, "lakeshift-profile")) as spark:
        report = profile_documents(spark, source.read(spark))
    if args.out:
        write_mapping(propose_mapping(report, json_depth=args.json_depth), args.out)
        print(f"profile: proposed mapping written to {args.out}", file=sys.stderr)
    print(json.dumps(report.to_json(), indent=2, sort_keys=True, default=str))
    return 0


def run_transform_cmd(args: argparse.Namespace) -> int:
    """Entry point of ``lakeshift transform``."""
    from lakeshift.nosql.transform import load_config, run_transform
    from lakeshift.runtime import profile_from_args, run_date_from_args
    from lakeshift.spark import session

    cfg, mapping = load_config(args.config, run_date=run_date_from_args(args))
    if args.run_id:
        cfg.run_id = args.run_id
    with session(profile_from_args(args, "lakeshift-transform")) as spark:
        summary = run_transform(spark, cfg, mapping, mode=args.mode)
    text = json.dumps(summary, indent=2, sort_keys=True, default=str)
    if args.summary:
        with open(args.summary, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    print(text)
    return 0 if summary.get("ok") else 1
