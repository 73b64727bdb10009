"""Relational tables over JDBC, read in parallel with automatically computed bounds.

Spec (usable on the CLI and in configs; never with credentials)::

    jdbc:postgresql://host:5432/db?table=public.orders
    jdbc:mariadb://host:3306/shop?table=orders&partition_column=id&num_partitions=8&fetchsize=20000
    jdbc:postgresql://host/db?table=t&user_env=PGUSER&password_env=PGPASSWORD

Credentials come from the environment: ``LAKESHIFT_JDBC_USER`` / ``LAKESHIFT_JDBC_PASSWORD`` by
default, or the variables named by ``user_env`` / ``password_env``. A ``user=`` or ``password=``
in the spec is refused. Other query parameters stay in the JDBC URL (``sslmode=require``).

Partitioning: with a numeric, date or timestamp ``partition_column`` (explicit, or the first
such key column the caller hints with the ``partition_hint`` option), one small JDBC query
``SELECT min(c), max(c), count(*)`` gives the bounds and :class:`JdbcPartitioning` maps one-to-one
to Spark's reader options ``partitionColumn``, ``lowerBound``, ``upperBound``,
``numPartitions`` and ``fetchsize``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from pydantic import Field

from lakeshift.config.base import StrictModel
from lakeshift.errors import SourceError, UsageError
from lakeshift.log import register_secret
from lakeshift.sources.factory import register_scheme

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

DEFAULT_USER_ENV = "LAKESHIFT_JDBC_USER"
DEFAULT_PASSWORD_ENV = "LAKESHIFT_JDBC_PASSWORD"
_PARTITIONABLE = (
    "byte",
    "short",
    "integer",
    "long",
    "decimal",
    "float",
    "double",
    "date",
    "timestamp",
    "timestamp_ntz",
)
_DRIVERS = {
    "postgresql": "org.postgresql.Driver",
    "mariadb": "org.mariadb.jdbc.Driver",
    "mysql": "org.mariadb.jdbc.Driver",
    "sqlserver": "com.microsoft.sqlserver.jdbc.SQLServerDriver",
    "oracle": "oracle.jdbc.OracleDriver",
}
_OWN_PARAMS = {
    "driver",
    "table",
    "user_env",
    "password_env",
    "partition_column",
    "lower_bound",
    "upper_bound",
    "num_partitions",
    "fetchsize",
    "rows_per_partition",
}


class JdbcPartitioning(StrictModel):
    """Typed partition options; :meth:`reader_options` maps them one-to-one to Spark's.

    Attributes:
        partition_column: ``partitionColumn``.
        lower_bound: ``lowerBound`` (a number, date or timestamp as text).
        upper_bound: ``upperBound``.
        num_partitions: ``numPartitions``.
        fetch_size: ``fetchsize`` (rows per round trip).
    """

    partition_column: str | None = None
    lower_bound: str | None = None
    upper_bound: str | None = None
    num_partitions: int | None = Field(default=None, ge=1, le=10_000)
    fetch_size: int = Field(default=10_000, ge=1)

    def reader_options(self) -> dict[str, str]:
        """Spark JDBC reader options."""
        out = {"fetchsize": str(self.fetch_size)}
        if self.partition_column and self.num_partitions and self.num_partitions > 1:
            if self.lower_bound is None or self.upper_bound is None:
                raise UsageError(
                    f"JDBC partitioning on {self.partition_column}: bounds are missing"
                )
            out.update(
                {
                    "partitionColumn": self.partition_column,
                    "lowerBound": self.lower_bound,
                    "upperBound": self.upper_bound,
                    "numPartitions": str(self.num_partitions),
                }
            )
        return out


def _quote(url: str, name: str) -> str:
    q = "`" if url.startswith(("jdbc:mysql:", "jdbc:mariadb:")) else '"'
    return q + name.replace(q, q + q) + q


@dataclass(frozen=True)
class JdbcSource:
    """A table in a relational database, read over JDBC.

    Attributes:
        url: the JDBC URL without credentials.
        table: ``schema.table`` or ``table``.
        user_env: environment variable holding the user.
        password_env: environment variable holding the password.
        partitioning: explicit partition options (bounds are computed when missing).
        rows_per_partition: target rows per Spark partition when ``num_partitions`` is unset.
        partition_hint: candidate partition columns (e.g. the validation keys).
        driver: the JDBC driver class (default: from the URL's sub-protocol).
    """

    url: str
    table: str
    user_env: str = DEFAULT_USER_ENV
    password_env: str = DEFAULT_PASSWORD_ENV
    partitioning: JdbcPartitioning = field(default_factory=JdbcPartitioning)
    rows_per_partition: int = 1_000_000
    partition_hint: tuple[str, ...] = ()
    driver: str | None = None

    def describe(self) -> str:
        """``jdbc:…?table=…`` (no credentials)."""
        return f"{self.url}?table={self.table}"

    def _base_options(self) -> dict[str, str]:
        opts = {"url": self.url}
        driver = self.driver or _DRIVERS.get(self.url.split(":")[1] if ":" in self.url else "")
        if driver:
            opts["driver"] = driver
        user = os.environ.get(self.user_env)
        password = os.environ.get(self.password_env)
        if user:
            opts["user"] = user
        if password:
            register_secret(password)
            opts["password"] = password
        return opts

    def _query(self, spark: SparkSession, sql: str) -> DataFrame:
        from pyspark.errors import PySparkException

        try:
            return (
                spark.read.format("jdbc")
                .options(**self._base_options())
                .option("query", sql)
                .load()
            )
        except PySparkException as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SourceError(f"{self.describe()}: query failed: {first}") from exc

    def schema(self, spark: SparkSession) -> StructType:
        """The table schema (a ``WHERE 1=0`` query; no data read)."""
        return self._query(spark, f"SELECT * FROM {self.table} WHERE 1=0").schema

    def resolve_partitioning(self, spark: SparkSession) -> JdbcPartitioning:
        """Choose the partition column and compute missing bounds with one small query."""
        part = self.partitioning
        column = part.partition_column
        if column is None and self.partition_hint:
            types = {f.name.lower(): f for f in self.schema(spark).fields}
            for name in self.partition_hint:
                found = types.get(name.lower())
                if found is not None and found.dataType.typeName() in _PARTITIONABLE:
                    column = found.name
                    break
        if column is None:
            return part
        if part.lower_bound is not None and part.upper_bound is not None and part.num_partitions:
            return part.model_copy(update={"partition_column": column})
        qc = _quote(self.url, column)
        row = self._query(
            spark, f"SELECT min({qc}) AS lo, max({qc}) AS hi, count(*) AS n FROM {self.table}"
        ).first()
        if row is None or row["lo"] is None:
            return part.model_copy(update={"partition_column": None})
        n = int(row["n"])
        num = part.num_partitions or max(1, min(256, math.ceil(n / self.rows_per_partition)))
        resolved = part.model_copy(
            update={
                "partition_column": column,
                "lower_bound": part.lower_bound or str(row["lo"]),
                "upper_bound": part.upper_bound or str(row["hi"]),
                "num_partitions": num,
            }
        )
        log.info("jdbc %s: partitions %s", self.describe(), resolved.reader_options())
        return resolved

    def reader_options(self, spark: SparkSession) -> dict[str, str]:
        """All Spark JDBC reader options (credentials included; never log them)."""
        opts = self._base_options()
        opts["dbtable"] = self.table
        opts.update(self.resolve_partitioning(spark).reader_options())
        return opts

    def read(self, spark: SparkSession) -> DataFrame:
        """Read the table in parallel."""
        try:
            return spark.read.format("jdbc").options(**self.reader_options(spark)).load()
        except SourceError:
            raise
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SourceError(f"{self.describe()}: cannot read: {first}") from exc


def parse_spec(spec: str, options: Mapping[str, str] | None = None) -> JdbcSource:
    """Build a :class:`JdbcSource` from a ``jdbc:`` spec.

    Raises:
        UsageError: no ``table``, credentials in the spec, or a bad number.
    """
    base, _, query = spec.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    opts = dict(options or {})
    for secret in ("user", "password"):
        if secret in params:
            raise UsageError(
                f"{base}: credentials are not allowed in a source spec ({secret}=…); use "
                f"{secret}_env=VARIABLE or {DEFAULT_USER_ENV}/{DEFAULT_PASSWORD_ENV}"
            )
    table = params.get("table") or opts.get("table")
    if not table:
        raise UsageError(f"{base}: expected ?table=schema.name in the JDBC spec")
    rest = {k: v for k, v in params.items() if k not in _OWN_PARAMS}
    url = base + ("?" + urlencode(rest) if rest else "")

    def num(name: str) -> int | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise UsageError(f"{base}: {name} expects an integer, found {value!r}") from exc

    part: dict[str, Any] = {
        "partition_column": params.get("partition_column") or None,
        "lower_bound": params.get("lower_bound") or None,
        "upper_bound": params.get("upper_bound") or None,
        "num_partitions": num("num_partitions"),
    }
    fetch = num("fetchsize")
    if fetch:
        part["fetch_size"] = fetch
    hint = tuple(h for h in opts.get("partition_hint", "").split(",") if h)
    return JdbcSource(
        url=url,
        table=table,
        user_env=params.get("user_env") or DEFAULT_USER_ENV,
        password_env=params.get("password_env") or DEFAULT_PASSWORD_ENV,
        partitioning=JdbcPartitioning.model_validate(part),
        rows_per_partition=num("rows_per_partition") or 1_000_000,
        partition_hint=hint,
        driver=params.get("driver") or None,
    )


register_scheme("jdbc", parse_spec)
