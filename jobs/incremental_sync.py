"""spark-submit entry point for live sync: same arguments as `lakeshift sync`."""

from __future__ import annotations

import sys

from lakeshift.cli import main


def run(argv: list[str]) -> int:
    """Run ``lakeshift sync`` with ``argv``."""
    return main(["sync", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
