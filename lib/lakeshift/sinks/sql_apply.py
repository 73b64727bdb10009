"""Apply a reduced change batch to PostgreSQL: staging tables, then one guarded transaction.

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

from lakeshift.errors import SinkError
from lakeshift.sync.columns import DELETED, HIDDEN, ORD, TS

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
    """The PostgreSQL column type for a Spark type (complex types become ``jsonb``)."""
    name = dtype.simpleString()
    simple = {
        "string": "text",
        "bigint": "bigint",
        "int": "integer",
        "smallint": "smallint",
        "tinyint": "smallint",
        "double": "double precision",
        "float": "real",
        "boolean": "boolean",
        "timestamp": "timestamptz",
        "timestamp_ntz": "timestamp",
        "date": "date",
        "binary": "bytea",
    }
    if name in simple:
        return simple[name]
    if name.startswith("decimal"):
        return name.replace("decimal", "numeric")
    return "jsonb"


def _is_complex(dtype: DataType) -> bool:
    return pg_type(dtype) == "jsonb"


def _stage_frame(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(
        *[
            F.to_json(F.col(f"`{f.name}`")).alias(f.name)
            if _is_complex(f.dataType)
            else F.col(f"`{f.name}`")
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
