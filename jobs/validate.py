"""spark-submit entry point for validation: same arguments as `lakeshift validate`."""

from __future__ import annotations

import sys

from lakeshift.cli import main


def run(argv: list[str]) -> int:
    """Run ``lakeshift validate`` with ``argv``."""
    return main(["validate", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
