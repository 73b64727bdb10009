"""Benchmark `lakeshift copy` against bare Spark in the same run, and print the ratios.

1. A large narrow Parquet table (--rows, default 10M, ~75 MiB) -> Delta, --large-target 32MB:
   lakeshift copy_table vs `spark.read.parquet(...).write.format("delta").save(...)`.
   Target: ratio lakeshift / bare <= 1.10.
2. A lake of 2,000 small Parquet files (4 partition folders) -> Delta, same partitioning:
   lakeshift copy_table (compacting while copying) vs bare copy + OPTIMIZE (executeCompaction
   with maxFileSize = the target). Target: ratio < 1.0.
3. Output file sizes of lakeshift vs --target-file-size (target: within +-30 %; the last,
   partial file of each partition folder is reported separately).

Usage: .venv/bin/python scripts/bench/copy.py [--rows N] [--small-files 2000] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

# this file is named like the stdlib module `copy`: keep its folder off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "lib"))

MB = 1 << 20


def timed(fn):  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def data_files(root: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*.parquet")
        if not any(s.startswith(("_", ".")) for s in p.relative_to(root).parts)
    ]


def live_files(spark, path: Path) -> list[Path]:  # type: ignore[no-untyped-def]
    uris = spark.read.format("delta").load(str(path)).inputFiles()
    return [Path(u.removeprefix("file:")) for u in uris]


def size_report(files: list[Path], target: int) -> str:
    by_folder: dict[Path, list[int]] = {}
    for f in files:
        by_folder.setdefault(f.parent, []).append(f.stat().st_size)
    full, partial = [], []
    for sizes in by_folder.values():
        sizes.sort(reverse=True)
        full.extend(sizes[:-1] if len(sizes) > 1 else [])
        partial.append(sizes[-1])
    ok = sum(1 for s in full if abs(s / target - 1) <= 0.30)
    med = statistics.median(full) / target if full else float("nan")
    return (
        f"{len(files)} files; full files {len(full)}: median {med:.2f}x target, "
        f"{ok}/{len(full)} within +-30%; last file per folder: "
        f"{', '.join(f'{s / target:.2f}x' for s in sorted(partial))}"
    )


def make_small_lake(root: Path, files: int, rows_per_file: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 0
    per = files // 4
    for p in range(4):
        folder = root / f"region=r{p}"
        folder.mkdir(parents=True)
        for i in range(per):
            ids = pa.array(range(n, n + rows_per_file), pa.int64())
            pq.write_table(
                pa.table(
                    {
                        "id": ids,
                        "v": pa.array([(x * 2654435761) % 1000003 for x in ids.to_pylist()]),
                        "s": pa.array([f"s{x % 5000}" for x in ids.to_pylist()]),
                    }
                ),
                folder / f"part-{i:05d}.parquet",
            )
            n += rows_per_file
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000, help="rows of the large table")
    ap.add_argument(
        "--large-target", default="32MB", help="target file size, large case (output ~75 MiB)"
    )
    ap.add_argument("--small-files", type=int, default=2000)
    ap.add_argument("--small-rows-per-file", type=int, default=500)
    ap.add_argument("--small-target", default="1MB", help="target file size, small-file case")
    ap.add_argument("--out", default=str(REPO / "bench-output" / "copy"))
    args = ap.parse_args()

    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from lakeshift.config import parse_size
    from lakeshift.copy import TableCopy, copy_table
    from lakeshift.spark import SparkProfile, session

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    profile = SparkProfile(master="local[2]", app_name="lakeshift-bench-copy", shuffle_partitions=8)
    with session(profile) as spark:
        # ---- 1. large table ------------------------------------------------------------
        big = out / "big"
        t = timed(
            lambda: (
                spark.range(args.rows, numPartitions=8)
                .select(
                    F.col("id"),
                    (F.col("id") % 1000).cast("int").alias("k"),
                    (F.col("id") * 0.5).alias("x"),
                )
                .write.parquet(str(big))
            )
        )
        big_bytes = sum(p.stat().st_size for p in data_files(big))
        print(f"large: {args.rows} rows, {big_bytes / MB:.1f} MiB Parquet generated in {t:.1f}s")
        timed(lambda: spark.read.parquet(str(big)).write.format("noop").mode("overwrite").save())
        bare_s = timed(
            lambda: spark.read.parquet(str(big)).write.format("delta").save(str(out / "big_bare"))
        )
        ls_s = timed(
            lambda: copy_table(
                spark,
                TableCopy(
                    source=str(big),
                    target=str(out / "big_ls"),
                    target_file_size=parse_size(args.large_target),
                ),
            )
        )
        big_ratio = ls_s / bare_s
        print(f"large: bare {bare_s:.1f}s, lakeshift {ls_s:.1f}s")
        print(
            f"large: files bare {len(live_files(spark, out / 'big_bare'))}, lakeshift "
            f"{size_report(live_files(spark, out / 'big_ls'), parse_size(args.large_target))}"
        )

        # ---- 2. 2,000 small files ------------------------------------------------------
        small = out / "small"
        rows = make_small_lake(small, args.small_files, args.small_rows_per_file)
        small_bytes = sum(p.stat().st_size for p in data_files(small))
        target = parse_size(args.small_target)
        print(f"small: {rows} rows in {len(data_files(small))} files, {small_bytes / MB:.1f} MiB")
        spark.conf.set("spark.databricks.delta.optimize.maxFileSize", str(target))

        def bare_optimize() -> None:
            spark.read.parquet(str(small)).write.format("delta").partitionBy("region").save(
                str(out / "small_bare")
            )
            DeltaTable.forPath(spark, str(out / "small_bare")).optimize().executeCompaction()

        bare_opt_s = timed(bare_optimize)
        ls_small_s = timed(
            lambda: copy_table(
                spark,
                TableCopy(source=str(small), target=str(out / "small_ls"), target_file_size=target),
            )
        )
        small_ratio = ls_small_s / bare_opt_s
        print(f"small: bare+OPTIMIZE {bare_opt_s:.1f}s, lakeshift {ls_small_s:.1f}s")
        print(
            f"small: files bare+OPTIMIZE {len(live_files(spark, out / 'small_bare'))}, "
            f"lakeshift {size_report(live_files(spark, out / 'small_ls'), target)}"
        )
        same = (
            spark.read.format("delta").load(str(out / "small_ls")).count() == rows
            and spark.read.format("delta").load(str(out / "big_ls")).count() == args.rows
        )
        print(f"row count check {'ok' if same else 'MISMATCH'}")

    print(f"RATIO large lakeshift/bare = {big_ratio:.2f} (target <= 1.10)")
    print(f"RATIO small-files lakeshift/(bare+OPTIMIZE) = {small_ratio:.2f} (target < 1.0)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
