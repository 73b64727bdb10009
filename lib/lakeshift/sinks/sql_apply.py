"""Apply a reduced change batch to PostgreSQL or MariaDB/MySQL: staging, one guarded transaction.

:func:`apply_sql_batch` (PostgreSQL) and :func:`apply_mysql_batch` (MariaDB/MySQL) share one
contract; the PostgreSQL steps are described here, the MySQL dialect's further down.

The parent batch and its child tables (rows of normalised documents) are written by Spark's JDBC
writer into uniquely named staging tables; then one psycopg transaction:

1. finds the *applied* keys: staged events newer than both the parent row and the key's tombstone
   (version ``(_lakeshift_ts, _lakeshift_ord)``, ordinal compared with ``COLLATE "C"``; a parent
   row with a null version, from the bulk copy, is older than every event);
2. deletes those keys' child rows, deletes parents whose event is a delete and records the
   delete in the side table ``<parent>__lakeshift_tombstones`` (so a late, older insert cannot
   resurrect the key), clears tombstones of re-inserted keys;
3. upserts the parents (``INSERT … ON CONFLICT … DO UPDATE``) and inserts their new children,
   so a changed parent's children are replaced together with it;
4. records ``(app_id, batch_id)`` in ``lakeshift_sync_batches``; a batch id at or below the
   recorded one is skipped (idempotent replay), and drops the staging tables.

The parent table itself holds only live rows plus the two version columns.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeshift.changeframe import DELETED, HIDDEN, ORD, TS
from lakeshift.errors import SinkError
from lakeshift.sinks.sql_types import spark_column_type, spark_kind
from lakeshift.spark import col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType

log = logging.getLogger(__name__)

STATE_TABLE = "lakeshift_sync_batches"


@dataclass(frozen=True)
class ChildTable:
    """Child rows of the batch's parents (e.g. a document's array elements).

    Attributes:
        table: the child table name.
        frame: child rows; ``key_columns`` reference the parent's key columns in order.
        key_columns: the child's columns holding the parent key.
    """

    table: str
    frame: DataFrame
    key_columns: Sequence[str]


@dataclass(frozen=True)
class SqlApplyResult:
    """What one transaction did."""

    committed: bool
    applied_keys: int = 0
    upserted: int = 0
    deleted: int = 0
    children_inserted: dict[str, int] = field(default_factory=dict)


def jdbc_from_dsn(dsn: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string as a JDBC URL plus user/password properties.

    Example:
        >>> jdbc_from_dsn("host=h port=5 dbname=d user=u password=p")[0]
        'jdbc:postgresql://h:5/d'
    """
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(dsn)
    host, port, db = info.get("host", "localhost"), info.get("port", 5432), info.get("dbname", "")
    url = f"jdbc:postgresql://{host}:{port}/{db}"
    props = {"driver": "org.postgresql.Driver"}
    if info.get("user"):
        props["user"] = str(info["user"])
    if info.get("password"):
        props["password"] = str(info["password"])
    return url, props


def pg_type(dtype: DataType) -> str:
    """The PostgreSQL column type for a Spark type (complex types become ``jsonb``).

    The shared type table (:mod:`lakeshift.sinks.sql_types`), as the bulk load uses it.
    """
    return spark_column_type("postgres", dtype)


def _is_complex(dtype: DataType) -> bool:
    return spark_kind(dtype)[0] == "json"


