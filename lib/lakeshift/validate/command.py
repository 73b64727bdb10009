r"""``lakeshift validate`` and ``lakeshift repair``.

Examples::

    lakeshift validate parquet:/landing/orders delta:/lake/orders --keys order_id \\
        --tolerance amount=abs:0.01 --tolerance ts=skew:1ms --threshold 0.001 \\
        --json out/v.json --html out/v.html --junit out/v.xml --results delta:/lake/_validation
    lakeshift validate --config conf/examples/validate.yaml
    lakeshift repair parquet:/landing/orders delta:/lake/orders --keys order_id

Exit codes: 0 every table passes, 1 a table fails (deviation over its threshold), 2 usage or
configuration error.
"""

from __future__ import annotations

import argparse
import logging
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from lakeshift.config.base import validate_model
from lakeshift.contracts import CommonArgs, Opt
from lakeshift.errors import LakeshiftError, UsageError
from lakeshift.validate.config import Outputs, TableSpec, load_config
from lakeshift.validate.options import ValidateOptions, parse_tolerance
from lakeshift.validate.result import ValidationResult

log = logging.getLogger(__name__)


class ValidateArgs(CommonArgs):
    """The arguments of ``lakeshift validate`` (and of ``jobs/validate.py``)."""

    COMMAND = ("validate",)
    JOB = "jobs/validate.py"

    left: Annotated[
        str | None,
        Opt(positional=True, help="source spec, e.g. parquet:/src/t or jdbc:postgresql://…"),
    ] = None
    right: Annotated[str | None, Opt(positional=True, help="target spec, e.g. delta:/lake/t")] = (
        None
    )
    keys: Annotated[str | None, Opt(help="comma-separated key columns (default: keyless)")] = None
    tolerance: Annotated[
        list[str],
        Opt(
            metavar="COL=RULE",
            help="abs:N, rel:N, skew:1ms, digits:N, trim, rtrim, casefold, nfc, set, unordered "
            "(repeatable; COL '*' sets the default rule)",
        ),
    ] = Field(default_factory=list)
    threshold: Annotated[float | None, Opt(help="allowed deviation rate (default 0)")] = None
    rename: Annotated[
        list[str], Opt(metavar="OLD=NEW", help="rename a left column to the right name")
    ] = Field(default_factory=list)
    exclude: Annotated[
        str | None, Opt(help="comma-separated columns left out of the comparison")
    ] = None
    cast: Annotated[
        list[str], Opt(metavar="COL=TYPE", help="cast a column on both sides before comparing")
    ] = Field(default_factory=list)
    filter: Annotated[str | None, Opt(help="SQL row filter applied to both sides")] = None
    decimal_scale: Annotated[int | None, Opt(help="agreed scale of exact numerics")] = None
    timestamp_precision: Annotated[
        Literal["seconds", "millis", "micros"] | None, Opt(help="timestamp precision compared")
    ] = None
    buckets: Annotated[int | None, Opt(help="number of key-hash buckets")] = None
    samples: Annotated[int | None, Opt(help="differences carried into reports (default 20)")] = None
    aggregates: Annotated[Literal["auto", "on", "off"] | None, Opt(help="aggregate pre-check")] = (
        None
    )
    partition_by: Annotated[
        str | None, Opt(help="comma-separated columns with per-partition verdicts")
    ] = None
    expectations: Annotated[
        str | None, Opt(metavar="FILE", help="great-expectations YAML run on the target")
    ] = None
    name: Annotated[str | None, Opt(help="table name in reports (default: the target spec)")] = None
    config: Annotated[str | None, Opt(help="YAML with defaults/templates/tables (many tables)")] = (
        None
    )
    json_out: Annotated[str | None, Opt("--json", metavar="FILE", help="write the JSON report")] = (
        None
    )
    html: Annotated[str | None, Opt(metavar="FILE", help="write the HTML report")] = None
    junit: Annotated[str | None, Opt(metavar="FILE", help="write JUnit XML")] = None
    results: Annotated[
        str | None, Opt(metavar="delta:PATH", help="append to Delta result tables")
    ] = None


