"""``lakeshift catalog show|register|switch|rollback|finalize``: catalog tables and the cut-over.

Examples::

    lakeshift catalog show db.sales --metastore /data/metastore
    lakeshift catalog register db.sales_new s3a://lake/sales --format delta --metastore thrift://hms:9083
    lakeshift catalog switch db.sales --to s3a://lake/sales --format delta --metastore thrift://hms:9083
    lakeshift catalog rollback db.sales --metastore thrift://hms:9083
    lakeshift catalog finalize db.sales --metastore thrift://hms:9083

``switch`` points the table at its migrated copy and keeps the old definition (partitions
included) as ``NAME__lakeshift_old``; ``rollback`` returns to it; ``finalize`` drops it (data is
never deleted: only external tables are switched).
"""

from __future__ import annotations

import argparse
import json
from typing import Annotated, Any, Literal

from lakeshift.contracts import CommonArgs, Opt
from lakeshift.errors import UsageError

ACTIONS = ("show", "register", "switch", "rollback", "finalize")
Action = Literal["show", "register", "switch", "rollback", "finalize"]


class CatalogArgs(CommonArgs):
    """The arguments of ``lakeshift catalog`` (and of ``jobs/catalog.py``)."""

    COMMAND = ("catalog",)
    JOB = "jobs/catalog.py"

    action: Annotated[Action, Opt(positional=True, help="what to do")]
    table: Annotated[str, Opt(positional=True, help="catalog table, db.name")]
    location: Annotated[
        str | None, Opt(positional=True, help="register: the table's data location")
    ] = None
    to: Annotated[str | None, Opt(metavar="LOCATION", help="switch: the migrated copy")] = None
    table_format: Annotated[
        Literal["delta", "parquet"], Opt("--format", help="the table's format (default delta)")
    ] = "delta"
    json_out: Annotated[
        str | None, Opt("--json", metavar="FILE", help="write the result as JSON")
    ] = None


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``catalog`` subcommand."""
    p = subparsers.add_parser(
        "catalog",
        parents=[common],
        help="show, register or switch catalog tables (the cut-over's metastore step)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    CatalogArgs.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``lakeshift catalog``."""
    from lakeshift.runtime import profile_from_args
    from lakeshift.sinks import catalog
    from lakeshift.spark import session

    if args.action == "switch" and not args.to:
        raise UsageError("catalog switch: --to LOCATION is required")
    if args.action == "register" and not args.location:
        raise UsageError("catalog register: LOCATION is required")
    if args.action not in ("register",) and args.location:
        raise UsageError(f"catalog {args.action}: unexpected LOCATION {args.location!r}")
    if len(args.table.split(".")) != 2 or not all(args.table.split(".")):
        raise UsageError(f"catalog: expected a table name like db.name, found {args.table!r}")
    out: dict[str, Any] = {"action": args.action, "table": args.table}
    with session(profile_from_args(args, f"lakeshift-catalog-{args.action}")) as spark:
        where = catalog.describe_catalog(spark)
        out["catalog"] = where
        if args.action == "show":
            info = catalog.table_info(spark, args.table)
            out["info"] = info.to_dict() if info else None
            print(
                f"{args.table}: "
                + (_describe(info.to_dict()) if info else "no such table")
                + f" (in {where})"
            )
        elif args.action == "register":
            info = catalog.register_table(spark, args.table, args.location, args.table_format)
            out["info"] = info.to_dict()
            print(f"registered {args.table} in {where}: {_describe(info.to_dict())}")
        elif args.action == "switch":
            res = catalog.switch_table(spark, args.table, args.to, args.table_format)
            out.update(res.to_dict())
            was = _describe(res.before.to_dict()) if res.before else "absent"
            verb = "switched" if res.changed else "already on the target:"
            print(f"{verb} {args.table} in {where}: {_describe(res.after.to_dict())} (was {was})")
        elif args.action == "rollback":
            res = catalog.rollback_switch(spark, args.table)
            out.update(res.to_dict())
            print(f"rolled back {args.table} in {where}: {_describe(res.after.to_dict())}")
        else:
            dropped = catalog.finalize_switch(spark, args.table)
            out["dropped"] = catalog.backup_name(args.table) if dropped else None
            print(
                f"finalized {args.table}: dropped {catalog.backup_name(args.table)}"
                if dropped
                else f"finalized {args.table}: no earlier definition was kept"
            )
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=1, sort_keys=True)
    return 0


def _describe(info: dict[str, Any]) -> str:
    parts = f", {info['partitions']} partitions" if info.get("partitions") else ""
    return f"{info['provider']} at {info['location']}{parts}"
