"""Reduce a batch of change events to the latest event per key (Spark built-ins only)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lakeshift.changeframe import DELETED, ORD, TS
from lakeshift.errors import UsageError
from lakeshift.spark import col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def latest_per_key(df: DataFrame, keys: Sequence[str]) -> DataFrame:
    """Keep, for each key, only the newest event by ``(_lakeshift_ts, _lakeshift_ord)``.

    Ties on the full version (which real sources never produce) go to the delete, so the result
    is deterministic. Uses ``max_by`` over a struct: one aggregation, no window sort.

    Args:
        df: a change frame (data columns plus the hidden change columns).
        keys: the key columns.

    Returns:
        A change frame with at most one row per key, same columns and order as ``df``.

    Example:
        >>> latest_per_key(events, ["id"])  # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    missing = [c for c in (*keys, TS, ORD, DELETED) if c not in df.columns]
    if not keys or missing:
        raise UsageError(
            f"latest_per_key: expected key and change columns, missing {missing or keys}"
        )
    others = [c for c in df.columns if c not in keys]
    row = F.struct(*[col(c) for c in others])
    version = F.struct(F.col(TS), F.col(ORD), F.coalesce(F.col(DELETED), F.lit(False)))
    picked = f"__latest_{uuid.uuid4().hex[:8]}"
    reduced = df.groupBy(*[col(k) for k in keys]).agg(F.max_by(row, version).alias(picked))
    return reduced.select(*[col(c) if c in keys else col(picked, c) for c in df.columns])
