"""Benchmark `lakeshift copy` to Delta on a real S3 server against a bare Spark write, same run.

Starts SeaweedFS (the suite's S3 server, `scripts/services.sh install` builds it), generates a
Parquet table of ``--rows`` rows on local disk, then, ``--rounds`` times alternating, copies it to
Delta in one bucket of that server twice: ``copy_table`` (chunked, resumable, sized files) and
``spark.read.parquet(...).write.format("delta").save("s3a://...")``. Both read the same source
through the same session (S3A from the pom's s3 profile); row counts are checked on S3. Prints
each round's times and the median ratio lakeshift/bare. Target (issue #16): <= 1.10.

    .venv/bin/python scripts/bench/copy_s3.py [--rows 4000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# this folder holds copy.py, named like the stdlib module: keep it off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(REPO / "lib"), str(REPO)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--target-file-size", default="128MB", help="lakeshift copy's default")
    args = ap.parse_args()

    from pyspark.sql import functions as F
    from tests.s3_server import start_seaweedfs

    from lakeshift.config import parse_size
    from lakeshift.copy import TableCopy, copy_table
    from lakeshift.spark import SparkProfile, session

    with start_seaweedfs() as server:
        os.environ.update(server.env())
        server.client().create_bucket(Bucket="bench")
        profile = SparkProfile(
            master="local[2]", app_name="lakeshift-bench-copy-s3", shuffle_partitions=8, ui=False
        )
        with (
            tempfile.TemporaryDirectory(prefix="lakeshift-bench-copy-s3-") as tmp,
            session(profile) as spark,
        ):
            src = str(Path(tmp) / "src")
            spark.range(args.rows, numPartitions=8).select(
                F.col("id"),
                (F.col("id") % 1000).cast("int").alias("k"),
                (F.col("id") * 0.5).alias("x"),
                F.concat(F.lit("s"), (F.col("id") % 5000).cast("string")).alias("s"),
            ).write.parquet(src)
            mib = sum(p.stat().st_size for p in Path(src).glob("*.parquet")) / 2**20
            print(f"source: {args.rows} rows, {mib:.1f} MiB Parquet (local disk)")
            # warm-up: JIT, the S3A client and Delta's first commit, not timed
            spark.read.parquet(src).limit(1000).write.format("delta").save("s3a://bench/warm")
            ratios = []
            for r in range(args.rounds):
                bare_uri, ls_uri = f"s3a://bench/bare-{r}", f"s3a://bench/lakeshift-{r}"
                t0 = time.monotonic()
                spark.read.parquet(src).write.format("delta").save(bare_uri)
                bare_s = time.monotonic() - t0
                t0 = time.monotonic()
                copy_table(
                    spark,
                    TableCopy(
                        source=src,
                        target=ls_uri,
                        target_file_size=parse_size(args.target_file_size),
                    ),
                )
                ls_s = time.monotonic() - t0
                counts = [spark.read.format("delta").load(u).count() for u in (bare_uri, ls_uri)]
                if counts != [args.rows, args.rows]:
                    print(f"round {r + 1}: row counts {counts}, expected {args.rows}: MISMATCH")
                    return 1
                ratios.append(ls_s / bare_s)
                print(
                    f"round {r + 1}: bare Spark -> Delta on S3 {bare_s:.1f} s, lakeshift copy "
                    f"{ls_s:.1f} s: {ls_s / bare_s:.2f}x"
                )
        median = statistics.median(ratios)
        print(f"RATIO copy to S3 lakeshift/bare (median of {args.rounds}) = {median:.2f} "
              "(target <= 1.10)")  # fmt: skip
        return 0 if median <= 1.10 else 1


if __name__ == "__main__":
    sys.exit(main())
