"""spark-submit entry point for the table bulk copy: same arguments as `lakeshift copy`."""

from __future__ import annotations

import sys

from lakeshift.cli import main


def run(argv: list[str]) -> int:
    """Run ``lakeshift copy`` with ``argv``."""
    return main(["copy", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
