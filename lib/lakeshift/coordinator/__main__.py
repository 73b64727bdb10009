"""``python -m lakeshift.coordinator COMMAND …``: the coordinator's commands on their own.

Same behaviour and exit codes as ``lakeshift COMMAND``; handy on a coordinator host that only
needs these commands (and independent of the other subcommands' imports).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from lakeshift.cli import _Parser, common_options
from lakeshift.coordinator import command
from lakeshift.errors import LakeshiftError
from lakeshift.log import redact, setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the coordinator subcommand."""
    parser = _Parser(prog="lakeshift", description="lakeshift coordinator commands")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    command.register(sub, common_options())
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.log_level)
    try:
        return int(args.func(args))
    except LakeshiftError as exc:
        print(f"lakeshift {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"lakeshift {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
