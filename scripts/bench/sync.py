"""Benchmark: batched, reduced, one-MERGE sync apply vs a naive per-event apply.

    .venv/bin/python scripts/bench/sync.py [--rows N] [--events N] [--naive-sample N]

Builds a Delta target of ``--rows`` rows, generates ``--events`` change events (about 70 %
updates, 15 % inserts of new keys, 15 % deletes; keys repeat, so reduction matters), applies them
with lakeshift's path (latest event per key, one version-guarded MERGE), then applies a sample
of ``--naive-sample`` events one MERGE per event (the naive way) and extrapolates per event.
Prints events/s for both and the ratio. The defaults are the issue's size: 1 M events over a
10 M-row Delta table (a few minutes on a quiet 2-core machine); the naive per-event apply is
timed on a sample (default 10 events, one MERGE each) and extrapolated, as the output says.
Smaller runs: ``--rows 1000000 --events 100000``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

# this folder holds other benchmarks named like stdlib modules (copy.py): keep it off the path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--naive-sample", type=int, default=10)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import functions as F

    from lakeshift.changeframe import DELETED, ORD, TS, pad_ord_col
    from lakeshift.sinks.delta_merge import merge_changes, prepare_target
    from lakeshift.sources.reduce import latest_per_key
    from lakeshift.spark import SparkProfile, session

    work = tempfile.mkdtemp(prefix="lakeshift-bench-sync-")
    prof = SparkProfile(master=args.master, app_name="bench-sync", shuffle_partitions=8, ui=False)
    try:
        with session(prof) as spark:
            target = os.path.join(work, "target")
            t0 = time.monotonic()
            spark.range(args.rows).selectExpr(
                "id", "concat('name-', id) AS name", "CAST(id % 1000 AS DOUBLE) AS amount"
            ).write.format("delta").save(target)
            prepare_target(spark, target)
            print(f"target: {args.rows:,} rows written in {time.monotonic() - t0:.1f}s", flush=True)

            n = args.events
            roll = F.rand(7)
            events = spark.range(n).select(
                F.when(roll < 0.15, F.lit(args.rows) + F.col("id"))  # inserts of new keys
                .otherwise((F.rand(11) * args.rows).cast("bigint"))
                .alias("id"),
                F.concat(F.lit("upd-"), F.col("id")).alias("name"),
                (F.col("id") % 777).cast("double").alias("amount"),
                (F.col("id") + 1).alias(TS),
                pad_ord_col(F.lit(0)).alias(ORD),
                (roll > 0.85).alias(DELETED),
            )
            events = events.select(
                "id",
                F.when(F.col(DELETED), None).otherwise(F.col("name")).alias("name"),
                F.when(F.col(DELETED), None).otherwise(F.col("amount")).alias("amount"),
                TS,
                ORD,
                DELETED,
            )
            events_path = os.path.join(work, "events")
            events.write.parquet(events_path)
            events = spark.read.parquet(events_path)

            t0 = time.monotonic()
            res = merge_changes(
                spark, target, latest_per_key(events, ["id"]), ["id"], app_id="bench", txn_version=1
            )
            batched = time.monotonic() - t0
            batched_eps = n / batched
            print(
                f"lakeshift batched apply: {n:,} events in {batched:.1f}s = "
                f"{batched_eps:,.0f} events/s "
                f"(inserted {res.inserted:,}, updated {res.updated:,})",
                flush=True,
            )

            sample = events.orderBy(TS).limit(args.naive_sample).collect()
            t0 = time.monotonic()
            for k, row in enumerate(sample):
                one = spark.createDataFrame([row], events.schema)
                merge_changes(spark, target, one, ["id"], app_id="bench-naive", txn_version=k + 1)
            naive = time.monotonic() - t0
            naive_eps = len(sample) / naive
            print(
                f"naive per-event apply (one MERGE per event, {len(sample)} sampled events "
                f"extrapolated): {naive / len(sample):.2f}s/event = {naive_eps:,.2f} events/s",
                flush=True,
            )
            print(f"ratio batched/naive: {batched_eps / naive_eps:,.0f}x", flush=True)
            print(f"load average: {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
