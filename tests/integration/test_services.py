"""The test servers themselves: each accepts a login and round-trips a value through Spark JDBC."""

from __future__ import annotations

from tests.services import mariadb_server, postgres_server  # noqa: F401


def _roundtrip(spark, server, driver: str) -> list[tuple[int, str]]:
    rows = [(1, "a"), (2, "ünïcode")]
    df = spark.createDataFrame(rows, "id INT, name STRING")
    props = {"user": server.user, "password": server.password, "driver": driver}
    df.write.jdbc(server.jdbc_url, "roundtrip", mode="overwrite", properties=props)
    back = spark.read.jdbc(server.jdbc_url, "roundtrip", properties=props)
    return sorted((r.id, r.name) for r in back.collect())


def test_postgres_roundtrip(spark, postgres_server):
    assert _roundtrip(spark, postgres_server, "org.postgresql.Driver") == [(1, "a"), (2, "ünïcode")]


def test_mariadb_roundtrip(spark, mariadb_server):
    got = _roundtrip(spark, mariadb_server, "org.mariadb.jdbc.Driver")
    assert got == [(1, "a"), (2, "ünïcode")]
