"""The one SQL type table: logical kinds and Spark types -> column types per dialect."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from lakeshift.errors import SinkError
from lakeshift.sinks.sql import Dialect, SqlColumn
from lakeshift.sinks.sql_apply import mysql_type, pg_type
from lakeshift.sinks.sql_types import column_type, spark_column_type, spark_kind

# (kind, options, PostgreSQL, MariaDB/MySQL, SQLite)
TABLE = [
    ("objectid", {}, "CHAR(24)", "CHAR(24)", "TEXT"),
    ("uuid", {}, "CHAR(36)", "CHAR(36)", "TEXT"),
    ("string", {}, "TEXT", "LONGTEXT", "TEXT"),
    ("string", {"key": True}, "TEXT", "VARCHAR(255)", "TEXT"),
    ("string", {"max_length": 40}, "VARCHAR(40)", "VARCHAR(40)", "TEXT"),
    ("string", {"max_length": 20000}, "VARCHAR(20000)", "LONGTEXT", "TEXT"),
    ("json", {}, "JSONB", "LONGTEXT", "TEXT"),
    ("json", {"max_length": 100}, "VARCHAR(100)", "VARCHAR(100)", "TEXT"),
    ("tinyint", {}, "SMALLINT", "TINYINT", "INTEGER"),
    ("smallint", {}, "SMALLINT", "SMALLINT", "INTEGER"),
    ("int", {}, "INTEGER", "INT", "INTEGER"),
    ("long", {}, "BIGINT", "BIGINT", "INTEGER"),
    ("float", {}, "REAL", "FLOAT", "REAL"),
    ("double", {}, "DOUBLE PRECISION", "DOUBLE", "REAL"),
    ("boolean", {}, "BOOLEAN", "BOOLEAN", "INTEGER"),
    ("date", {}, "DATE", "DATE", "TEXT"),
    ("timestamp", {}, "TIMESTAMP WITH TIME ZONE", "DATETIME(6)", "TEXT"),
    ("timestamp_ntz", {}, "TIMESTAMP WITHOUT TIME ZONE", "DATETIME(6)", "TEXT"),
    ("binary", {}, "BYTEA", "LONGBLOB", "BLOB"),
    ("binary", {"key": True}, "BYTEA", "VARBINARY(255)", "BLOB"),
    ("decimal", {"scale": 4}, "NUMERIC(34, 4)", "DECIMAL(34, 4)", "TEXT"),
    ("decimal", {"precision": 10, "scale": 2}, "NUMERIC(10, 2)", "DECIMAL(10, 2)", "TEXT"),
]


@pytest.mark.parametrize(("kind", "options", "pg", "my", "lite"), TABLE)
def test_column_type(kind, options, pg, my, lite) -> None:
    assert column_type("postgres", kind, **options) == pg
    assert column_type("mysql", kind, **options) == my
    assert column_type("sqlite", kind, **options) == lite


def test_unknown_kind_names_the_column() -> None:
    with pytest.raises(SinkError, match=r"column c: unknown logical type 'nope'"):
        Dialect("postgres").column_type(SqlColumn("c", "nope"))


SPARK = [
    (T.StringType(), ("string", None, None)),
    (T.LongType(), ("long", None, None)),
    (T.IntegerType(), ("int", None, None)),
    (T.ShortType(), ("smallint", None, None)),
    (T.ByteType(), ("tinyint", None, None)),
    (T.DoubleType(), ("double", None, None)),
    (T.FloatType(), ("float", None, None)),
    (T.BooleanType(), ("boolean", None, None)),
    (T.TimestampType(), ("timestamp", None, None)),
    (T.TimestampNTZType(), ("timestamp_ntz", None, None)),
    (T.DateType(), ("date", None, None)),
    (T.BinaryType(), ("binary", None, None)),
    (T.DecimalType(12, 3), ("decimal", 12, 3)),
    (T.ArrayType(T.StringType()), ("json", None, None)),
    (T.StructType([T.StructField("a", T.IntegerType())]), ("json", None, None)),
    (T.MapType(T.StringType(), T.LongType()), ("json", None, None)),
]


@pytest.mark.parametrize(("dtype", "kind"), SPARK)
def test_spark_kind(dtype, kind) -> None:
    assert spark_kind(dtype) == kind


# a bulk-load column (logical type) and the Spark type the sync frame carries for it
SAME = [
    (SqlColumn("a", "long"), T.LongType()),
    (SqlColumn("a", "int"), T.IntegerType()),
    (SqlColumn("a", "string"), T.StringType()),
    (SqlColumn("a", "double"), T.DoubleType()),
    (SqlColumn("a", "boolean"), T.BooleanType()),
    (SqlColumn("a", "timestamp"), T.TimestampType()),
    (SqlColumn("a", "decimal", scale=2), T.DecimalType(34, 2)),
    (SqlColumn("a", "binary"), T.BinaryType()),
    (SqlColumn("a", "json"), T.ArrayType(T.LongType())),
]


@pytest.mark.parametrize(("column", "dtype"), SAME)
def test_bulk_load_and_sync_name_the_same_type(column, dtype) -> None:
    assert Dialect("postgres").column_type(column) == pg_type(dtype)
    assert Dialect("mysql").column_type(column) == mysql_type(dtype)
    assert spark_column_type("postgres", dtype) == pg_type(dtype)
