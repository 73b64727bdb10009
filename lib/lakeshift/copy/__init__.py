"""Partitioned bulk copy of lake tables into Delta or Parquet: plan, compaction, chunk ledger.

Example:
    >>> from lakeshift.copy import TableCopy, copy_table  # doctest: +SKIP
    >>> table = TableCopy(source="/lake/events", target="/delta/events")
    >>> copy_table(spark, table)  # doctest: +SKIP
"""

from __future__ import annotations

from lakeshift.copy.runner import CopyResult, copy_table
from lakeshift.copy.spec import CopySpec, RewriteRule, TableCopy

__all__ = ["CopyResult", "CopySpec", "RewriteRule", "TableCopy", "copy_table"]