def _stage_frame(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(
        *[
            F.to_json(col(f.name)).alias(f.name) if _is_complex(f.dataType) else col(f.name)
            for f in df.schema.fields
        ]
    )


class _Sql:
    """Tiny helper around psycopg.sql composition."""

    def __init__(self) -> None:
        from psycopg import sql

        self.sql = sql

    def ident(self, name: str) -> Any:
        if "." in name:
            return self.sql.Identifier(*name.split(".", 1))
        return self.sql.Identifier(name)

    def idents(self, names: Sequence[str], prefix: str | None = None) -> Any:
        if prefix:
            return self.sql.SQL(", ").join(self.sql.Identifier(prefix, n) for n in names)
        return self.sql.SQL(", ").join(self.sql.Identifier(n) for n in names)

    def q(self, text: str, **kw: Any) -> Any:
        return self.sql.SQL(text).format(**kw)


def ensure_tables(
    conn: Any,
    parent_table: str,
    parent: DataFrame,
    keys: Sequence[str],
    children: Sequence[ChildTable],
) -> None:
    """Create the parent, tombstone, child and batch-state tables when they are missing."""
    s = _Sql()
    data = [f for f in parent.schema.fields if f.name not in HIDDEN]
    cols = s.sql.SQL(", ").join(
        s.q("{n} " + pg_type(f.dataType), n=s.sql.Identifier(f.name)) for f in data
    )
    with conn.cursor() as cur:
        cur.execute(
            s.q(
                "CREATE TABLE IF NOT EXISTS {t} ({cols}, {ts} bigint, "
                '{ord} text COLLATE "C", PRIMARY KEY ({k}))',
                t=s.ident(parent_table),
                cols=cols,
                ts=s.ident(TS),
                ord=s.ident(ORD),
                k=s.idents(keys),
            )
        )
        _pg_add_version_columns(cur, s, parent_table)
        key_fields = [f for f in data if f.name in keys]
        kcols = s.sql.SQL(", ").join(
            s.q("{n} " + pg_type(f.dataType), n=s.sql.Identifier(f.name)) for f in key_fields
        )
        cur.execute(
            s.q(
                "CREATE TABLE IF NOT EXISTS {t} ({kcols}, {ts} bigint NOT NULL, "
                '{ord} text COLLATE "C" NOT NULL, PRIMARY KEY ({k}))',
                t=s.ident(parent_table + "__lakeshift_tombstones"),
                kcols=kcols,
                ts=s.ident(TS),
                ord=s.ident(ORD),
                k=s.idents(keys),
            )
        )
        for child in children:
            ccols = s.sql.SQL(", ").join(
                s.q("{n} " + pg_type(f.dataType), n=s.sql.Identifier(f.name))
                for f in child.frame.schema.fields
            )
            cur.execute(
                s.q("CREATE TABLE IF NOT EXISTS {t} ({c})", t=s.ident(child.table), c=ccols)
            )
            cur.execute(
                s.q(
                    "CREATE INDEX IF NOT EXISTS {i} ON {t} ({k})",
                    i=s.sql.Identifier(f"{child.table.replace('.', '_')}__lakeshift_parent"),
                    t=s.ident(child.table),
                    k=s.idents(child.key_columns),
                )
            )
        cur.execute(
            s.q(
                "CREATE TABLE IF NOT EXISTS {t} (app_id text PRIMARY KEY, "
                "batch_id bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                t=s.ident(STATE_TABLE),
            )
        )
    conn.commit()


def _pg_add_version_columns(cur: Any, s: _Sql, table: str) -> None:
    """Add the version columns to a parent table the bulk copy created without them.

    ``lakeshift transform`` (the bulk phase of a MongoDB → SQL migration) creates the parent
    table; its rows get null versions, older than every change event. The catalog is looked up
    first, so the usual case (columns present) takes no ``ALTER TABLE`` lock.
    """
    schema, _, name = table.rpartition(".")
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND table_schema = COALESCE(NULLIF(%s, ''), current_schema()) "
        "AND column_name IN (%s, %s)",
        (name, schema, TS, ORD),
    )
    have = {r[0] for r in cur.fetchall()}
    if TS not in have:
        cur.execute(s.q("ALTER TABLE {t} ADD COLUMN {c} bigint", t=s.ident(table), c=s.ident(TS)))
    if ORD not in have:
        cur.execute(
            s.q('ALTER TABLE {t} ADD COLUMN {c} text COLLATE "C"', t=s.ident(table), c=s.ident(ORD))
        )


def applied_batch(conn: Any, app_id: str) -> int | None:
    """The last batch id recorded for ``app_id`` (None if none)."""
    s = _Sql()
    with conn.cursor() as cur:
        cur.execute(
            s.q("SELECT batch_id FROM {t} WHERE app_id = %s", t=s.ident(STATE_TABLE)), (app_id,)
        )
        row = cur.fetchone()
    conn.rollback()
    return None if row is None else int(row[0])


