"""Demo: a small partitioned lake of a few hundred small files, copied into Delta by lakeshift.

Run with `make demo` (or `.venv/bin/python scripts/demo.py`). Everything is written under
demo-output/ (git-ignored). Prints the chunk plan, what was copied and a row-fingerprint check.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))


def make_lake(root: Path, days: int = 6, files_per_day: int = 50, rows_per_file: int = 12) -> int:
    """Hive-partitioned Parquet (dt=...) of days * files_per_day small files (pyarrow)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    for d in range(days):
        folder = root / f"dt=2026-01-{d + 1:02d}"
        folder.mkdir(parents=True)
        for i in range(files_per_day):
            ids = list(range(n, n + rows_per_file))
            pq.write_table(
                pa.table(
                    {
                        "order_id": pa.array(ids, pa.int64()),
                        "customer": pa.array([f"c{x % 97:03d}" for x in ids]),
                        "amount": pa.array([round(x * 1.17 % 500, 2) for x in ids], pa.float64()),
                    }
                ),
                folder / f"part-{i:04d}.parquet",
            )
            n += rows_per_file
    return n


def fingerprint(df):  # type: ignore[no-untyped-def]
    """count + sums of xxhash64 halves over all columns (order-independent), in Spark SQL."""
    from pyspark.sql import functions as F

    cols = [F.col(c).cast("string") for c in sorted(df.columns)]
    h = F.xxhash64(*cols)
    row = df.agg(
        F.count(F.lit(1)), F.sum(h.bitwiseAND(F.lit(0xFFFFFFFF))), F.sum(F.shiftright(h, 32))
    ).first()
    return tuple(int(v or 0) for v in row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "demo-output" / "copy"))
    args = parser.parse_args()

    from lakeshift.copy import TableCopy, copy_table
    from lakeshift.copy.progress import make_progress
    from lakeshift.spark import SparkProfile, session

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    lake, target = out / "lake", out / "delta" / "orders"
    rows = make_lake(lake)
    files = len(list(lake.rglob("*.parquet")))
    print(f"demo: wrote {rows} rows in {files} small Parquet files under {lake}")

    table = TableCopy(
        source=f"parquet:{lake}",
        target=str(target),
        target_file_size="32KB",  # tiny data, so a tiny target shows the compaction
        chunk_size="200KB",
        exclude=["dt=2026-01-06"],  # e.g. today's folder, still being written
    )
    profile = SparkProfile(master="local[2]", app_name="lakeshift-demo", shuffle_partitions=4)
    with session(profile) as spark:
        t0 = time.monotonic()
        plan = copy_table(spark, table, dry_run=True)
        print(plan.plan.describe())
        result = copy_table(spark, table, progress=make_progress())
        totals = result.to_dict()["totals"]
        print(
            f"demo: run {result.run_id}: {totals['committed']} chunks committed, "
            f"{totals['rows_written']} rows, files {totals['files_in']} -> {totals['files_out']}, "
            f"bytes {totals['bytes_in']} -> {totals['bytes_out']} in {time.monotonic() - t0:.1f}s"
        )
        again = copy_table(spark, table)
        print(
            f"demo: rerun of the same run: {again.count('skipped')} chunks skipped, 0 rows written"
        )

        src = spark.read.parquet(str(lake)).where("dt <> DATE'2026-01-06'")
        dst = spark.read.format("delta").load(str(target))
        a, b = fingerprint(src), fingerprint(dst)
        ok = a == b
        print(f"demo: source fingerprint {a}")
        print(f"demo: target fingerprint {b}")
        print(f"demo: verification {'PASSED: rows identical' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
