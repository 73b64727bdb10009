"""Relational targets for normalised documents: PostgreSQL, MySQL/MariaDB, SQLite.

DDL comes from :class:`SqlTable` descriptions (primary keys, foreign keys from child to parent,
every identifier quoted). Loads run on the executors over Arrow batches (``mapInArrow``), one
database transaction per Spark partition:

* PostgreSQL: binary ``COPY`` through ``adbc-driver-postgresql`` bulk ingest (Arrow → COPY
  binary in C++, no Python per row), one streamed ``COPY`` per partition and table (child rows
  held back in bounded Arrow buffers, see :func:`_pg_stream`); tables this run creates get their
  primary and foreign keys after the load (:meth:`SqlSink.finish`);
* MySQL/MariaDB: multi-row ``INSERT … VALUES (…), (…)`` statements of up to ``batch_rows`` rows
  and 4 MB, their text built from whole Arrow columns by Arrow compute kernels
  (:func:`mysql_values`, PyMySQL's escaping rules; no Python per row);
* SQLite (embedded, for demos): ``executemany`` in one transaction (``BEGIN IMMEDIATE``).

Retry safety: the first statement of each partition's transaction inserts its ledger row
``(run_id, label, part)`` into ``lakeshift_load_ledger``; the rows follow in the same
transaction, then one ledger row per table with the count the database reported
(``label|inserted:<table>``), and everything commits together. A retried or speculative task
that reaches a committed partition hits the ledger's primary key, writes nothing and reports the
committed counts; two attempts running at once serialise on the ledger row's lock (the second
waits, then finds the key taken). So a partition's rows are in the tables exactly once,
whatever Spark retries. Partition numbers must be stable across attempts: callers load from
persisted DataFrames.
"""

from __future__ import annotations

import logging
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from lakeshift.errors import SinkError
from lakeshift.sinks.sql_types import DialectName, column_type
from lakeshift.spark import col

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

LEDGER = "lakeshift_load_ledger"
Mode = Literal["create", "replace", "append"]
LOAD_RESULT_SCHEMA = "part INT, name STRING, rows LONG, fresh BOOLEAN"


@dataclass(frozen=True)
class SqlColumn:
    """A column: logical type (see :mod:`lakeshift.nosql.bsontypes`) and limits."""

    name: str
    type: str
    max_length: int | None = None
    scale: int | None = None
    nullable: bool = True


@dataclass(frozen=True)
class SqlTable:
    """A table to create and load."""

    name: str
    columns: tuple[SqlColumn, ...]
    primary_key: tuple[str, ...] = ()
    parent: str | None = None
    parent_key: tuple[str, ...] = ()
    references: tuple[str, ...] = ()

    def column(self, name: str) -> SqlColumn:
        """The column called ``name``."""
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class LoadResult:
    """Rows in the table for this run, and how many partitions were loaded now vs before."""

    table: str
    rows: int
    partitions: int
    skipped_partitions: int
    seconds: float = 0.0


# ------------------------------------------------------------------------------------------------
# dialects


@dataclass(frozen=True)
class Dialect:
    """Quoting and type names of one SQL dialect."""

    name: DialectName

    def quote(self, ident: str) -> str:
        """Quote an identifier (doubling the quote character inside)."""
        if self.name == "mysql":
            return "`" + ident.replace("`", "``") + "`"
        return '"' + ident.replace('"', '""') + '"'

    def column_type(self, col: SqlColumn) -> str:
        """The SQL type of a column, from the one type table :mod:`lakeshift.sinks.sql_types`."""
        try:
            return column_type(self.name, col.type, max_length=col.max_length, scale=col.scale)
        except SinkError as exc:
            raise SinkError(f"column {col.name}: {exc}") from exc

    def create_table(self, table: SqlTable, if_not_exists: bool = False, keys: bool = True) -> str:
        """``CREATE TABLE`` with primary and foreign keys (``keys=False``: added later)."""
        q = self.quote
        parts = [
            f"{q(c.name)} {self.column_type(c)}{'' if c.nullable else ' NOT NULL'}"
            for c in table.columns
        ]
        if keys:
            parts += self.key_clauses(table)
        exists = "IF NOT EXISTS " if if_not_exists else ""
        tail = (
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            if self.name == "mysql"
            else ""
        )
        return f"CREATE TABLE {exists}{q(table.name)} (\n  " + ",\n  ".join(parts) + f"\n){tail}"

    def key_clauses(self, table: SqlTable) -> list[str]:
        """The ``PRIMARY KEY`` and ``FOREIGN KEY`` clauses of a table."""
        q = self.quote
        out = []
        if table.primary_key:
            out.append(f"PRIMARY KEY ({', '.join(q(k) for k in table.primary_key)})")
        if table.parent and table.parent_key:
            out.append(
                f"FOREIGN KEY ({', '.join(q(k) for k in table.parent_key)}) REFERENCES "
                f"{q(table.parent)} ({', '.join(q(k) for k in table.references)})"
            )
        return out

    def ledger_ddl(self) -> str:
        """The load ledger table."""
        return self.create_table(
            SqlTable(
                LEDGER,
                (
                    SqlColumn("run_id", "string", max_length=64, nullable=False),
                    SqlColumn("table_name", "string", max_length=255, nullable=False),
                    SqlColumn("part", "int", nullable=False),
                    SqlColumn("rows", "long"),
                ),
                primary_key=("run_id", "table_name", "part"),
            ),
            if_not_exists=True,
        )

    def literal(self, text: str) -> str:
        """A SQL string literal (quotes doubled; MySQL backslashes too)."""
        if self.name == "mysql":
            text = text.replace("\\", "\\\\")
        return "'" + text.replace("'", "''") + "'"

    def placeholder(self, i: int) -> str:
        """Parameter marker number ``i`` (from 1)."""
        return {"postgres": f"${i}", "mysql": "%s", "sqlite": "?"}[self.name]


