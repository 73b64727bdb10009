"""Test job for the coordinator e2e: ``copy`` a Parquet folder into Delta, or ``validate`` it.

    delta_job.py copy SRC DST
    delta_job.py validate SRC DST
    delta_job.py copy+validate SRC DST   # both in one driver (one JVM start-up per table)

``validate`` compares row counts and an order-independent content hash (sums of the 32-bit
halves of two seeded xxhash64 values per row) of source and target; exit 0 equal, 1 different.
Writes go through Spark and Delta; the coordinator e2e submits this file with spark-submit.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from lakeshift.spark import SparkProfile, session


def fingerprint(df):
    cols = sorted(df.columns)
    h1 = F.xxhash64(*[F.col(c) for c in cols])
    h2 = F.xxhash64(F.lit("seed-2"), *[F.col(c) for c in cols])
    halves = [
        F.sum(F.shiftright(h, 32).cast("long")).alias(f"{n}_hi") for n, h in (("a", h1), ("b", h2))
    ] + [F.sum(h.bitwiseAND(F.lit(0xFFFFFFFF))).alias(f"{n}_lo") for n, h in (("a", h1), ("b", h2))]
    return tuple(df.agg(F.count(F.lit(1)).alias("n"), *halves).first())


def main(argv: list[str]) -> int:
    mode, src, dst = argv[0], argv[1], argv[2]
    with session(SparkProfile(app_name=f"e2e-{mode}")) as spark:
        if mode in ("copy", "copy+validate"):
            spark.read.parquet(src).write.format("delta").mode("overwrite").save(dst)
            if mode == "copy":
                return 0
        left = fingerprint(spark.read.parquet(src))
        right = fingerprint(spark.read.format("delta").load(dst))
        print(f"validate {src} vs {dst}: {left} / {right}")
        return 0 if left == right else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
