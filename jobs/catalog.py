"""spark-submit entry point for catalog changes (the cut-over's switch): as `lakeshift catalog`."""

from __future__ import annotations

import sys

from lakeshift.cli import main


def run(argv: list[str]) -> int:
    """Run ``lakeshift catalog`` with ``argv``."""
    return main(["catalog", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
