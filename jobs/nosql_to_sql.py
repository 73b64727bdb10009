"""spark-submit entry point for MongoDB → SQL: same arguments as `lakeshift transform`."""

from __future__ import annotations

import sys

from lakeshift.cli import main


def run(argv: list[str]) -> int:
    """Run ``lakeshift transform`` with ``argv`` (or ``profile`` when argv[0] says so)."""
    if argv[:1] == ["profile"]:
        return main(argv)
    return main(["transform", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
