"""An unchanged user job: reads a table by name (or a path) and prints what it saw as JSON.

It knows nothing of lakeshift: the metastore, Delta and filesystem routing come from the Spark
configuration it is submitted with (``--conf``), as on a cluster.

    spark-submit ... table_reader.py table db.t [COLUMN]
    spark-submit ... table_reader.py parquet hdfs://old/t [COLUMN]
"""

from __future__ import annotations

import json
import sys

from pyspark.sql import SparkSession


def main(argv: list[str]) -> int:
    kind, name = argv[0], argv[1]
    column = argv[2] if len(argv) > 2 else None
    spark = SparkSession.builder.appName("table-reader").getOrCreate()
    df = spark.table(name) if kind == "table" else spark.read.format(kind).load(name)
    out: dict[str, object] = {"count": df.count(), "files": sorted(df.inputFiles())[:3]}
    if column:
        out["values"] = sorted(str(r[0]) for r in df.select(column).distinct().limit(50).collect())
    print("READER " + json.dumps(out, sort_keys=True), flush=True)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
