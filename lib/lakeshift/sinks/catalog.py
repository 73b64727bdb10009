"""Catalog writes: register a table, switch a table to its migrated copy, and roll back.

Everything goes through Spark SQL on the session's catalog: Spark's in-memory catalog, or a
persistent Hive metastore (embedded Derby in a folder, or a ``thrift://`` service; see
:func:`lakeshift.spark.metastore_conf`).

The switch (the cut-over's catalog step) keeps the old definition instead of rewriting it:

1. ``NAME__lakeshift_new`` is created over the target (``USING delta``, or ``USING parquet``
   with its Hive-style partitions inferred and recovered from the target's folders);
2. ``NAME`` is renamed to ``NAME__lakeshift_old`` (an external table: its data stays);
3. ``NAME__lakeshift_new`` is renamed to ``NAME``.

Readers of ``NAME`` see the old data, then the new; the old table, partitions included, is one
rename away (:func:`rollback_switch`) until :func:`finalize_switch` drops it. Each step can be
repeated: a switch killed half-way is completed by running it again. Managed tables are refused
(renaming or dropping them moves or deletes their data).

Example:
    >>> backup_name("db.sales")
    'db.sales__lakeshift_old'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lakeshift.errors import SinkError, UsageError
from lakeshift.sinks.hadoopfs import HadoopFS
from lakeshift.spark import sql_name, sql_string

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

OLD_SUFFIX = "__lakeshift_old"
NEW_SUFFIX = "__lakeshift_new"


@dataclass(frozen=True)
class TableInfo:
    """A catalog table as the catalog describes it.

    Attributes:
        name: ``db.name`` as given.
        location: the table's location (a URI).
        provider: ``delta``, ``parquet``, ``hive`` …
        table_type: ``EXTERNAL`` or ``MANAGED``.
        partition_columns: partition column names, in order.
        partitions: the number of registered partitions (0 for Delta: its log holds them).
    """

    name: str
    location: str
    provider: str
    table_type: str
    partition_columns: list[str] = field(default_factory=list)
    partitions: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return asdict(self)


@dataclass(frozen=True)
class SwitchResult:
    """What :func:`switch_table` did.

    Attributes:
        table: the switched table.
        before: the table before (``None`` when it did not exist).
        after: the table after.
        backup: the name that keeps the old definition (``None`` without one).
        changed: False when the table already pointed at the target.
    """

    table: str
    before: TableInfo | None
    after: TableInfo
    backup: str | None
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "table": self.table,
            "before": self.before.to_dict() if self.before else None,
            "after": self.after.to_dict(),
            "backup": self.backup,
            "changed": self.changed,
        }


def describe_catalog(spark: SparkSession) -> str:
    """Where the session registers tables, in words (no credentials: URIs and folders only)."""
    from lakeshift.spark import describe_metastore

    conf = spark.sparkContext.getConf()
    if conf.get("spark.sql.catalogImplementation", "in-memory") != "hive":
        return describe_metastore(None)
    uris = conf.get("spark.hadoop.hive.metastore.uris", "")
    if uris:
        return describe_metastore(uris)
    url = conf.get("spark.hadoop.javax.jdo.option.ConnectionURL", "")
    folder = url.split("databaseName=", 1)[1].split(";", 1)[0] if "databaseName=" in url else ""
    if folder.endswith("/metastore_db"):
        return describe_metastore(folder.removesuffix("/metastore_db"))
    return "the Hive metastore configured by hive-site.xml"


def quoted(name: str) -> str:
    """``db.name`` as quoted Spark SQL identifiers."""
    return ".".join(sql_name(p) for p in name.split("."))


def backup_name(name: str) -> str:
    """The name the old definition is kept under during a switch."""
    return name + OLD_SUFFIX


def _norm(location: str) -> str:
    return location.rstrip("/")


def exists(spark: SparkSession, name: str) -> bool:
    """Whether the catalog has table ``name``."""
    return bool(spark.catalog.tableExists(name))


def table_info(spark: SparkSession, name: str) -> TableInfo | None:
    """Describe ``name`` (``None`` when the catalog has no such table).

    Raises:
        SinkError: the catalog cannot describe it.
    """
    from pyspark.errors import AnalysisException

    if not exists(spark, name):
        return None
    try:
        # DESCRIBE FORMATTED: one row per column plus ~20 detail rows, bounded by the schema
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {quoted(name)}").collect()
    except AnalysisException as exc:
        raise SinkError(f"cannot describe {name}: {str(exc).splitlines()[0]}") from exc
    details: dict[str, str] = {}
    part_cols: list[str] = []
    section = "columns"
    for r in rows:
        key, value = str(r[0] or "").strip(), str(r[1] or "").strip()
        if key.startswith("# Partition Information"):
            section = "partitions"
            continue
        if key.startswith("# Detailed Table Information"):
            section = "details"
            continue
        if key.startswith("#") or not key:
            continue
        if section == "partitions":
            part_cols.append(key)
        elif section == "details":
            details[key] = value
    provider = details.get("Provider", "hive").lower()
    count = 0
    if part_cols and provider != "delta":
        # SHOW PARTITIONS lists every partition: only its count is kept on the driver
        count = spark.sql(f"SHOW PARTITIONS {quoted(name)}").count()
    return TableInfo(
        name=name,
        location=details.get("Location", ""),
        provider=provider,
        table_type=details.get("Type", "").upper(),
        partition_columns=part_cols,
        partitions=count,
    )


def _create(spark: SparkSession, name: str, location: str, fmt: str) -> None:
    """``CREATE TABLE`` over existing data; Parquet partitions are inferred, then recovered."""
    q = quoted(name)
    if "." in name:
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {quoted(name.rsplit('.', 1)[0])}")
    spark.sql(f"CREATE TABLE {q} USING {fmt} LOCATION {sql_string(location)}")
    info = table_info(spark, name)
    if fmt != "delta" and info is not None and info.partition_columns:
        spark.sql(f"ALTER TABLE {q} RECOVER PARTITIONS")


def register_table(spark: SparkSession, name: str, location: str, fmt: str) -> TableInfo:
    """Register ``location`` as table ``name`` (database created too); idempotent.

    A table of that name at the same location is kept (partitions re-recovered); one at another
    location is an error: switching a table is the cut-over's job (:func:`switch_table`).

    Raises:
        SinkError: the name is taken by another location, or the catalog refused.
    """
    from pyspark.errors import AnalysisException

    try:
        info = table_info(spark, name)
        if info is not None and _norm(info.location) != _norm(HadoopFS(spark).qualify(location)):
            raise UsageError(
                f"cannot register {name} at {location}: {name} already exists at "
                f"{info.location}; switch it with `lakeshift cutover` or choose another name"
            )
        if info is None:
            _create(spark, name, location, fmt)
        elif info.partition_columns and fmt != "delta":
            spark.sql(f"ALTER TABLE {quoted(name)} RECOVER PARTITIONS")
        out = table_info(spark, name)
    except AnalysisException as exc:
        first = str(exc).splitlines()[0]
        raise SinkError(f"cannot register {name} at {location}: {first}") from exc
    if out is None:  # pragma: no cover - the catalog just created it
        raise SinkError(f"cannot register {name} at {location}: the catalog lost it")
    return out


def _rename(spark: SparkSession, src: str, dst: str) -> None:
    spark.sql(f"ALTER TABLE {quoted(src)} RENAME TO {quoted(dst)}")


def _require_external(info: TableInfo) -> None:
    if info.table_type == "MANAGED":
        raise UsageError(
            f"{info.name} is a MANAGED table: its catalog entry owns {info.location}, so "
            "switching it would move or delete that data; make it EXTERNAL first"
        )


def switch_table(spark: SparkSession, name: str, location: str, fmt: str) -> SwitchResult:
    """Point table ``name`` at ``location`` (format ``fmt``), keeping the old definition.

    See the module docstring for the three steps; a switch interrupted between them completes
    when called again, and a table that already points at ``location`` is left alone.

    Raises:
        SinkError: the table is managed, or the catalog refused a step.
    """
    from pyspark.errors import AnalysisException

    target = _norm(HadoopFS(spark).qualify(location))
    old, new = backup_name(name), name + NEW_SUFFIX
    try:
        info = table_info(spark, name)
        kept = table_info(spark, old)
        if info is not None and _norm(info.location) == target:
            return SwitchResult(name, kept, info, old if kept else None, changed=False)
        before = info or kept
        if info is not None:
            _require_external(info)
            if kept is not None:
                raise UsageError(
                    f"cannot switch {name}: {old} already holds an earlier definition "
                    f"({kept.location}); finalize or roll back that switch first"
                )
        if before is None:
            raise UsageError(f"cannot switch {name}: no such table in the catalog")
        if not exists(spark, new):
            _create(spark, new, location, fmt)
        if info is not None:
            _rename(spark, name, old)
        _rename(spark, new, name)
        after = table_info(spark, name)
    except AnalysisException as exc:
        raise SinkError(f"cannot switch {name} to {location}: {str(exc).splitlines()[0]}") from exc
    if after is None:  # pragma: no cover - just renamed into place
        raise SinkError(f"cannot switch {name}: the catalog lost it")
    return SwitchResult(name, before, after, old, changed=True)


def rollback_switch(spark: SparkSession, name: str) -> SwitchResult:
    """Undo :func:`switch_table`: ``NAME`` points at its old location again.

    Raises:
        SinkError: there is no kept definition to return to, or the catalog refused.
    """
    from pyspark.errors import AnalysisException

    old, new = backup_name(name), name + NEW_SUFFIX
    try:
        kept = table_info(spark, old)
        info = table_info(spark, name)
        if kept is None:
            if info is None:
                raise UsageError(f"cannot roll back {name}: no such table in the catalog")
            raise UsageError(
                f"cannot roll back {name}: no earlier definition ({old}) is kept; the switch "
                "was finalized or never made"
            )
        if info is not None:
            if exists(spark, new):
                spark.sql(f"DROP TABLE {quoted(new)}")
            _rename(spark, name, new)  # the migrated table's entry, external: data stays
        _rename(spark, old, name)
        spark.sql(f"DROP TABLE IF EXISTS {quoted(new)}")
        after = table_info(spark, name)
    except AnalysisException as exc:
        raise SinkError(f"cannot roll back {name}: {str(exc).splitlines()[0]}") from exc
    if after is None:  # pragma: no cover
        raise SinkError(f"cannot roll back {name}: the catalog lost it")
    return SwitchResult(name, info, after, None, changed=True)


def finalize_switch(spark: SparkSession, name: str) -> bool:
    """Drop the kept old definition (its data stays: it is an external table).

    Returns whether there was one to drop.
    """
    old = backup_name(name)
    if not exists(spark, old):
        return False
    info = table_info(spark, old)
    if info is not None:
        _require_external(info)
    spark.sql(f"DROP TABLE {quoted(old)}")
    return True