def _write_stage(df: DataFrame, url: str, props: dict[str, str], table: str) -> None:
    (
        _stage_frame(df)
        .write.format("jdbc")
        .option("url", url)
        .option("dbtable", table)
        .option("batchsize", "5000")
        .options(**props)
        .mode("overwrite")
        .save()
    )


def apply_sql_batch(
    spark: SparkSession,
    dsn: str,
    parent_table: str,
    parent: DataFrame,
    keys: Sequence[str],
    *,
    children: Sequence[ChildTable] = (),
    app_id: str,
    batch_id: int,
) -> SqlApplyResult:
    """Apply one reduced change batch (parent + child tables) to PostgreSQL in one transaction.

    Args:
        spark: the session (its JDBC writer fills the staging tables).
        dsn: libpq connection string (secrets from the environment).
        parent_table: the parent table (``schema.table`` or ``table``).
        parent: reduced change frame, at most one event per key.
        keys: the parent key columns.
        children: child rows of the batch's non-deleted parents.
        app_id: names this sync in ``lakeshift_sync_batches``.
        batch_id: strictly increasing per ``app_id``; one at or below the recorded id is skipped.

    Raises:
        SinkError: the database refused a statement (the transaction is rolled back).
    """
    import psycopg

    s = _Sql()
    url, props = jdbc_from_dsn(dsn)
    suffix = uuid.uuid4().hex[:10]
    stage = f"lakeshift_stage_{suffix}"
    stage_children = {c.table: f"lakeshift_stage_{suffix}_c{i}" for i, c in enumerate(children)}
    try:
        conn = psycopg.connect(dsn)
    except psycopg.Error as exc:
        raise SinkError(
            f"postgresql {parent_table}: cannot connect: {str(exc).splitlines()[0]}"
        ) from exc
    try:
        ensure_tables(conn, parent_table, parent, keys, children)
        last = applied_batch(conn, app_id)
        if last is not None and last >= batch_id:
            log.info("%s: batch %s of %s already applied; skipped", parent_table, batch_id, app_id)
            return SqlApplyResult(False)
        _write_stage(parent, url, props, stage)
        for child in children:
            _write_stage(child.frame, url, props, stage_children[child.table])
        return _transaction(
            conn, s, parent_table, parent, keys, children, stage, stage_children, app_id, batch_id
        )
    except psycopg.Error as exc:
        conn.rollback()
        raise SinkError(
            f"postgresql {parent_table}: batch {batch_id} failed: {str(exc).splitlines()[0]}"
        ) from exc
    finally:
        try:
            with conn.cursor() as cur:
                for name in [stage, *stage_children.values()]:
                    cur.execute(s.q("DROP TABLE IF EXISTS {t}", t=s.ident(name)))
            conn.commit()
        finally:
            conn.close()


