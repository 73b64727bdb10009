"""Validation: prove that a target table holds the same data as its source.

normalise → fingerprint → buckets → diff → tolerance → report. Entry points:

* :func:`validate_tables` — two sources (spec strings or Source objects), for jobs and other
  components;
* :func:`compare` — two DataFrames, for notebooks;
* ``lakeshift validate`` — the CLI (see ``docs/validate.md``).

Example:
    >>> from lakeshift.validate import compare
    >>> res = compare(src, dst, keys=["id"], tolerances={"amount": "abs:0.01"})  # doctest: +SKIP
    >>> res.passed  # doctest: +SKIP
    True
"""

from __future__ import annotations

from lakeshift.validate.api import compare, validate_tables
from lakeshift.validate.options import ColumnRule, ValidateOptions, parse_tolerance
from lakeshift.validate.result import ValidationResult

__all__ = [
    "ColumnRule",
    "ValidateOptions",
    "ValidationResult",
    "compare",
    "parse_tolerance",
    "validate_tables",
]