class RepairArgs(ValidateArgs):
    """The arguments of ``lakeshift repair`` (``jobs/validate.py repair …``)."""

    COMMAND = ("repair",)

    def job_argv(self) -> list[str]:
        """``repair`` first: the validate entry point runs both commands."""
        return ["repair", *self.argv()]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``validate`` and ``repair`` subcommands."""
    p = subparsers.add_parser(
        "validate",
        parents=[common],
        help="compare a source and a target table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ValidateArgs.add_arguments(p)
    p.set_defaults(func=run)
    r = subparsers.add_parser(
        "repair",
        parents=[common],
        help="re-copy mismatched keys from source into a Delta target, then re-validate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    RepairArgs.add_arguments(r)
    r.set_defaults(func=run_repair)


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"{flag}: expected KEY=VALUE, found {item!r}")
        out[key.strip()] = value.strip()
    return out


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def options_from_args(args: argparse.Namespace) -> ValidateOptions:
    """The :class:`ValidateOptions` of the command-line flags.

    Raises:
        ConfigError: an invalid option value.
    """
    data: dict[str, Any] = {}
    columns: dict[str, Any] = {}
    for col, rule in _pairs(args.tolerance, "--tolerance").items():
        try:
            parsed = parse_tolerance(rule).model_dump(exclude_unset=True)
        except ValueError as exc:
            raise UsageError(f"--tolerance {col}={rule}: {exc}") from exc
        if col == "*":
            data["default"] = parsed
        else:
            columns[col] = parsed
    if columns:
        data["columns"] = columns
    if args.keys:
        data["keys"] = _csv(args.keys)
    if args.rename:
        data["rename"] = _pairs(args.rename, "--rename")
    if args.cast:
        data["casts"] = _pairs(args.cast, "--cast")
    if args.exclude:
        data["exclude"] = _csv(args.exclude)
    if args.partition_by:
        data["partition_by"] = _csv(args.partition_by)
    for name in (
        "threshold",
        "filter",
        "decimal_scale",
        "timestamp_precision",
        "buckets",
        "samples",
        "aggregates",
        "expectations",
    ):
        value = getattr(args, name)
        if value is not None:
            data[name] = value
    return validate_model(ValidateOptions, data, "command line")


def tables_from_args(args: argparse.Namespace) -> tuple[list[TableSpec], Outputs]:
    """The tables to validate and the outputs (``--config`` or LEFT RIGHT).

    Raises:
        UsageError: missing or conflicting arguments.
        ConfigError: the config file is invalid.
    """
    from lakeshift.runtime import run_date_from_args

    if args.config:
        if args.left or args.right:
            raise UsageError("give either --config FILE or LEFT RIGHT, not both")
        tables, outputs = load_config(args.config, run_date_from_args(args))
    else:
        if not (args.left and args.right):
            raise UsageError("expected LEFT and RIGHT table specs (or --config FILE)")
        opts = options_from_args(args)
        tables = [
            TableSpec(name=args.name or args.right, left=args.left, right=args.right, options=opts)
        ]
        outputs = Outputs()
    outputs = Outputs.model_validate(
        {
            "json": args.json_out or outputs.json_path,
            "html": args.html or outputs.html,
            "junit": args.junit or outputs.junit,
            "results": args.results or outputs.results,
        }
    )
    return tables, outputs


def _validate_one(spark: Any, spec: TableSpec, run_id: str) -> ValidationResult:
    from lakeshift.validate.api import validate_tables

    try:
        result = validate_tables(
            spark, spec.left, spec.right, spec.options, table=spec.name, run_id=run_id
        )
    except UsageError:
        raise
    except LakeshiftError as exc:
        result = ValidationResult(
            table=spec.name,
            left=spec.left,
            right=spec.right,
            keys=spec.options.keys,
            run_id=run_id,
            error=str(exc),
        )
        return result
    if spec.options.expectations:
        from lakeshift.sources.factory import from_spec
        from lakeshift.validate.expectations import run_expectations

        target = from_spec(spec.right).read(spark)
        result.expectations = run_expectations(target, spec.options.expectations)
        if not all(e.success for e in result.expectations):
            result.passed = False
    return result


def write_outputs(spark: Any, results: list[ValidationResult], outputs: Outputs) -> None:
    """Write every requested report."""
    from lakeshift.validate import reports

    if outputs.json_path:
        reports.write_json(results, outputs.json_path)
    if outputs.html:
        reports.write_html(results, outputs.html)
    if outputs.junit:
        reports.write_junit(results, outputs.junit)
    if outputs.results:
        reports.write_delta_results(spark, results, outputs.results)


def run(args: argparse.Namespace) -> int:
    """Validate every table; print summaries; write reports. Exit 0 pass, 1 fail."""
    from lakeshift.runtime import profile_from_args
    from lakeshift.spark import check_filesystems, session

    tables, outputs = tables_from_args(args)
    run_id = uuid.uuid4().hex
    results = []
    profile = profile_from_args(args, "lakeshift-validate")
    check_filesystems(profile, [loc for t in tables for loc in (t.left, t.right)])
    with session(profile) as spark:
        for spec in tables:
            result = _validate_one(spark, spec, run_id)
            print(result.summary(), flush=True)
            results.append(result)
        write_outputs(spark, results, outputs)
        for done in results:
            done.release()
    failed = [r.table for r in results if not r.passed]
    print(f"validate: {len(results) - len(failed)} of {len(results)} tables pass", flush=True)
    return 1 if failed else 0


def run_repair(args: argparse.Namespace) -> int:
    """Validate, repair the differing keys of a Delta target, re-validate. Exit 0 when repaired."""
    from lakeshift.runtime import profile_from_args
    from lakeshift.spark import session
    from lakeshift.validate.repair import repair_table

    tables, outputs = tables_from_args(args)
    results = []
    with session(profile_from_args(args, "lakeshift-repair")) as spark:
        for spec in tables:
            before, after = repair_table(
                spark, spec.left, spec.right, spec.options, table=spec.name
            )
            print(
                f"before repair:\n{before.summary()}\nafter repair:\n{after.summary()}", flush=True
            )
            results.append(after)
        write_outputs(spark, results, outputs)
        for done in results:
            done.release()
    return 0 if all(r.passed for r in results) else 1
