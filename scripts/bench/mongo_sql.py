"""Benchmark: lakeshift's retry-safe Arrow binary COPY load vs Spark JDBC writes, same rows.

Generates documents with nested arrays (a parent with a nested sub-document, a Decimal128 and a
date, and 0-3 line items each: ~1.5 child rows per document), maps them with the lakeshift
mapper and materialises the result once (the wide frame and the two flat table frames are
persisted and counted; not timed). Then the same rows are loaded into a private PostgreSQL five
ways, each into its own freshly created tables with the same DDL (primary keys, child -> parent
foreign key), with a ``CHECKPOINT`` before each:

1. ``lakeshift``: ``SqlSink.load_wide`` from the wide frame, the path ``lakeshift transform``
   takes (parent and child tables in one pass, one ledger-guarded transaction per partition,
   ADBC binary COPY streams from ``mapInArrow``); a per-phase breakdown is printed;
2. ``lakeshift_flat``: ``SqlSink.load`` per table from the flat frames the JDBC writers read;
3. ``bare_copy``: the reference floor: ``mapInArrow`` + one ADBC binary COPY per partition and
   table, no ledger, not retry-safe;
4. ``jdbc_default``: Spark JDBC, default options;
5. ``jdbc_tuned``: ``reWriteBatchedInserts=true``, ``batchsize=10000``.

Run: ``.venv/bin/python scripts/bench/mongo_sql.py [--docs 2000000] [--partitions N]``
(default: the issue's ~2 M documents, partitions = cores). Prints the seconds per method and
the ratios (targets: >= 2.5x the default JDBC write and >= 1.2x the tuned one) and a JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# this folder holds other benchmarks (e.g. copy.py) that would shadow standard modules
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "lib"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

MAPPING = {
    "collections": [
        {
            "source": "bench.orders",
            "table": "orders",
            "columns": [
                {"path": "_id", "type": "long"},
                {"path": "customer.name", "type": "string"},
                {"path": "customer.age", "type": "int"},
                {"path": "total", "type": "decimal", "scale": 2},
                {"path": "when", "type": "timestamp"},
                {"path": "open", "type": "boolean"},
            ],
            "children": [
                {
                    "path": "items",
                    "columns": [
                        {"path": "sku", "type": "string"},
                        {"path": "qty", "type": "int"},
                        {"path": "price", "type": "decimal", "scale": 2},
                    ],
                    "unmapped": "ignore",
                }
            ],
            "unmapped": "ignore",
        }
    ]
}


def generate(batches: Iterator) -> Iterator:
    """``mapInArrow``: ids -> BSON documents of the ``bench.orders`` namespace."""
    import datetime as dt

    import bson
    import pyarrow as pa

    base = dt.datetime(2020, 1, 1)
    schema = pa.schema([("ns", pa.string()), ("doc", pa.binary())])
    for batch in batches:
        docs = []
        for i in batch.column("id").to_pylist():
            docs.append(
                bson.encode(
                    {
                        "_id": i,
                        "customer": {"name": f"customer-{i % 10007}", "age": 18 + i % 60},
                        "total": bson.Decimal128(f"{i % 100000}.{i % 100:02d}"),
                        "when": base + dt.timedelta(milliseconds=i * 1337),
                        "open": i % 3 == 0,
                        "items": [
                            {
                                "sku": f"sku-{(i + j) % 5003}",
                                "qty": j + 1,
                                "price": bson.Decimal128(f"{(i + j) % 997}.{j}9"),
                            }
                            for j in range(i % 4)
                        ],
                    }
                )
            )
        yield pa.RecordBatch.from_pydict(
            {"ns": ["bench.orders"] * len(docs), "doc": docs}, schema=schema
        )


def bare_copy(url: str, table: str) -> Callable[[Iterator], Iterator]:
    """``mapInArrow``: one ADBC binary COPY of the partition's batches, no ledger (the floor)."""

    def fn(batches: Iterator) -> Iterator:
        import adbc_driver_postgresql.dbapi as pg
        import pyarrow as pa

        it = iter(batches)
        first = next(it, None)
        n = 0
        if first is not None:

            def stream() -> Iterator:
                yield first
                yield from it

            with pg.connect(url) as conn, conn.cursor() as cur:
                n = cur.adbc_ingest(
                    table, pa.RecordBatchReader.from_batches(first.schema, stream()), "append"
                )
                conn.commit()
        yield pa.RecordBatch.from_pydict({"n": [n]}, schema=pa.schema([("n", pa.int64())]))

    return fn