QUARANTINE_COLUMNS = (
    SqlColumn("run_id", "string", max_length=64, nullable=False),
    SqlColumn("collection", "string", max_length=255, nullable=False),
    SqlColumn("doc_id", "string"),
    SqlColumn("field_path", "string"),
    SqlColumn("raw_value", "string"),
    SqlColumn("reason", "string"),
    SqlColumn("document", "string"),
)


def quarantine_table(name: str = "lakeshift_quarantine") -> SqlTable:
    """The quarantine table (append-only, one row per failing value, keyed by run)."""
    return SqlTable(name, QUARANTINE_COLUMNS)


# ------------------------------------------------------------------------------------------------
# connections


@dataclass(frozen=True)
class Connection:
    """How to reach the database (picklable: shipped to executors, never logged)."""

    dialect: DialectName
    url: str
    schema: str | None = None

    def describe(self) -> str:
        """Secret-free description."""
        if self.dialect == "sqlite":
            return f"sqlite:{self.url}"
        p = urllib.parse.urlsplit(self.url)
        return f"{self.dialect}://{p.hostname}:{p.port}{p.path}"

    def connect(self) -> Any:
        """A DB-API connection with autocommit off."""
        if self.dialect == "postgres":
            import adbc_driver_postgresql.dbapi as pg

            conn = pg.connect(self.url)
            if self.schema:
                cur = conn.cursor()
                cur.execute(f"SET search_path TO {Dialect('postgres').quote(self.schema)}")
                cur.close()
            return conn
        if self.dialect == "mysql":
            import pymysql

            p = urllib.parse.urlsplit(self.url)
            return pymysql.connect(
                host=p.hostname or "127.0.0.1",
                port=p.port or 3306,
                user=urllib.parse.unquote(p.username or ""),
                password=urllib.parse.unquote(p.password or ""),
                database=self.schema or p.path.lstrip("/") or None,
                charset="utf8mb4",
                autocommit=False,
                max_allowed_packet=64 << 20,
            )
        from pathlib import Path

        if self.url != ":memory:":
            Path(self.url).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.url, timeout=120, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        return conn


def error_line(exc: BaseException) -> str:
    """The most telling line of a (possibly Python-worker) exception: its last ``…Error: …``."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error:" in ln or "ERROR:" in ln]
    return (errors[-1] if errors else (lines[0] if lines else type(exc).__name__))[:500]


def _is_duplicate(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(s in text for s in ("integrity", "duplicate", "unique", "23505", "1062"))


# ------------------------------------------------------------------------------------------------
# executor-side loaders


@dataclass(frozen=True)
class TableLoad:
    """One table fed from a column of a *wide* frame (a ``list<struct>`` column, see nosql).

    Attributes:
        column: the wide frame's column holding this table's rows per input row.
        table: the target table; the struct fields are its columns after ``constants``.
        constants: leading columns with a fixed value (e.g. run id and collection).
    """

    column: str
    table: SqlTable
    constants: tuple[tuple[str, str], ...] = ()


Splitter = Callable[["pa.RecordBatch"], list[tuple[int, "pa.RecordBatch"]]]
Counter = Callable[["pa.RecordBatch"], dict[str, int]]


def _to_rows(batch: pa.RecordBatch, dialect: DialectName) -> list[tuple[Any, ...]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = []
    for arr in batch.columns:
        if pa.types.is_timestamp(arr.type):
            naive = arr.cast(pa.timestamp("us"))
            if dialect == "sqlite":
                cols.append(pc.strftime(naive, format="%Y-%m-%dT%H:%M:%S").to_pylist())
                continue
            cols.append(naive.to_pylist())
        elif pa.types.is_decimal(arr.type) and dialect == "sqlite":
            cols.append(arr.cast(pa.string()).to_pylist())
        else:
            cols.append(arr.to_pylist())
    return list(zip(*cols, strict=True))


# what PyMySQL's escape_string escapes, backslash first
_MYSQL_ESCAPES = (
    (b"\\", b"\\\\"),
    (b"\x00", b"\\0"),
    (b"\n", b"\\n"),
    (b"\r", b"\\r"),
    (b"\x1a", b"\\Z"),
    (b"'", b"\\'"),
    (b'"', b'\\"'),
)
MYSQL_STATEMENT_BYTES = 4 << 20


def _hex(col: pa.Array) -> pa.Array:
    """Lower-case hex text of each binary value (numpy over the whole data buffer)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.cast(pa.binary())
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data_buf = arr.buffers()[2]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
        if data_buf is not None
        else np.empty(0, np.uint8)
    )
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    text = np.empty(len(data) * 2, dtype=np.uint8)
    text[0::2] = digits[data >> 4]
    text[1::2] = digits[data & 15]
    new_offsets = ((offsets - offsets[0]) * 2).astype(np.int32)
    hexed = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(new_offsets), pa.py_buffer(text)]
    )
    return pc.if_else(arr.is_null(), pa.scalar(None, pa.binary()), hexed)