def _transaction(  # noqa: PLR0917
    conn: Any,
    s: _Sql,
    parent_table: str,
    parent: DataFrame,
    keys: Sequence[str],
    children: Sequence[ChildTable],
    stage: str,
    stage_children: dict[str, str],
    app_id: str,
    batch_id: int,
) -> SqlApplyResult:
    data = [f for f in parent.schema.fields if f.name not in HIDDEN]
    names = [f.name for f in data]
    nonkey = [n for n in names if n not in keys]
    tomb = parent_table + "__lakeshift_tombstones"
    applied = f"lakeshift_applied_{uuid.uuid4().hex[:10]}"
    key_eq = lambda a, b, ks=keys: s.sql.SQL(" AND ").join(  # noqa: E731
        s.q("{a} = {b}", a=s.sql.Identifier(a, k), b=s.sql.Identifier(b, k)) for k in ks
    )
    sel_cols = s.sql.SQL(", ").join(
        s.q("{c}::jsonb", c=s.sql.Identifier("a", f.name))
        if _is_complex(f.dataType)
        else s.sql.Identifier("a", f.name)
        for f in data
    )
    newer = lambda alias: s.q(  # noqa: E731
        '({x}.{ts} IS NULL OR ({x}.{ts}, {x}.{ord} COLLATE "C") < (st.{ts}, st.{ord} COLLATE "C"))',
        x=s.sql.Identifier(alias),
        ts=s.sql.Identifier(TS),
        ord=s.sql.Identifier(ORD),
    )
    result: dict[str, Any] = {"children": {}}
    with conn.cursor() as cur:
        cur.execute("SET LOCAL TIME ZONE 'UTC'")
        cur.execute(s.q("LOCK TABLE {t} IN SHARE ROW EXCLUSIVE MODE", t=s.ident(parent_table)))
        cur.execute(
            s.q(
                "CREATE TEMP TABLE {a} ON COMMIT DROP AS SELECT st.* FROM {st} st "
                "LEFT JOIN {p} p ON {pk} LEFT JOIN {tb} tb ON {tk} WHERE {np} AND {nt}",
                a=s.sql.Identifier(applied),
                st=s.ident(stage),
                p=s.ident(parent_table),
                tb=s.ident(tomb),
                pk=key_eq("p", "st"),
                tk=key_eq("tb", "st"),
                np=newer("p"),
                nt=newer("tb"),
            )
        )
        result["applied"] = cur.rowcount
        for child in children:
            ck = s.sql.SQL(" AND ").join(
                s.q("{a} = {b}", a=s.sql.Identifier("c", c), b=s.sql.Identifier("a", k))
                for c, k in zip(child.key_columns, keys, strict=True)
            )
            cur.execute(
                s.q(
                    "DELETE FROM {t} c USING {a} a WHERE {ck}",
                    t=s.ident(child.table),
                    a=s.sql.Identifier(applied),
                    ck=ck,
                )
            )
        cur.execute(
            s.q(
                "DELETE FROM {p} p USING {a} a WHERE {k} AND a.{d}",
                p=s.ident(parent_table),
                a=s.sql.Identifier(applied),
                k=key_eq("p", "a"),
                d=s.sql.Identifier(DELETED),
            )
        )
        result["deleted"] = cur.rowcount
        cur.execute(
            s.q(
                "INSERT INTO {tb} ({k}, {ts}, {ord}) "
                "SELECT {ak}, a.{ts}, a.{ord} FROM {a} a WHERE a.{d} "
                "ON CONFLICT ({k}) DO UPDATE SET {ts} = EXCLUDED.{ts}, {ord} = EXCLUDED.{ord}",
                tb=s.ident(tomb),
                k=s.idents(keys),
                ak=s.idents(keys, "a"),
                ts=s.sql.Identifier(TS),
                ord=s.sql.Identifier(ORD),
                a=s.sql.Identifier(applied),
                d=s.sql.Identifier(DELETED),
            )
        )
        cur.execute(
            s.q(
                "DELETE FROM {tb} tb USING {a} a WHERE {k} AND NOT a.{d}",
                tb=s.ident(tomb),
                a=s.sql.Identifier(applied),
                k=key_eq("tb", "a"),
                d=s.sql.Identifier(DELETED),
            )
        )
        updates = s.sql.SQL(", ").join(
            s.q("{c} = EXCLUDED.{c}", c=s.sql.Identifier(n)) for n in [*nonkey, TS, ORD]
        )
        cur.execute(
            s.q(
                "INSERT INTO {p} ({cols}, {ts}, {ord}) "
                "SELECT {sel}, a.{ts}, a.{ord} FROM {a} a WHERE NOT a.{d} "
                "ON CONFLICT ({k}) DO UPDATE SET {upd}",
                p=s.ident(parent_table),
                cols=s.idents(names),
                sel=sel_cols,
                ts=s.sql.Identifier(TS),
                ord=s.sql.Identifier(ORD),
                a=s.sql.Identifier(applied),
                d=s.sql.Identifier(DELETED),
                k=s.idents(keys),
                upd=updates,
            )
        )
        result["upserted"] = cur.rowcount
        for child in children:
            fields = child.frame.schema.fields
            csel = s.sql.SQL(", ").join(
                s.q("{c}::jsonb", c=s.sql.Identifier("c", f.name))
                if _is_complex(f.dataType)
                else s.sql.Identifier("c", f.name)
                for f in fields
            )
            ck = s.sql.SQL(" AND ").join(
                s.q("{a} = {b}", a=s.sql.Identifier("c", c), b=s.sql.Identifier("a", k))
                for c, k in zip(child.key_columns, keys, strict=True)
            )
            cur.execute(
                s.q(
                    "INSERT INTO {t} ({cols}) "
                    "SELECT {sel} FROM {cs} c JOIN {a} a ON {ck} WHERE NOT a.{d}",
                    t=s.ident(child.table),
                    cols=s.idents([f.name for f in fields]),
                    sel=csel,
                    cs=s.ident(stage_children[child.table]),
                    a=s.sql.Identifier(applied),
                    ck=ck,
                    d=s.sql.Identifier(DELETED),
                )
            )
            result["children"][child.table] = cur.rowcount
        cur.execute(
            s.q(
                "INSERT INTO {t} (app_id, batch_id, applied_at) VALUES (%s, %s, now()) "
                "ON CONFLICT (app_id) DO UPDATE "
                "SET batch_id = EXCLUDED.batch_id, applied_at = now()",
                t=s.ident(STATE_TABLE),
            ),
            (app_id, int(batch_id)),
        )
    conn.commit()
    return SqlApplyResult(
        True,
        applied_keys=int(result["applied"]),
        upserted=int(result["upserted"]),
        deleted=int(result["deleted"]),
        children_inserted=dict(result["children"]),
    )


