"""Helpers for the copy tests: an order-independent row fingerprint and a small-file lake.

The fingerprint is computed here with Spark SQL only (count + sums of the 32-bit halves of two
xxhash64 values over all columns cast to strings, columns in name order), independently of
lakeshift's code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def fingerprint(df: Any) -> tuple[int, ...]:
    """(rows, four half-hash sums) of ``df``; equal for equal multisets of rows."""
    from pyspark.sql import functions as F

    quoted = ["`" + c.replace("`", "``") + "`" for c in sorted(df.columns)]
    cols = [F.coalesce(F.col(c).cast("string"), F.lit("\u2400")) for c in quoted]
    h1 = F.xxhash64(*cols)
    h2 = F.xxhash64(F.lit("second-seed"), *cols)
    mask = F.lit(0xFFFFFFFF).cast("long")
    row = df.agg(
        F.count(F.lit(1)),
        F.sum(h1.bitwiseAND(mask)),
        F.sum(F.shiftright(h1, 32)),
        F.sum(h2.bitwiseAND(mask)),
        F.sum(F.shiftright(h2, 32)),
    ).first()
    return tuple(int(v or 0) for v in row)


def write_small_file_lake(
    root: Path, partitions: int, files_per_partition: int, rows_per_file: int
) -> int:
    """Write a Hive-partitioned Parquet lake of many small files with pyarrow; return rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    for p in range(partitions):
        folder = root / f"region=r{p}"
        folder.mkdir(parents=True)
        for i in range(files_per_partition):
            ids = list(range(n, n + rows_per_file))
            table = pa.table(
                {
                    "id": pa.array(ids, pa.int64()),
                    "name": pa.array([f"name-{x}-{x * 7919 % 1000}" for x in ids]),
                    "amount": pa.array([x * 0.25 for x in ids], pa.float64()),
                }
            )
            pq.write_table(table, folder / f"part-{i:05d}.parquet")
            n += rows_per_file
    return n