def warm(batches: Iterator) -> Iterator:
    """``mapInArrow``: import what the loaders import, then hold the worker for a second."""
    import adbc_driver_postgresql.dbapi  # noqa: F401

    time.sleep(1.0)
    yield from batches


def main() -> int:
    """Run the benchmark; prints the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--docs", type=int, default=2_000_000, help="documents (default 2000000)")
    parser.add_argument(
        "--partitions", type=int, default=0, help="partitions of the rows (default: cores)"
    )
    parser.add_argument(
        "--only", default="", help="comma-separated subset of the methods (default: all)"
    )
    args = parser.parse_args()

    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from tests.services import start_postgres

    from lakeshift.nosql.mapping import MappingSpec, resolve
    from lakeshift.nosql.normalise import map_documents, table_frame
    from lakeshift.nosql.transform import document_counter, to_sql_table
    from lakeshift.sinks.sql import TIMING_PREFIX, Connection, SqlSink, SqlTable, TableLoad
    from lakeshift.spark import SparkProfile, col, get_or_create

    spark, _ = get_or_create(SparkProfile(master="local[2]", app_name="bench-mongo-sql", ui=False))
    parts = args.partitions or spark.sparkContext.defaultParallelism
    coll = resolve(MappingSpec.model_validate(MAPPING))[0]
    methods = [
        "lakeshift",
        "lakeshift_flat",
        "bare_copy",
        "jdbc_default",
        "jdbc_tuned",
        "jdbc_tuned_keys_after",
    ]
    chosen = [m for m in methods if not args.only or m in args.only.split(",")]
    results: dict[str, float] = {}
    phases: dict[str, float] = {}
    keys: dict[str, float] = {}
    load = os.getloadavg()
    with start_postgres() as pg:
        conn = Connection("postgres", pg.url)
        sink = SqlSink(conn)
        t0 = time.monotonic()
        docs = spark.range(args.docs, numPartitions=parts).mapInArrow(
            generate, "ns STRING, doc BINARY"
        )
        wide = map_documents(docs, coll, "postgres").persist(StorageLevel.MEMORY_AND_DISK)
        wide.count()
        frames = [
            table_frame(wide, coll, t).persist(StorageLevel.MEMORY_AND_DISK) for t in coll.tables
        ]
        rows = [f.count() for f in frames]
        print(
            f"prepared {args.docs} documents -> rows {rows} in {parts} partitions in "
            f"{time.monotonic() - t0:.1f}s (generation + mapping + caching, not timed below)",
            flush=True,
        )

        def tables(prefix: str) -> list[SqlTable]:
            out = []
            for t in coll.tables:
                st = to_sql_table(t)
                out.append(
                    SqlTable(
                        f"{prefix}{st.name}",
                        st.columns,
                        st.primary_key,
                        f"{prefix}{st.parent}" if st.parent else None,
                        st.parent_key,
                        st.references,
                    )
                )
            return out

        def fresh(prefix: str, keys_upfront: bool) -> list[SqlTable]:
            made = tables(prefix)
            SqlSink(conn, defer_keys=not keys_upfront).prepare(made, "replace")
            db = conn.connect()  # flush the previous method's writes before timing this one
            try:
                db.cursor().execute("CHECKPOINT")
                db.commit()
            finally:
                db.close()
            return made

        def run(
            name: str, body: Callable[[list[SqlTable]], Any], keys_upfront: bool = False
        ) -> None:
            if name not in chosen:
                return
            made = fresh(name + "_", keys_upfront)
            t = time.monotonic()
            body(made)
            if not keys_upfront:
                k = time.monotonic()
                sink.finish(made)  # the deferred primary and foreign keys, timed
                keys[name] = time.monotonic() - k
            results[name] = time.monotonic() - t
            counted = [sink.count_rows(st.name) for st in made]
            assert counted == rows, (name, counted, rows)
            assert not sink.missing_keys(made), name
            extra = f" (of which adding keys {keys[name]:.2f}s)" if name in keys else ""
            print(f"{name}: {results[name]:.2f}s{extra}", flush=True)

        def lakeshift(made: list[SqlTable], source: Any = wide, run_id: str = "bench") -> None:
            source = source.drop("_doc_id")  # as lakeshift transform does
            loads = [TableLoad(f"t{i}", st) for i, st in enumerate(made)]
            totals, _, _ = sink.load_wide(source, loads, run_id, "bench.orders", document_counter)
            if run_id == "bench":
                assert [totals[f"inserted:{st.name}"] for st in made] == rows, totals
            for k, v in totals.items():
                if k.startswith(TIMING_PREFIX):
                    phases[k[len(TIMING_PREFIX) :]] = v / 1e6

        def lakeshift_flat(made: list[SqlTable]) -> None:
            for frame, st in zip(frames, made, strict=True):
                sink.load(frame, st, "bench")

        def bare(made: list[SqlTable]) -> None:
            for frame, st in zip(frames, made, strict=True):
                frame.mapInArrow(bare_copy(pg.url, st.name), "n LONG").agg(F.sum("n")).first()

        def jdbc(
            opts: dict[str, str], url_extra: str, source: list[Any] = frames
        ) -> Callable[[list[SqlTable]], None]:
            props = {"user": pg.user, "password": pg.password, "driver": "org.postgresql.Driver"}

            def body(made: list[SqlTable]) -> None:
                for frame, st in zip(source, made, strict=True):
                    writer = frame.select(*[col(c.name) for c in st.columns]).write
                    writer = writer.mode("append")
                    for k, v in opts.items():
                        writer = writer.option(k, v)
                    writer.jdbc(pg.jdbc_url + url_extra, st.name, properties=props)

            return body

        # warm-up (not timed): every Python worker imports pyarrow/ADBC once (~2 s each on a
        # loaded machine, once per worker process for its whole life), the JVM loads the JDBC
        # driver; the sleep keeps the tasks concurrent so that each of the `parts` workers warms
        spark.range(parts, numPartitions=parts).mapInArrow(warm, "id LONG").count()
        sample = wide.limit(2000).repartition(parts)
        lakeshift(fresh("warm_lk_", False), sample, "warmup")
        jdbc({}, "", [table_frame(sample, coll, t) for t in coll.tables])(fresh("warm_jd_", True))
        phases.clear()

        tuned = {"batchsize": "10000"}, "?reWriteBatchedInserts=true"
        run("lakeshift", lakeshift)
        run("lakeshift_flat", lakeshift_flat)
        run("bare_copy", bare)
        run("jdbc_default", jdbc({}, ""), keys_upfront=True)
        run("jdbc_tuned", jdbc(*tuned), keys_upfront=True)
        run("jdbc_tuned_keys_after", jdbc(*tuned))
        for f in frames:
            f.unpersist()
        wide.unpersist()

    def ratio(a: str, b: str) -> float | None:
        return round(results[a] / results[b], 2) if a in results and b in results else None

    report = {
        "documents": args.docs,
        "partitions": parts,
        "rows": dict(zip([t.name for t in coll.tables], rows, strict=True)),
        "seconds": {k: round(v, 2) for k, v in results.items()},
        "of_which_adding_keys_after_the_load": {k: round(v, 2) for k, v in keys.items()},
        "lakeshift_phases_task_seconds": {k: round(v, 2) for k, v in sorted(phases.items())},
        "ratio_vs_jdbc_default": ratio("jdbc_default", "lakeshift"),
        "ratio_vs_jdbc_tuned": ratio("jdbc_tuned", "lakeshift"),
        "flat_ratio_vs_jdbc_default": ratio("jdbc_default", "lakeshift_flat"),
        "flat_ratio_vs_jdbc_tuned": ratio("jdbc_tuned", "lakeshift_flat"),
        "lakeshift_vs_bare_copy": ratio("bare_copy", "lakeshift"),
        "ratio_vs_jdbc_tuned_keys_after": ratio("jdbc_tuned_keys_after", "lakeshift"),
        "targets": {"vs_default": 2.5, "vs_tuned": 1.2},
        "load_average_at_start": [round(x, 2) for x in load],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(report, indent=2))
    if phases:
        print(
            "lakeshift phases (task-seconds summed over partitions): "
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(phases.items()))
        )
    if "lakeshift" in results and "jdbc_default" in results and "jdbc_tuned" in results:
        print(
            f"lakeshift {results['lakeshift']:.2f}s | JDBC default {results['jdbc_default']:.2f}s "
            f"(x{report['ratio_vs_jdbc_default']}) | JDBC tuned {results['jdbc_tuned']:.2f}s "
            f"(x{report['ratio_vs_jdbc_tuned']}) | bare COPY "
            f"{results.get('bare_copy', float('nan')):.2f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