# ================================================================== MariaDB / MySQL
#
# The same contract as the PostgreSQL apply above, in MySQL's dialect (PyMySQL, InnoDB):
# staging tables created by lakeshift with exact types (DATETIME(6), utf8mb4_bin ordinals) and
# filled by Spark's JDBC writer (MariaDB Connector/J through a ``jdbc:mysql:`` URL, so Spark uses
# its MySQL dialect); then one transaction: the batch row of ``lakeshift_sync_batches`` is locked
# (``SELECT … FOR UPDATE``: concurrent appliers of one sync serialise, a replayed id is skipped),
# the applied keys are selected into a temporary table (events newer than row and tombstone),
# children of those keys deleted, deleted parents removed and tombstoned, the rest upserted with
# ``INSERT … SELECT … ON DUPLICATE KEY UPDATE`` and their new children inserted. DDL (which
# commits implicitly in MySQL) runs only before the transaction; staging tables are dropped after.

_MY_ORD = "VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
_MY_TAIL = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"


def mysql_type(dtype: DataType, key: bool = False) -> str:
    """The MariaDB/MySQL column type for a Spark type (complex types become JSON text).

    Key columns get indexable types (``VARCHAR(255)``, ``VARBINARY(255)``). The shared type
    table (:mod:`lakeshift.sinks.sql_types`), as the bulk load uses it.

    Example:
        >>> from pyspark.sql.types import StringType
        >>> mysql_type(StringType(), key=True)
        'VARCHAR(255)'
    """
    return spark_column_type("mysql", dtype, key=key)


def _myq(name: str) -> str:
    """A quoted (optionally ``db.table``) MySQL identifier."""
    return ".".join("`" + part.replace("`", "``") + "`" for part in name.split(".", 1))


def _my_cols(fields: Sequence[Any], keys: Sequence[str]) -> str:
    return ", ".join(
        f"{_myq(f.name)} {_MY_ORD if f.name == ORD else mysql_type(f.dataType, f.name in keys)}"
        for f in fields
    )