def _mysql_literals(col: pa.Array) -> pa.Array | None:
    """SQL literals of a column as a binary array (``NULL`` for nulls), built by Arrow kernels.

    ``None`` for a type this does not handle (the caller falls back to ``executemany``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_boolean(t):
        out = pc.if_else(col, pa.scalar(b"1"), pa.scalar(b"0"))
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        out = col.cast(pa.string()).cast(pa.binary())
    else:
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            text, prefix = _hex(col), b"_binary X'"
        else:
            if pa.types.is_timestamp(t):
                raw = pc.strftime(col.cast(pa.timestamp("us")), format="%Y-%m-%d %H:%M:%S")
            elif pa.types.is_string(t) or pa.types.is_large_string(t):
                raw = col
            else:
                return None
            text, prefix = raw.cast(pa.binary()), b"'"
            for pattern, replacement in _MYSQL_ESCAPES:
                text = pc.replace_substring(text, pattern, replacement)
        out = pc.binary_join_element_wise(pa.scalar(prefix), text, pa.scalar(b"'"), b"")
    return pc.fill_null(out, pa.scalar(b"NULL"))


def mysql_values(batch: pa.RecordBatch, max_rows: int, max_bytes: int) -> list[bytes] | None:
    """``(v, v), (v, v)…`` bodies of multi-row INSERTs for ``batch``, each within the limits.

    Values are written as PyMySQL writes them (strings escaped, bytes as ``_binary X'…'``), but
    by Arrow compute kernels and numpy over whole columns (no Python per row or value).
    ``None`` when a column type is not handled.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.num_rows == 0:
        return []
    cols = [_mysql_literals(c) for c in batch.columns]
    if any(c is None for c in cols):
        return None
    rows = pc.binary_join_element_wise(*cols, b", ")
    rows = pc.binary_join_element_wise(pa.scalar(b"("), rows, pa.scalar(b")"), b"")
    sizes = np.cumsum(pc.binary_length(rows).to_numpy(zero_copy_only=False) + 1)
    out, start = [], 0
    while start < len(rows):
        base = sizes[start - 1] if start else 0
        end = int(np.searchsorted(sizes, base + max_bytes, side="right"))
        end = min(max(end, start + 1), start + max_rows, len(rows))
        part = rows.slice(start, end - start)
        lists = pa.ListArray.from_arrays(pa.array([0, len(part)], pa.int32()), part)
        out.append(pc.binary_join(lists, b",")[0].as_py())
        start = end
    return out


