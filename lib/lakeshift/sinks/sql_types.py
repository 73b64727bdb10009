"""One type table for relational targets: the column type of a value, per SQL dialect.

The bulk load (:mod:`lakeshift.sinks.sql`: logical types of :mod:`lakeshift.nosql.bsontypes`)
and the change apply (:mod:`lakeshift.sinks.sql_apply`: Spark types, via :func:`spark_kind`)
both name their columns' types with :func:`column_type`, so a table gets the same column types
whichever phase creates it.

Timestamps: Spark's ``timestamp`` is an instant with microsecond precision, and every loader
writes it in UTC (the session and JVM time zones are UTC; PostgreSQL's binary ``COPY`` and JDBC
send the instant itself). PostgreSQL stores it as ``timestamptz`` (microseconds; an instant, so
a client in any time zone reads the same moment); MariaDB/MySQL as ``DATETIME(6)`` holding the
UTC wall clock (``TIMESTAMP`` would convert through the session time zone and ends in 2038).
Spark's ``timestamp_ntz`` (a wall clock without a zone) is PostgreSQL ``timestamp`` and
MariaDB/MySQL ``DATETIME(6)``.

Example:
    >>> column_type("postgres", "timestamp")
    'TIMESTAMP WITH TIME ZONE'
    >>> column_type("mysql", "string", key=True)
    'VARCHAR(255)'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from lakeshift.errors import SinkError

if TYPE_CHECKING:
    from pyspark.sql.types import DataType

DialectName = Literal["postgres", "mysql", "sqlite"]

# the longest VARCHAR MySQL keeps in a utf8mb4 row; longer strings become LONGTEXT
MYSQL_MAX_VARCHAR = 16383
# indexable MySQL types for key columns without a declared length
MYSQL_KEY_STRING = "VARCHAR(255)"
MYSQL_KEY_BINARY = "VARBINARY(255)"
# Decimal128 (BSON) holds 34 digits: the precision of a decimal column without one
DEFAULT_DECIMAL_PRECISION = 34

_FIXED: dict[str, tuple[str, str]] = {
    #  kind            PostgreSQL                    MariaDB/MySQL
    "objectid": ("CHAR(24)", "CHAR(24)"),
    "uuid": ("CHAR(36)", "CHAR(36)"),
    "tinyint": ("SMALLINT", "TINYINT"),
    "smallint": ("SMALLINT", "SMALLINT"),
    "int": ("INTEGER", "INT"),
    "long": ("BIGINT", "BIGINT"),
    "float": ("REAL", "FLOAT"),
    "double": ("DOUBLE PRECISION", "DOUBLE"),
    "boolean": ("BOOLEAN", "BOOLEAN"),
    "date": ("DATE", "DATE"),
    "timestamp": ("TIMESTAMP WITH TIME ZONE", "DATETIME(6)"),
    "timestamp_ntz": ("TIMESTAMP WITHOUT TIME ZONE", "DATETIME(6)"),
}
_SQLITE = {
    "tinyint": "INTEGER",
    "smallint": "INTEGER",
    "int": "INTEGER",
    "long": "INTEGER",
    "boolean": "INTEGER",
    "float": "REAL",
    "double": "REAL",
    "binary": "BLOB",
}
KINDS = frozenset({*_FIXED, "string", "json", "binary", "decimal"})

_SPARK_KINDS = {
    "string": "string",
    "bigint": "long",
    "int": "int",
    "smallint": "smallint",
    "tinyint": "tinyint",
    "double": "double",
    "float": "float",
    "boolean": "boolean",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp_ntz",
    "date": "date",
    "binary": "binary",
}


def column_type(
    dialect: DialectName,
    kind: str,
    *,
    max_length: int | None = None,
    precision: int | None = None,
    scale: int | None = None,
    key: bool = False,
) -> str:
    """The SQL column type of a logical ``kind`` (see :data:`KINDS`) in ``dialect``.

    Args:
        dialect: ``postgres``, ``mysql`` (MariaDB too) or ``sqlite``.
        kind: logical type: a BSON-derived kind (``objectid``, ``json``, ``long``, …) or one of
            :func:`spark_kind`.
        max_length: ``string``/``json``: a declared maximum length (``VARCHAR(n)``).
        precision: ``decimal``: digits (default 34, Decimal128's).
        scale: ``decimal``: digits after the point (default 0).
        key: the column is part of a key: MySQL needs an indexable type (``VARCHAR(255)``,
            ``VARBINARY(255)``) where it would be ``LONGTEXT``/``LONGBLOB``.

    Raises:
        SinkError: an unknown kind.
    """
    if dialect == "sqlite":  # demos: type affinities only
        return _SQLITE.get(kind, "TEXT")
    if kind not in KINDS:
        raise SinkError(f"unknown logical type {kind!r} (known: {', '.join(sorted(KINDS))})")
    pg = dialect == "postgres"
    if kind in _FIXED:
        return _FIXED[kind][0 if pg else 1]
    if kind in ("string", "json"):
        if max_length is not None and (pg or max_length <= MYSQL_MAX_VARCHAR):
            return f"VARCHAR({max_length})"
        if pg:
            return "TEXT" if kind == "string" else "JSONB"
        # MariaDB's JSON is LONGTEXT plus a JSON_VALID check that rejects nesting deeper than 32
        # levels; plain LONGTEXT keeps any document (the text is valid JSON anyway)
        return MYSQL_KEY_STRING if key and kind == "string" else "LONGTEXT"
    if kind == "binary":
        return "BYTEA" if pg else (MYSQL_KEY_BINARY if key else "LONGBLOB")
    digits = DEFAULT_DECIMAL_PRECISION if precision is None else precision
    return f"{'NUMERIC' if pg else 'DECIMAL'}({digits}, {scale or 0})"


def spark_kind(dtype: DataType) -> tuple[str, int | None, int | None]:
    """``(kind, precision, scale)`` of a Spark type; arrays, maps and structs are ``json``.

    Example:
        >>> from pyspark.sql.types import DecimalType
        >>> spark_kind(DecimalType(10, 2))
        ('decimal', 10, 2)
    """
    from pyspark.sql.types import DecimalType

    if isinstance(dtype, DecimalType):
        return "decimal", dtype.precision, dtype.scale
    return _SPARK_KINDS.get(dtype.simpleString(), "json"), None, None


def spark_column_type(dialect: DialectName, dtype: DataType, *, key: bool = False) -> str:
    """The SQL column type of a Spark type in ``dialect`` (see :func:`column_type`)."""
    kind, precision, scale = spark_kind(dtype)
    return column_type(dialect, kind, precision=precision, scale=scale, key=key)