def mysql_jdbc(url: str) -> tuple[str, dict[str, str]]:
    """A ``mysql://user:pw@host:port/db`` URL as a JDBC URL plus user/password properties.

    The JDBC URL is ``jdbc:mysql:…?permitMysqlScheme``: MariaDB Connector/J serves it and Spark
    picks its MySQL dialect (backtick quoting).

    Example:
        >>> mysql_jdbc("mysql://u:p@h:3307/shop")[0]
        'jdbc:mysql://h:3307/shop?permitMysqlScheme'
    """
    import urllib.parse

    p = urllib.parse.urlsplit(url)
    if p.scheme not in ("mysql", "mariadb") or not p.hostname:
        raise SinkError(f"mariadb target: expected mysql://user:pw@host:port/db, found {p.scheme}:")
    jdbc = f"jdbc:mysql://{p.hostname}:{p.port or 3306}{p.path}?permitMysqlScheme"
    props = {"driver": "org.mariadb.jdbc.Driver"}
    if p.username:
        props["user"] = urllib.parse.unquote(p.username)
    if p.password:
        props["password"] = urllib.parse.unquote(p.password)
    return jdbc, props


def _my_stage_frame(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(
        *[
            F.to_json(col(f.name)).alias(f.name) if _is_complex(f.dataType) else col(f.name)
            for f in df.schema.fields
        ]
    )


def ensure_mysql_tables(
    conn: Any,
    parent_table: str,
    parent: DataFrame,
    keys: Sequence[str],
    children: Sequence[ChildTable],
) -> None:
    """Create the parent, tombstone, child and batch-state tables when missing (MariaDB/MySQL)."""
    data = [f for f in parent.schema.fields if f.name not in HIDDEN]
    key_fields = [f for f in data if f.name in keys]
    kq = ", ".join(_myq(k) for k in keys)
    hidden = f"{_myq(TS)} BIGINT, {_myq(ORD)} {_MY_ORD}"
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {_myq(parent_table)} ({_my_cols(data, keys)}, "
            f"{hidden}, PRIMARY KEY ({kq})){_MY_TAIL}"
        )
        # a parent table created by the bulk copy (lakeshift transform) has no version columns
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "DATABASE() AND table_name = %s AND column_name IN (%s, %s)",
            (parent_table, TS, ORD),
        )
        have = {r[0] for r in cur.fetchall()}
        if TS not in have:
            cur.execute(f"ALTER TABLE {_myq(parent_table)} ADD COLUMN {_myq(TS)} BIGINT")
        if ORD not in have:
            cur.execute(f"ALTER TABLE {_myq(parent_table)} ADD COLUMN {_myq(ORD)} {_MY_ORD}")
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {_myq(parent_table + '__lakeshift_tombstones')} "
            f"({_my_cols(key_fields, keys)}, {_myq(TS)} BIGINT NOT NULL, "
            f"{_myq(ORD)} {_MY_ORD} NOT NULL, PRIMARY KEY ({kq})){_MY_TAIL}"
        )
        for child in children:
            fields = child.frame.schema.fields
            ckeys = list(child.key_columns)
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {_myq(child.table)} ({_my_cols(fields, ckeys)}, "
                f"INDEX {_myq('lakeshift_parent')} ({', '.join(_myq(c) for c in ckeys)}))"
                f"{_MY_TAIL}"
            )
        cur.execute(
            f"CREATE TABLE IF NOT EXISTS {_myq(STATE_TABLE)} (app_id VARCHAR(255) PRIMARY KEY, "
            f"batch_id BIGINT NOT NULL, applied_at DATETIME(6) NOT NULL){_MY_TAIL}"
        )
    conn.commit()


def _my_stage(
    conn: Any,
    spark_df: DataFrame,
    table: str,
    keys: Sequence[str],
    jdbc: tuple[str, dict[str, str]],
) -> None:
    url, props = jdbc
    cols = _my_cols(spark_df.schema.fields, keys)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {_myq(table)} ({cols}){_MY_TAIL}")
    conn.commit()
    try:
        (
            _my_stage_frame(spark_df)
            .write.format("jdbc")
            .option("url", url)
            .option("dbtable", table)
            .option("batchsize", "5000")
            .option("isolationLevel", "READ_COMMITTED")
            .options(**props)
            .mode("append")
            .save()
        )
    except Exception as exc:  # Spark/JVM errors: one line, the staging table is dropped after
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        raise SinkError(
            f"mariadb staging table {table}: JDBC write failed: {lines[0] if lines else exc!r}"
        ) from exc


