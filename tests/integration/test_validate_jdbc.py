"""Delta vs a real PostgreSQL table over JDBC (partitioned read with computed bounds)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest

from lakeshift.sources.factory import from_spec
from lakeshift.sources.jdbc import JdbcSource
from lakeshift.validate import ValidateOptions, validate_tables
from tests.services import postgres_server  # noqa: F401

SCHEMA = "id int, name string, amount decimal(12,2), ts timestamp, d date, ok boolean"
T0 = dt.datetime(2025, 6, 1, 8, 30, tzinfo=dt.timezone.utc)


def _rows(n: int) -> list[tuple]:
    return [
        (
            i,
            f"n{i}",
            Decimal(i) / 8,
            T0 + dt.timedelta(seconds=i),
            dt.date(2025, 1, 1 + i % 28),
            i % 2 == 0,
        )
        for i in range(1, n + 1)
    ]


@pytest.fixture(scope="module")
def pg(spark, postgres_server, tmp_path_factory):
    server = postgres_server
    props = {"user": server.user, "password": server.password, "driver": "org.postgresql.Driver"}
    rows = _rows(300)
    df = spark.createDataFrame(rows, SCHEMA)
    df.write.jdbc(server.jdbc_url, "public.orders", mode="overwrite", properties=props)
    changed = [list(r) for r in rows]
    changed[41][2] = Decimal("0.01")  # id 42 amount
    spark.createDataFrame([tuple(r) for r in changed if r[0] != 7], SCHEMA).write.jdbc(
        server.jdbc_url, "public.orders_bad", mode="overwrite", properties=props
    )
    delta = tmp_path_factory.mktemp("jdbc") / "orders"
    # the lake copy uses wider types: bigint key, decimal(20,4)
    df.selectExpr(
        "cast(id as bigint) id", "name", "cast(amount as decimal(20,4)) amount", "ts", "d", "ok"
    ).write.format("delta").save(str(delta))
    old = {k: os.environ.get(k) for k in ("LAKESHIFT_JDBC_USER", "LAKESHIFT_JDBC_PASSWORD")}
    os.environ["LAKESHIFT_JDBC_USER"] = server.user
    os.environ["LAKESHIFT_JDBC_PASSWORD"] = server.password
    yield server, f"delta:{delta}"
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def test_bounds_computed_from_the_key(spark, pg):
    server, _ = pg
    src = from_spec(
        f"{server.jdbc_url}?table=public.orders&rows_per_partition=100", {"partition_hint": "id"}
    )
    assert isinstance(src, JdbcSource)
    part = src.resolve_partitioning(spark)
    assert (part.partition_column, part.lower_bound, part.upper_bound, part.num_partitions) == (
        "id",
        "1",
        "300",
        3,
    )
    df = src.read(spark)
    assert df.rdd.getNumPartitions() == 3
    assert "password" not in src.describe()


def test_delta_vs_jdbc_equal(spark, pg):
    server, delta = pg
    res = validate_tables(
        spark,
        delta,
        f"{server.jdbc_url}?table=public.orders&rows_per_partition=100",
        ValidateOptions(keys=["id"]),
    )
    assert res.passed, res.summary()
    assert (res.left_rows, res.right_rows) == (300, 300)
    assert "password" not in res.right.lower()


def test_delta_vs_jdbc_differences(spark, pg):
    server, delta = pg
    res = validate_tables(
        spark,
        delta,
        f"{server.jdbc_url}?table=public.orders_bad&num_partitions=2",
        ValidateOptions(keys=["id"]),
    )
    assert not res.passed
    got = {(r["key"], r["class"], tuple(r["columns"])) for r in res.mismatches().collect()}
    assert got == {
        ('{"id":7}', "missing_in_target", ()),
        ('{"id":42}', "value_mismatch", ("amount",)),
    }
