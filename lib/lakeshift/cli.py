"""The ``lakeshift`` command. Subcommands call the same functions as ``jobs/*.py``.

Exit codes: 0 success (or a passing validation), 1 mismatch or job failure, 2 usage or
configuration error. Each error is printed as one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from lakeshift import __version__
from lakeshift.contracts import CommonArgs
from lakeshift.errors import LakeshiftError
from lakeshift.log import redact, setup_logging

log = logging.getLogger(__name__)

# Each module exposes ``register(subparsers, common)`` and adds one or more subcommands whose
# parsers set ``func(args) -> int``.
COMMAND_MODULES: list[str] = [
    "lakeshift.copy.command",
    "lakeshift.catalog.command",
    "lakeshift.files.command",
    "lakeshift.ops.command",
    "lakeshift.nosql.command",
    "lakeshift.coordinator.command",
    "lakeshift.sync.command",
    "lakeshift.validate.command",
]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts (run date, Spark master, extra conf, logging)."""
    common = argparse.ArgumentParser(add_help=False)
    CommonArgs.add_arguments(common.add_argument_group("common options"), common=True)  # type: ignore[arg-type]
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered subcommand."""
    parser = _Parser(
        prog="lakeshift",
        description="Migrate data at petabyte scale with Spark, without downtime, and prove it.",
    )
    parser.add_argument("--version", action="version", version=f"lakeshift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    common = common_options()
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the exit code."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except LakeshiftError as exc:
        print(f"lakeshift {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a JVM error that only means "a connector is missing"
        from lakeshift.spark import friendly_java_error

        friendly = friendly_java_error(exc)
        if friendly is None:
            raise
        print(f"lakeshift {args.command}: error: {redact(str(friendly))}", file=sys.stderr)
        return friendly.exit_code
    except KeyboardInterrupt:
        print(f"lakeshift {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