def apply_mysql_batch(
    spark: SparkSession,
    url: str,
    parent_table: str,
    parent: DataFrame,
    keys: Sequence[str],
    *,
    children: Sequence[ChildTable] = (),
    app_id: str,
    batch_id: int,
) -> SqlApplyResult:
    """Apply one reduced change batch (parent + child tables) to MariaDB/MySQL in one transaction.

    Same contract as :func:`apply_sql_batch` (PostgreSQL): version-guarded upserts and deletes,
    tombstones in ``<parent>__lakeshift_tombstones``, a changed parent's children replaced in
    the same transaction, ``(app_id, batch_id)`` recorded and replayed ids skipped.

    Args:
        spark: the session (its JDBC writer fills the staging tables).
        url: ``mysql://user:password@host:port/db`` (secrets from the environment).
        parent_table: the parent table.
        parent: reduced change frame, at most one event per key.
        keys: the parent key columns.
        children: child rows of the batch's non-deleted parents.
        app_id: names this sync in ``lakeshift_sync_batches``.
        batch_id: strictly increasing per ``app_id``; one at or below the recorded id is skipped.

    Raises:
        SinkError: the database refused a statement (the transaction is rolled back).

    Example:
        >>> apply_mysql_batch(  # doctest: +SKIP
        ...     spark, url, "orders", batch, ["_id"], app_id="sync", batch_id=1
        ... )
    """
    import pymysql

    from lakeshift.sinks.sql import connection_from_url

    jdbc, props = mysql_jdbc(url)
    suffix = uuid.uuid4().hex[:10]
    stage = f"lakeshift_stage_{suffix}"
    stage_children = {c.table: f"lakeshift_stage_{suffix}_c{i}" for i, c in enumerate(children)}
    made: list[str] = []
    try:
        conn = connection_from_url(url).connect()
    except pymysql.MySQLError as exc:
        raise SinkError(f"mariadb {parent_table}: cannot connect: {exc.args[-1]}") from exc
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
        ensure_mysql_tables(conn, parent_table, parent, keys, children)
        with conn.cursor() as cur:
            cur.execute(f"SELECT batch_id FROM {_myq(STATE_TABLE)} WHERE app_id = %s", (app_id,))
            row = cur.fetchone()
        conn.rollback()
        if row is not None and int(row[0]) >= batch_id:
            log.info("%s: batch %s of %s already applied; skipped", parent_table, batch_id, app_id)
            return SqlApplyResult(False)
        made.append(stage)
        _my_stage(conn, parent, stage, keys, (jdbc, props))
        for child in children:
            made.append(stage_children[child.table])
            _my_stage(conn, child.frame, stage_children[child.table], [], (jdbc, props))
        return _my_transaction(
            conn, parent_table, parent, keys, children, stage, stage_children, app_id, batch_id
        )
    except pymysql.MySQLError as exc:
        conn.rollback()
        raise SinkError(f"mariadb {parent_table}: batch {batch_id} failed: {exc.args[-1]}") from exc
    finally:
        try:
            with conn.cursor() as cur:
                for name in made:
                    cur.execute(f"DROP TABLE IF EXISTS {_myq(name)}")
            conn.commit()
        finally:
            conn.close()


