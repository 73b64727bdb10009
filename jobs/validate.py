"""spark-submit entry point for validation: as `lakeshift validate` (or `repair` first)."""

from __future__ import annotations

import sys

from lakeshift.cli import main


def run(argv: list[str]) -> int:
    """Run ``lakeshift validate`` with ``argv`` (or ``repair`` when argv[0] says so)."""
    if argv[:1] == ["repair"]:
        return main(argv)
    return main(["validate", *argv])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
