"""A table gets the same column types whichever phase creates it: bulk load or sync.

The same logical table (one row) is created and loaded once by the bulk loader
(:class:`lakeshift.sinks.sql.SqlSink`, as ``lakeshift transform`` does) and once by the change
apply (``apply_sql_batch`` / ``apply_mysql_batch``, as ``lakeshift sync`` does) on real
PostgreSQL and MariaDB; the column types are read back from ``information_schema`` and the
values with the database's own client, so microseconds must survive both paths.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lakeshift.sinks.sql import SqlColumn, SqlSink, SqlTable, connection_from_url
from lakeshift.sinks.sql_apply import apply_mysql_batch, apply_sql_batch
from tests.services import mariadb_server, postgres_server  # noqa: F401

TS = dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=dt.timezone.utc)
ROW = (7, 42, "text", 1.5, True, TS, Decimal("12.34"), b"\x00\xff")
SPARK_SCHEMA = (
    "id bigint, n int, s string, x double, flag boolean, ts timestamp, "
    "amount decimal(34,2), raw binary"
)
BULK_COLUMNS = (
    SqlColumn("id", "long", nullable=False),
    SqlColumn("n", "int"),
    SqlColumn("s", "string"),
    SqlColumn("x", "double"),
    SqlColumn("flag", "boolean"),
    SqlColumn("ts", "timestamp"),
    SqlColumn("amount", "decimal", scale=2),
    SqlColumn("raw", "binary"),
)
NAMES = [c.name for c in BULK_COLUMNS]
DBS = ["postgres", "mariadb"]


def _query(db, server, sql, args=()):
    if db == "postgres":
        import psycopg

        with psycopg.connect(server.dsn) as conn:
            return conn.execute(sql, args).fetchall()
    conn = server.connect_mariadb()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def _types(db, server, table) -> dict[str, tuple]:
    if db == "postgres":
        sql = (
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
            "numeric_scale, datetime_precision FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s"
        )
    else:
        sql = (
            "SELECT column_name, column_type, character_maximum_length, numeric_precision, "
            "numeric_scale, datetime_precision FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s"
        )
    return {r[0]: tuple(r[1:]) for r in _query(db, server, sql, (table,)) if r[0] in NAMES}


def _bulk(spark, server, table):
    sink = SqlSink(connection_from_url(server.url))
    t = SqlTable(table, BULK_COLUMNS, primary_key=("id",))
    sink.prepare([t], mode="replace")
    df = spark.createDataFrame([ROW], SPARK_SCHEMA).coalesce(1)
    assert sink.load(df, t, run_id=f"types-{table}").rows == 1
    sink.finish([t])


def _sync(spark, db, server, table):
    from pyspark.sql import functions as F

    frame = spark.createDataFrame([ROW], SPARK_SCHEMA).select(
        "*",
        F.lit(1).cast("bigint").alias("_lakeshift_ts"),
        F.lit("00000000000000000001").alias("_lakeshift_ord"),
        F.lit(False).alias("_lakeshift_deleted"),
    )
    apply = apply_sql_batch if db == "postgres" else apply_mysql_batch
    apply(spark, server.dsn, table, frame, ["id"], app_id=f"types-{table}", batch_id=1)


@pytest.mark.parametrize("db", DBS)
def test_bulk_load_and_sync_create_the_same_column_types(spark, request, db):
    server = request.getfixturevalue(f"{db}_server")
    _bulk(spark, server, "types_bulk")
    _sync(spark, db, server, "types_sync")

    bulk, sync = _types(db, server, "types_bulk"), _types(db, server, "types_sync")
    assert sorted(bulk) == sorted(NAMES)
    assert bulk == sync
    # microseconds, as Spark's timestamps: PostgreSQL timestamptz, MariaDB DATETIME(6)
    if db == "postgres":
        assert bulk["ts"] == ("timestamp with time zone", None, None, None, 6)
    else:
        assert bulk["ts"] == ("datetime(6)", None, None, None, 6)

    for table in ("types_bulk", "types_sync"):
        got = _query(db, server, f"SELECT ts FROM {table} WHERE id = 7")[0][0]
        if db == "mariadb":  # DATETIME holds the UTC wall clock
            got = got.replace(tzinfo=dt.timezone.utc)
        assert got == TS, table