def _my_transaction(  # noqa: PLR0917
    conn: Any,
    parent_table: str,
    parent: DataFrame,
    keys: Sequence[str],
    children: Sequence[ChildTable],
    stage: str,
    stage_children: dict[str, str],
    app_id: str,
    batch_id: int,
) -> SqlApplyResult:
    names = [f.name for f in parent.schema.fields if f.name not in HIDDEN]
    nonkey = [n for n in names if n not in keys]
    tomb = _myq(parent_table + "__lakeshift_tombstones")
    p, st = _myq(parent_table), _myq(stage)
    applied = _myq(f"lakeshift_applied_{uuid.uuid4().hex[:10]}")
    ts, od, dl = _myq(TS), _myq(ORD), _myq(DELETED)

    def key_eq(a: str, b: str, left: Sequence[str] = keys) -> str:
        return " AND ".join(
            f"{a}.{_myq(x)} = {b}.{_myq(k)}" for x, k in zip(left, keys, strict=True)
        )

    def newer(alias: str) -> str:
        return f"({alias}.{ts} IS NULL OR ({alias}.{ts}, {alias}.{od}) < (st.{ts}, st.{od}))"

    result: dict[str, Any] = {"children": {}}
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(
            f"INSERT INTO {_myq(STATE_TABLE)} (app_id, batch_id, applied_at) "
            "VALUES (%s, 0, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE app_id = app_id",
            (app_id,),
        )
        cur.execute(
            f"SELECT batch_id FROM {_myq(STATE_TABLE)} WHERE app_id = %s FOR UPDATE", (app_id,)
        )
        row = cur.fetchone()
        if row is not None and int(row[0]) >= batch_id:  # another applier got there first
            conn.rollback()
            return SqlApplyResult(False)
        cur.execute(
            f"CREATE TEMPORARY TABLE {applied} AS SELECT st.* FROM {st} st "
            f"LEFT JOIN {p} p ON {key_eq('p', 'st')} "
            f"LEFT JOIN {tomb} tb ON {key_eq('tb', 'st')} "
            f"WHERE {newer('p')} AND {newer('tb')}"
        )
        cur.execute(f"SELECT COUNT(*), COALESCE(SUM({dl}), 0) FROM {applied}")
        counts = cur.fetchone()
        result["applied"], n_deleted = int(counts[0]), int(counts[1])
        for child in children:
            cur.execute(
                f"DELETE c FROM {_myq(child.table)} c JOIN {applied} a "
                f"ON {key_eq('c', 'a', child.key_columns)}"
            )
        cur.execute(f"DELETE p FROM {p} p JOIN {applied} a ON {key_eq('p', 'a')} WHERE a.{dl}")
        result["deleted"] = cur.rowcount
        kq = ", ".join(_myq(k) for k in keys)
        akq = ", ".join(f"a.{_myq(k)}" for k in keys)
        cur.execute(
            f"INSERT INTO {tomb} ({kq}, {ts}, {od}) SELECT {akq}, a.{ts}, a.{od} "
            f"FROM {applied} a WHERE a.{dl} "
            f"ON DUPLICATE KEY UPDATE {ts} = VALUES({ts}), {od} = VALUES({od})"
        )
        cur.execute(
            f"DELETE tb FROM {tomb} tb JOIN {applied} a ON {key_eq('tb', 'a')} WHERE NOT a.{dl}"
        )
        cols = ", ".join(_myq(n) for n in [*names, TS, ORD])
        sel = ", ".join(f"a.{_myq(n)}" for n in [*names, TS, ORD])
        upd = ", ".join(f"{_myq(n)} = VALUES({_myq(n)})" for n in [*nonkey, TS, ORD])
        cur.execute(
            f"INSERT INTO {p} ({cols}) SELECT {sel} FROM {applied} a WHERE NOT a.{dl} "
            f"ON DUPLICATE KEY UPDATE {upd}"
        )
        result["upserted"] = result["applied"] - n_deleted
        for child in children:
            fields = [f.name for f in child.frame.schema.fields]
            ccols = ", ".join(_myq(n) for n in fields)
            csel = ", ".join(f"c.{_myq(n)}" for n in fields)
            cur.execute(
                f"INSERT INTO {_myq(child.table)} ({ccols}) SELECT {csel} "
                f"FROM {_myq(stage_children[child.table])} c JOIN {applied} a "
                f"ON {key_eq('c', 'a', child.key_columns)} WHERE NOT a.{dl}"
            )
            result["children"][child.table] = cur.rowcount
        cur.execute(
            f"UPDATE {_myq(STATE_TABLE)} SET batch_id = %s, applied_at = UTC_TIMESTAMP(6) "
            "WHERE app_id = %s",
            (int(batch_id), app_id),
        )
        cur.execute(f"DROP TEMPORARY TABLE {applied}")
    conn.commit()
    return SqlApplyResult(
        True,
        applied_keys=int(result["applied"]),
        upserted=int(result["upserted"]),
        deleted=int(result["deleted"]),
        children_inserted=dict(result["children"]),
    )
