"""Hidden change columns shared by change sources, the reducer and the apply sinks.

Every change source turns its events into a *change frame*: the target's data columns plus

* ``_lakeshift_ts`` (``bigint``): event time — a Delta commit version, a MongoDB cluster time
  packed as ``seconds << 32 | increment``, or an update-time watermark in microseconds;
* ``_lakeshift_ord`` (``string``): ordinal that breaks ties between events of the same time,
  compared byte-wise (a MongoDB resume token's hex ``_data``, which sorts in stream order, or a
  zero-padded number);
* ``_lakeshift_deleted`` (``boolean``): the event deletes the key (data columns are null).

The per-key version is the pair ``(_lakeshift_ts, _lakeshift_ord)``. Targets keep the same three
columns so every apply is version-guarded: an event changes a key only if it is newer than what
the target holds. A target row whose version is null (written by the bulk copy before the sync
start point) is older than every event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

TS = "_lakeshift_ts"
ORD = "_lakeshift_ord"
DELETED = "_lakeshift_deleted"
HIDDEN = (TS, ORD, DELETED)
HIDDEN_DDL = f"{TS} BIGINT, {ORD} STRING, {DELETED} BOOLEAN"

ORD_WIDTH = 20


def pad_ord(value: int) -> str:
    """A non-negative integer ordinal as a fixed-width string that sorts numerically.

    Example:
        >>> pad_ord(7)
        '00000000000000000007'
    """
    return str(value).rjust(ORD_WIDTH, "0")


def pad_ord_col(col: Column) -> Column:
    """Spark version of :func:`pad_ord` for an integral column."""
    from pyspark.sql import functions as F

    return F.lpad(col.cast("string"), ORD_WIDTH, "0")


def newer_sql(src: str = "s", tgt: str = "t") -> str:
    """SQL condition: the event ``src`` is newer than the target row ``tgt`` (or it has no version).

    Example:
        >>> newer_sql()[:40]
        't._lakeshift_ts IS NULL OR s._lakeshift_'
    """
    return (
        f"{tgt}.{TS} IS NULL OR {src}.{TS} > {tgt}.{TS} OR "
        f"({src}.{TS} = {tgt}.{TS} AND {src}.{ORD} > coalesce({tgt}.{ORD}, ''))"
    )


def live_rows(df: DataFrame) -> DataFrame:
    """The rows a reader of the target should see: tombstones dropped, hidden columns removed."""
    from pyspark.sql import functions as F

    out = df
    if DELETED in df.columns:
        out = out.where(~F.coalesce(F.col(DELETED), F.lit(False)))
    return out.drop(*[c for c in HIDDEN if c in df.columns])
