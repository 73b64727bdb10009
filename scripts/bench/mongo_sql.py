"""Benchmark: lakeshift's retry-safe Arrow binary COPY load vs Spark JDBC writes, same rows.

Generates documents with nested arrays (a parent with a nested sub-document, a Decimal128 and a
date, and 0-3 line items each), maps them with the lakeshift mapper, materialises the table
rows once, then loads the same rows into a private PostgreSQL three ways, each into its own
freshly created tables with the same DDL (primary and foreign keys):

1. lakeshift: ``SqlSink.load_wide`` (one ledger-guarded transaction per partition, ADBC binary
   COPY of Arrow batches from ``mapInArrow``, parent and child tables in one pass), and
   ``SqlSink.load`` per table from the same flat frames the JDBC writers read;
2. Spark JDBC, default options;
3. Spark JDBC tuned: ``reWriteBatchedInserts=true``, ``batchsize=10000``.

Run: ``.venv/bin/python scripts/bench/mongo_sql.py [--docs N] [--partitions P]``. Prints the
seconds per method and the ratios (targets: >= 2.5x the default JDBC write and >= 1.2x the
tuned one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=500_000, help="documents (default 500000)")
    parser.add_argument("--partitions", type=int, default=4, help="load partitions (default 4)")
    args = parser.parse_args()

    from pyspark import StorageLevel
    from pyspark.sql import functions as F
    from tests.services import start_postgres

    from lakeshift.nosql.mapping import MappingSpec, resolve
    from lakeshift.nosql.normalise import map_documents, table_frame
    from lakeshift.nosql.transform import document_counter, to_sql_table
    from lakeshift.sinks.sql import Connection, SqlSink, TableLoad
    from lakeshift.spark import SparkProfile, get_or_create

    spark, _ = get_or_create(SparkProfile(master="local[2]", app_name="bench-mongo-sql", ui=False))
    coll = resolve(MappingSpec.model_validate(MAPPING))[0]
    results: dict[str, float] = {}
    with start_postgres() as pg:
        conn = Connection("postgres", pg.url)
        sink = SqlSink(conn)
        t0 = time.monotonic()
        docs = spark.range(args.docs, numPartitions=args.partitions).mapInArrow(
            generate, "ns STRING, doc BINARY"
        )
        wide = map_documents(docs, coll, "postgres").persist(StorageLevel.MEMORY_AND_DISK)
        wide.count()
        frames = [
            table_frame(wide, coll, t).persist(StorageLevel.MEMORY_AND_DISK) for t in coll.tables
        ]
        rows = [f.count() for f in frames]
        print(
            f"prepared {args.docs} documents -> {rows} rows in {time.monotonic() - t0:.1f}s "
            f"(generation + mapping, not timed below)",
            flush=True,
        )

        def tables(prefix: str) -> list:
            out = []
            for t in coll.tables:
                st = to_sql_table(t)
                parent = f"{prefix}{st.parent}" if st.parent else None
                out.append(
                    type(st)(
                        f"{prefix}{st.name}",
                        st.columns,
                        st.primary_key,
                        parent,
                        st.parent_key,
                        st.references,
                    )
                )
            return out

        # 1. lakeshift: ledger-guarded binary COPY, parent + child in one pass
        lk = tables("lk_")
        sink.prepare(lk, "replace")
        loads = [TableLoad(f"t{i}", st) for i, st in enumerate(lk)]
        t = time.monotonic()
        totals, _, _ = sink.load_wide(wide, loads, "bench", "bench.orders", document_counter)
        results["lakeshift"] = time.monotonic() - t
        assert [totals[f"inserted:{st.name}"] for st in lk] == rows, totals

        # 1b. lakeshift from the same flat table frames the JDBC writers read
        lf = tables("lf_")
        sink.prepare(lf, "replace")
        t = time.monotonic()
        flat = [sink.load(frame, st, "bench").rows for frame, st in zip(frames, lf, strict=True)]
        results["lakeshift_flat"] = time.monotonic() - t
        assert flat == rows, flat

        # 2./3. Spark JDBC, default and tuned, same rows into identical tables
        props = {"user": pg.user, "password": pg.password, "driver": "org.postgresql.Driver"}
        for name, url_extra, opts in [
            ("jdbc_default", "", {}),
            ("jdbc_tuned", "?reWriteBatchedInserts=true", {"batchsize": "10000"}),
        ]:
            prefix = "jd_" if name == "jdbc_default" else "jt_"
            jt = tables(prefix)
            sink.prepare(jt, "replace")
            t = time.monotonic()
            for frame, st in zip(frames, jt, strict=True):
                writer = frame.select(*[F.col(f"`{c.name}`") for c in st.columns]).write.mode(
                    "append"
                )
                for k, v in opts.items():
                    writer = writer.option(k, v)
                writer.jdbc(pg.jdbc_url + url_extra, st.name, properties=props)
            results[name] = time.monotonic() - t
            assert [sink.count_rows(st.name) for st in jt] == rows
        assert [sink.count_rows(st.name) for st in lk] == rows
        for f in frames:
            f.unpersist()
        wide.unpersist()

    report = {
        "documents": args.docs,
        "rows": dict(zip([t.name for t in coll.tables], rows, strict=True)),
        "seconds": {k: round(v, 2) for k, v in results.items()},
        "ratio_vs_jdbc_default": round(results["jdbc_default"] / results["lakeshift"], 2),
        "ratio_vs_jdbc_tuned": round(results["jdbc_tuned"] / results["lakeshift"], 2),
        "flat_ratio_vs_jdbc_default": round(results["jdbc_default"] / results["lakeshift_flat"], 2),
        "flat_ratio_vs_jdbc_tuned": round(results["jdbc_tuned"] / results["lakeshift_flat"], 2),
        "targets": {"vs_default": 2.5, "vs_tuned": 1.2},
    }
    print(json.dumps(report, indent=2))
    print(
        f"lakeshift {results['lakeshift']:.2f}s | JDBC default {results['jdbc_default']:.2f}s "
        f"(x{report['ratio_vs_jdbc_default']}) | JDBC tuned {results['jdbc_tuned']:.2f}s "
        f"(x{report['ratio_vs_jdbc_tuned']})"
    )
    print(
        f"lakeshift from flat frames {results['lakeshift_flat']:.2f}s: "
        f"x{report['flat_ratio_vs_jdbc_default']} vs default JDBC, "
        f"x{report['flat_ratio_vs_jdbc_tuned']} vs tuned JDBC"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
