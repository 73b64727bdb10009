"""spark-submit entry point for the file-level copy: same arguments as `lakeshift files`."""

from __future__ import annotations

import sys

from lakeshift.cli import main


def run(argv: list[str]) -> int:
    """Run ``lakeshift files`` with ``argv``."""
    return main(["files", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