def _jsonb_ready(batch: pa.RecordBatch, jsonb: set[str]) -> pa.RecordBatch:
    """Prefix jsonb columns with the version byte (1) that jsonb's binary COPY format needs."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not jsonb.intersection(batch.schema.names):
        return batch
    arrays = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        arr = column
        if name in jsonb:
            arr = pc.binary_join_element_wise(
                pa.scalar(b"\x01"), arr.cast(pa.binary()), pa.scalar(b"")
            )
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


class _Writer:
    """Writes Arrow batches into one open MySQL or SQLite transaction (multi-row inserts).

    PostgreSQL partitions go through :func:`_pg_stream` instead.
    """

    def __init__(self, conn_info: Connection, cur: Any, batch_rows: int) -> None:
        self.conn_info = conn_info
        self.cur = cur
        self.batch_rows = batch_rows
        self.dialect = Dialect(conn_info.dialect)
        self._inserts: dict[str, str] = {}

    def _backslash_escapes(self) -> bool:
        """MySQL: the session reads backslash escapes (no ``NO_BACKSLASH_ESCAPES`` mode)."""
        from pymysql.constants import SERVER_STATUS

        status = int(getattr(self.cur.connection, "server_status", 0) or 0)
        return not status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES

    def write(self, table: SqlTable, batch: pa.RecordBatch) -> int:
        """Append ``batch`` (columns named as the table's); returns the rows the database took."""
        if self.conn_info.dialect == "mysql" and self._backslash_escapes():
            bodies = mysql_values(batch, self.batch_rows, MYSQL_STATEMENT_BYTES)
            if bodies is not None:
                q = self.dialect.quote
                head = (
                    f"INSERT INTO {q(table.name)} "
                    f"({', '.join(q(n) for n in batch.schema.names)}) VALUES "
                ).encode()
                done = 0
                for body in bodies:
                    done += int(self.cur.execute(head + body) or 0)
                return done
        sql = self._inserts.get(table.name)
        if sql is None:
            q, ph = self.dialect.quote, self.dialect.placeholder
            names = batch.schema.names
            sql = (
                f"INSERT INTO {q(table.name)} ({', '.join(q(n) for n in names)}) VALUES "
                f"({', '.join(ph(i + 1) for i in range(len(names)))})"
            )
            self._inserts[table.name] = sql
        rows = _to_rows(batch, self.conn_info.dialect)
        done = 0
        for start in range(0, len(rows), self.batch_rows):
            chunk = rows[start : start + self.batch_rows]
            self.cur.executemany(sql, chunk)
            count = self.cur.rowcount
            done += count if count is not None and count >= 0 else len(chunk)
        return done


RESULT_TYPES = ("part", "name", "rows", "fresh")
TIMING_PREFIX = "time_us:"
DEFAULT_FLUSH_ROWS = 500_000


class _Clock:
    """Microseconds spent per phase of one partition's load (see :data:`TIMING_PREFIX`)."""

    def __init__(self) -> None:
        import time

        self.now = time.perf_counter
        self.spent: dict[str, float] = {}

    def add(self, phase: str, since: float) -> float:
        """Charge the time since ``since`` to ``phase``; returns the current reading."""
        now = self.now()
        self.spent[phase] = self.spent.get(phase, 0.0) + (now - since)
        return now

    def inside(self) -> float:
        """Time charged so far to the phases that run inside a ``COPY`` stream."""
        return self.spent.get("handoff", 0.0) + self.spent.get("split", 0.0)

    def counters(self) -> dict[str, int]:
        """``time_us:<phase>`` counters."""
        return {TIMING_PREFIX + k: int(v * 1e6) for k, v in self.spent.items()}


def _pg_stream(
    cur: Any,
    conn_info: Connection,
    tables: list[SqlTable],
    batches: Iterator[pa.RecordBatch],
    *,
    split: Splitter,
    count: Counter | None,
    totals: dict[str, int],
    clock: _Clock,
    flush_rows: int,
) -> None:
    """Stream one partition into PostgreSQL with as few binary ``COPY`` statements as possible.

    The first table (the parent) goes to one ``adbc_ingest`` call whose ``RecordBatchReader``
    pulls Spark's batches while the database consumes them: one ``COPY`` for many batches. The
    other tables' rows wait as Arrow batches until ``flush_rows`` of them are held (bounded
    memory); then the parent stream ends, each held table is written with one ``COPY`` (parents
    before children, so foreign keys hold at every statement) and the next parent stream starts.
    """
    import pyarrow as pa

    jsonb = [
        {c.name for c in t.columns if c.type == "json" and c.max_length is None} for t in tables
    ]
    source = iter(batches)
    failure: list[BaseException] = []

    def pull() -> pa.RecordBatch | None:
        t = clock.now()
        batch = next(source, None)
        clock.add("handoff", t)
        return batch

    def ingest(ti: int, data: pa.RecordBatchReader) -> None:
        t, inside = clock.now(), clock.inside()
        try:
            n = cur.adbc_ingest(
                tables[ti].name, data, mode="append", db_schema_name=conn_info.schema
            )
        except Exception:
            if failure:  # raised inside the stream: report it, not ADBC's echo of it
                raise failure[0] from None
            raise
        clock.add("copy", t)
        clock.spent["copy"] -= clock.inside() - inside
        name = tables[ti].name
        totals[f"inserted:{name}"] += int(n) if n is not None and n >= 0 else 0

    held: list[list[pa.RecordBatch]] = [[] for _ in tables]
    held_rows = 0

    def parent_of(batch: pa.RecordBatch) -> pa.RecordBatch:
        """Split ``batch``: hold the other tables' rows, return the first table's."""
        nonlocal held_rows
        t = clock.now()
        first = None
        for ti, piece in split(batch):
            totals[f"sent:{tables[ti].name}"] += piece.num_rows
            rows = _jsonb_ready(piece, jsonb[ti])
            if ti == 0:
                first = rows
            elif rows.num_rows:
                held[ti].append(rows)
                held_rows += rows.num_rows
        for key, value in (count(batch) if count else {}).items():
            totals[key] = totals.get(key, 0) + value
        clock.add("split", t)
        assert first is not None, "the splitter yields the first table for every batch"
        return first

    pending = pull()

    def stream(head: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        nonlocal pending
        try:
            yield head
            while pending is not None and held_rows < flush_rows:
                rows = parent_of(pending)
                pending = pull()
                yield rows
        except BaseException as exc:
            failure.append(exc)
            raise

    while pending is not None:
        head = parent_of(pending)
        pending = pull()
        ingest(0, pa.RecordBatchReader.from_batches(head.schema, stream(head)))
        for ti in range(1, len(tables)):
            if held[ti]:
                ingest(ti, pa.RecordBatchReader.from_batches(held[ti][0].schema, held[ti]))
                held[ti] = []
        held_rows = 0


def partition_loader(
    conn_info: Connection,
    run_id: str,
    label: str,
    tables: list[SqlTable],
    split: Splitter,
    *,
    count: Counter | None = None,
    batch_rows: int = 10_000,
    flush_rows: int = DEFAULT_FLUSH_ROWS,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` loader: one ledger-guarded transaction per Spark partition.

    ``split(batch)`` yields ``(table index, rows)`` pairs in load order (parents first, the
    first table for every batch); ``count(batch)`` adds counters (e.g. documents) to the
    per-partition result. The function emits rows ``part, name, rows, fresh``:
    ``inserted:<table>`` (rows the database reported), ``sent:<table>`` (rows handed to it),
    each counter, and ``time_us:<phase>`` timings; ``fresh`` is false for a partition an earlier
    attempt already committed (its numbers then come from the ledger, timings are not stored).
    PostgreSQL partitions stream through :func:`_pg_stream` (``flush_rows`` bounds the child rows
    held in memory); MySQL and SQLite write each batch with multi-row inserts of ``batch_rows``.
    """
    dialect = Dialect(conn_info.dialect)
    q, ph = dialect.quote, dialect.placeholder
    cols = f"{q('run_id')}, {q('table_name')}, {q('part')}, {q('rows')}"
    claim = f"INSERT INTO {q(LEDGER)} ({cols}) VALUES ({ph(1)}, {ph(2)}, {ph(3)}, NULL)"
    detail = f"INSERT INTO {q(LEDGER)} ({cols}) VALUES ({ph(1)}, {ph(2)}, {ph(3)}, {ph(4)})"
    lookup = (
        f"SELECT {q('table_name')}, {q('rows')} FROM {q(LEDGER)} WHERE {q('run_id')} = {ph(1)} "
        f"AND {q('part')} = {ph(2)} AND {q('table_name')} LIKE {ph(3)}"
    )
    prefix = label + "|"

    def fn(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from pyspark import TaskContext

        ctx = TaskContext.get()
        part = ctx.partitionId() if ctx is not None else 0
        schema = pa.schema(
            [
                ("part", pa.int32()),
                ("name", pa.string()),
                ("rows", pa.int64()),
                ("fresh", pa.bool_()),
            ]
        )

        def result(totals: dict[str, int], fresh: bool) -> pa.RecordBatch:
            names = sorted(totals)
            return pa.RecordBatch.from_pydict(
                {
                    "part": [part] * len(names),
                    "name": names,
                    "rows": [totals[n] for n in names],
                    "fresh": [fresh] * len(names),
                },
                schema=schema,
            )

        clock = _Clock()
        t = clock.now()
        conn = conn_info.connect()
        t = clock.add("connect", t)
        try:
            cur = conn.cursor()
            if conn_info.dialect == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            try:
                cur.execute(claim, (run_id, label, part))
            except Exception as exc:
                if not _is_duplicate(exc):
                    raise
                conn.rollback()
                cur = conn.cursor()
                like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                cur.execute(lookup, (run_id, part, like))
                found = {
                    str(n)[len(prefix) :]: int(r or 0)
                    for n, r in cur.fetchall()
                    if str(n).startswith(prefix)
                }
                conn.rollback()
                for _ in batches:  # drain the input; nothing is written
                    pass
                yield result(found, False)
                return
            clock.add("ledger", t)
            totals: dict[str, int] = {}
            for tb in tables:
                totals[f"inserted:{tb.name}"] = 0
                totals[f"sent:{tb.name}"] = 0
            if conn_info.dialect == "postgres":
                _pg_stream(
                    cur,
                    conn_info,
                    tables,
                    batches,
                    split=split,
                    count=count,
                    totals=totals,
                    clock=clock,
                    flush_rows=flush_rows,
                )
            else:
                writer = _Writer(conn_info, cur, batch_rows)
                t = clock.now()
                for batch in batches:
                    t = clock.add("handoff", t)
                    for ti, rows in split(batch):
                        if rows.num_rows:
                            name = tables[ti].name
                            totals[f"sent:{name}"] += rows.num_rows
                            totals[f"inserted:{name}"] += writer.write(tables[ti], rows)
                    for key, value in (count(batch) if count else {}).items():
                        totals[key] = totals.get(key, 0) + value
                    t = clock.add("copy", t)
            t = clock.now()
            ledger = [(run_id, prefix + key, part, value) for key, value in totals.items()]
            if conn_info.dialect == "postgres":  # one COPY instead of a statement per counter
                cur.adbc_ingest(
                    LEDGER,
                    pa.RecordBatch.from_arrays(
                        [
                            pa.array([r[i] for r in ledger], typ)
                            for i, typ in enumerate((pa.string(), pa.string(), pa.int32()))
                        ]
                        + [pa.array([r[3] for r in ledger], pa.int64())],
                        names=["run_id", "table_name", "part", "rows"],
                    ),
                    mode="append",
                    db_schema_name=conn_info.schema,
                )
            else:
                cur.executemany(detail, ledger)
            t = clock.add("ledger", t)
            if conn_info.dialect == "sqlite":
                cur.execute("COMMIT")
            else:
                conn.commit()
            clock.add("commit", t)
            yield result({**totals, **clock.counters()}, True)
        finally:
            conn.close()

    return fn


def flat_splitter(batch: pa.RecordBatch) -> list[tuple[int, pa.RecordBatch]]:
    """A frame whose columns are exactly one table's."""
    return [(0, batch)]


def wide_splitter(loads: list[TableLoad]) -> Splitter:
    """Rows of each table from the ``list<struct>`` columns of a wide batch."""

    def split(batch: pa.RecordBatch) -> list[tuple[int, pa.RecordBatch]]:
        import pyarrow as pa

        out = []
        for i, load in enumerate(loads):
            lists = batch.column(load.column)
            structs = lists.flatten()
            n = len(structs)
            arrays = [pa.array([v] * n, pa.string()) for _, v in load.constants]
            names = [k for k, _ in load.constants]
            arrays += [structs.field(j) for j in range(structs.type.num_fields)]
            names += [structs.type.field(j).name for j in range(structs.type.num_fields)]
            out.append((i, pa.RecordBatch.from_arrays(arrays, names=names)))
        return out

    return split


# ------------------------------------------------------------------------------------------------
# driver side


@dataclass
class SqlSink:
    """Creates tables and loads DataFrames into one relational database.

    PostgreSQL tables that ``prepare`` creates (modes ``create`` and ``replace``) get their
    primary and foreign keys only in :meth:`finish`, after the load, the way ``pg_restore``
    does it: one index build and one validating join instead of an index update and a foreign
    key trigger per row (about 3x faster loads of child tables). Tables that already exist
    (``append``) keep their keys and are checked per row. The ledger, not the primary key,
    is what makes retries safe, so nothing is weaker during the load; ``finish`` fails if the
    data break a key.

    Attributes:
        conn_info: the database.
        batch_rows: rows per multi-row INSERT (MySQL, SQLite).
        flush_rows: PostgreSQL: child-table rows held in memory per task before they are
            written (see :func:`partition_loader`).
        arrow_batch_rows: ``spark.sql.execution.arrow.maxRecordsPerBatch`` during loads
            (``None``: the session's value).
        arrow_batch_bytes: ``spark.sql.execution.arrow.maxBytesPerBatch`` during loads
            (``None``: the session's value).
        defer_keys: add PostgreSQL keys after the load (see above).

    Example:
        >>> sink = SqlSink(Connection("sqlite", "/tmp/demo.db"))  # doctest: +SKIP
        >>> sink.prepare([table], mode="replace")  # doctest: +SKIP
        >>> sink.load(df, table, run_id="r1").rows  # doctest: +SKIP
        >>> sink.finish([table])  # doctest: +SKIP
    """

    conn_info: Connection
    batch_rows: int = 10_000
    flush_rows: int = DEFAULT_FLUSH_ROWS
    arrow_batch_rows: int | None = 100_000
    arrow_batch_bytes: int | None = 64 << 20
    defer_keys: bool = True
    dialect: Dialect = field(init=False)

    def __post_init__(self) -> None:
        self.dialect = Dialect(self.conn_info.dialect)

    def describe(self) -> str:
        """Secret-free description of the target."""
        return self.conn_info.describe()

    def _execute(self, statements: list[str]) -> None:
        try:
            conn = self.conn_info.connect()
        except Exception as exc:
            raise SinkError(
                f"{self.describe()}: cannot connect: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            cur = conn.cursor()
            for sql in statements:
                log.debug("%s: %s", self.describe(), sql)
                cur.execute(sql)
            if self.conn_info.dialect != "sqlite":
                conn.commit()
        except Exception as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SinkError(f"{self.describe()}: DDL failed: {first}") from exc
        finally:
            conn.close()

    def existing_tables(self) -> set[str]:
        """Names of the tables in the target schema/database."""
        conn = self.conn_info.connect()
        try:
            cur = conn.cursor()
            if self.conn_info.dialect == "postgres":
                cur.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                    "coalesce($1, current_schema())",
                    (self.conn_info.schema,),
                )
            elif self.conn_info.dialect == "mysql":
                cur.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()"
                )
            else:
                cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            found = {str(r[0]) for r in cur.fetchall()}
            if self.conn_info.dialect != "sqlite":
                conn.rollback()
            return found
        finally:
            conn.close()

    def ddl(self, tables: list[SqlTable], mode: Mode, labels: list[str] | None = None) -> list[str]:
        """The statements :meth:`prepare` runs (parents listed before children).

        ``create`` and ``replace`` also forget the ledger rows of the tables and of the load
        ``labels`` (see :meth:`load_wide`): the rows they stood for are gone, so a run that
        reuses its run id loads again instead of skipping every partition.
        """
        q, lit = self.dialect.quote, self.dialect.literal
        stmts = [self.dialect.ledger_ddl()]
        if mode == "replace":
            for t in reversed(tables):
                stmts.append(f"DROP TABLE IF EXISTS {q(t.name)}")
        if mode != "append":
            names = ", ".join(lit(n) for n in [t.name for t in tables] + list(labels or []))
            col = q("table_name")
            under = "".join(
                f" OR SUBSTR({col}, 1, {len(label) + 1}) = {lit(label + '|')}"
                for label in labels or []
            )
            stmts.append(f"DELETE FROM {q(LEDGER)} WHERE {col} IN ({names}){under}")
        keys = mode == "append" or not self._deferring()
        for t in tables:
            stmts.append(self.dialect.create_table(t, if_not_exists=mode == "append", keys=keys))
        return stmts

    def _deferring(self) -> bool:
        return self.defer_keys and self.conn_info.dialect == "postgres"

    def missing_keys(self, tables: list[SqlTable]) -> list[str]:
        """``ALTER TABLE`` statements adding the keys ``tables`` lack (PostgreSQL; else none).

        Primary keys come first (parents before children), then foreign keys.
        """
        if self.conn_info.dialect != "postgres":
            return []
        conn = self.conn_info.connect()
        try:
            cur = conn.cursor()
            cur.execute(
                "SELECT c.relname, k.contype FROM pg_constraint k "
                "JOIN pg_class c ON c.oid = k.conrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = coalesce($1, current_schema()) AND k.contype IN ('p', 'f')",
                (self.conn_info.schema,),
            )
            have = {(str(r[0]), str(r[1])) for r in cur.fetchall()}
            conn.rollback()
        finally:
            conn.close()
        q = self.dialect.quote
        pks, fks = [], []
        for t in tables:
            clauses = self.dialect.key_clauses(t)
            if t.primary_key and (t.name, "p") not in have:
                pks.append(f"ALTER TABLE {q(t.name)} ADD {clauses[0]}")
            if t.parent and t.parent_key and (t.name, "f") not in have:
                fks.append(f"ALTER TABLE {q(t.name)} ADD {clauses[-1]}")
        return pks + fks

    def finish(self, tables: list[SqlTable]) -> list[str]:
        """Add the keys :meth:`prepare` deferred (idempotent: only missing ones); returns them.

        Raises:
            SinkError: the loaded rows break a key (a duplicate or an orphan row).
        """
        stmts = self.missing_keys(tables)
        if stmts:
            self._execute(stmts)
        return stmts

    def prepare(
        self,
        tables: list[SqlTable],
        mode: Mode,
        keep: list[SqlTable] | None = None,
        labels: list[str] | None = None,
    ) -> None:
        """Create ``tables`` per ``mode`` (and ``keep`` tables if missing, e.g. quarantine).

        ``labels``: load labels whose ledger rows ``create``/``replace`` forget (see :meth:`ddl`).

        Raises:
            SinkError: ``create`` and a table exists already, or any DDL fails.
        """
        if mode == "create":
            clash = sorted(self.existing_tables() & {t.name for t in tables})
            if clash:
                raise SinkError(
                    f"{self.describe()}: mode create: table(s) already exist: {', '.join(clash)}; "
                    "use --replace or --append"
                )
        stmts = self.ddl(tables, mode, labels)
        for t in keep or []:
            stmts.append(self.dialect.create_table(t, if_not_exists=True))
        self._execute(stmts)

    def _run(self, df: DataFrame, fn: Any, what: str) -> tuple[dict[str, int], int, int]:
        from pyspark.sql import functions as F

        # fewer, larger Arrow batches (less per-batch work on both sides), bounded in bytes too
        # because the same stage's upstream mapInArrow (the document mapper) gets them as well
        conf = df.sparkSession.conf
        wanted = {
            "spark.sql.execution.arrow.maxRecordsPerBatch": self.arrow_batch_rows,
            "spark.sql.execution.arrow.maxBytesPerBatch": self.arrow_batch_bytes,
        }
        before = {k: conf.get(k, None) for k, v in wanted.items() if v}
        for k in before:
            conf.set(k, str(wanted[k]))
        try:
            rows = (
                df.mapInArrow(fn, LOAD_RESULT_SCHEMA)
                .groupBy("name")
                .agg(
                    F.sum("rows").alias("rows"),
                    F.count(F.lit(1)).alias("parts"),
                    F.sum(F.when(F.col("fresh"), 0).otherwise(1)).alias("skipped"),
                )
                .collect()  # one row per table/counter name
            )
        except Exception as exc:
            raise SinkError(f"{self.describe()}: loading {what} failed: {error_line(exc)}") from exc
        finally:
            for k, v in before.items():
                if v is None:
                    conf.unset(k)
                else:
                    conf.set(k, v)
        totals = {str(r["name"]): int(r["rows"] or 0) for r in rows}
        parts = max((int(r["parts"]) for r in rows), default=0)
        skipped = max((int(r["skipped"] or 0) for r in rows), default=0)
        return totals, parts, skipped

    def load(
        self, df: DataFrame, table: SqlTable, run_id: str, ledger_name: str | None = None
    ) -> LoadResult:
        """Load ``df`` (columns named as ``table``'s), one ledger-guarded transaction per partition.

        ``rows`` of the result is what the database reported inserting (summed over partitions,
        including partitions an earlier attempt of the same run already committed).

        Raises:
            SinkError: the Spark job failed.
        """
        import time

        started = time.monotonic()
        fn = partition_loader(
            self.conn_info,
            run_id,
            ledger_name or table.name,
            [table],
            flat_splitter,
            batch_rows=self.batch_rows,
            flush_rows=self.flush_rows,
        )
        frame = df.select(*[col(c.name) for c in table.columns])
        totals, parts, skipped = self._run(frame, fn, table.name)
        return LoadResult(
            table.name,
            totals.get(f"inserted:{table.name}", 0),
            parts,
            skipped,
            round(time.monotonic() - started, 3),
        )

    def load_wide(
        self,
        wide: DataFrame,
        loads: list[TableLoad],
        run_id: str,
        label: str,
        count: Counter | None = None,
    ) -> tuple[dict[str, int], int, int]:
        """Load several tables from one wide frame in one pass, one transaction per partition.

        Within each Arrow batch, tables are written in ``loads`` order (parents first), so
        foreign keys hold at every statement. Returns ``(totals, partitions, skipped)`` where
        ``totals`` has ``inserted:<table>``, ``sent:<table>`` and the ``count`` counters.

        Raises:
            SinkError: the Spark job failed.
        """
        fn = partition_loader(
            self.conn_info,
            run_id,
            label,
            [ld.table for ld in loads],
            wide_splitter(loads),
            count=count,
            batch_rows=self.batch_rows,
            flush_rows=self.flush_rows,
        )
        return self._run(wide, fn, label)

    def count_rows(self, table: str, where: str | None = None) -> int:
        """``SELECT count(*)`` of a table (verification)."""
        conn = self.conn_info.connect()
        try:
            cur = conn.cursor()
            cur.execute(
                f"SELECT count(*) FROM {self.dialect.quote(table)}"
                + (f" WHERE {where}" if where else "")
            )
            row = cur.fetchone()
            if self.conn_info.dialect != "sqlite":
                conn.rollback()
            return int(row[0])
        finally:
            conn.close()


def connection_from_url(url: str, schema: str | None = None) -> Connection:
    """``postgresql://…``, ``mysql://…``/``mariadb://…`` or ``sqlite:PATH`` → :class:`Connection`.

    Raises:
        SinkError: an unknown scheme.
    """
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return Connection("postgres", "postgresql:" + url.split(":", 1)[1], schema)
    if scheme in ("mysql", "mariadb"):
        return Connection("mysql", "mysql:" + url.split(":", 1)[1], schema)
    if scheme == "sqlite":
        path = url.split(":", 1)[1]
        return Connection("sqlite", path[2:] if path.startswith("//") else path, schema)
    raise SinkError(
        f"target url: expected postgresql://, mysql://, mariadb:// or sqlite:PATH, found {scheme}:"
    )
