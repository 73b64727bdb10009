"""Durable coordinator state: tables, jobs, the audit log and operator requests.

SQLite by default (stdlib ``sqlite3``, WAL, one transaction per scheduler tick), PostgreSQL
optionally through the same SQL and a tiny DB-API adapter (:class:`Dialect`). Every state change
is a row in ``audit`` (when, from, to, why, cluster, application id), written in the same
transaction as the change itself.

Example:
    >>> store = StateStore.open(":memory:")
    >>> store.init_schema()
    >>> store.ensure_tables([("t1", 0, 10)])
    1
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeshift.coordinator.fsm import PHASES, State, check_transition
from lakeshift.errors import ConfigError, LakeshiftError


class StoreError(LakeshiftError):
    """The state store is unreachable, locked by another coordinator, or inconsistent."""


@dataclass(frozen=True)
class Dialect:
    """The few differences between SQLite and PostgreSQL SQL."""

    name: str
    param: str  # "?" or "%s"
    serial: str  # auto-increment primary key column type
    real: str

    def sql(self, text: str) -> str:
        """Rewrite ``?`` placeholders and type markers for this dialect."""
        text = text.replace("{serial}", self.serial).replace("{real}", self.real)
        return text.replace("?", self.param) if self.param != "?" else text


SQLITE = Dialect("sqlite", "?", "INTEGER PRIMARY KEY AUTOINCREMENT", "REAL")
POSTGRES = Dialect("postgresql", "%s", "BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION")

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS tables (
        name TEXT PRIMARY KEY, state TEXT NOT NULL, step INTEGER NOT NULL DEFAULT 0,
        attempt INTEGER NOT NULL DEFAULT 0, priority INTEGER NOT NULL DEFAULT 0,
        size_bytes BIGINT NOT NULL DEFAULT 0, cluster TEXT, app_id TEXT, token TEXT,
        not_before {real} NOT NULL DEFAULT 0, last_error TEXT, updated {real} NOT NULL,
        started {real}, finished {real}, round INTEGER NOT NULL DEFAULT 0, resume_state TEXT,
        approved_by TEXT, details TEXT NOT NULL DEFAULT '{}')""",
    """CREATE TABLE IF NOT EXISTS jobs (
        token TEXT PRIMARY KEY, table_name TEXT NOT NULL, step INTEGER NOT NULL,
        kind TEXT NOT NULL, attempt INTEGER NOT NULL, cluster TEXT NOT NULL, app_id TEXT,
        status TEXT NOT NULL, exit_code INTEGER, error TEXT, metrics TEXT,
        submitted_at {real} NOT NULL, running_at {real}, finished_at {real}, spark TEXT)""",
    "CREATE INDEX IF NOT EXISTS jobs_open ON jobs (status)",
    "CREATE INDEX IF NOT EXISTS jobs_table ON jobs (table_name)",
    """CREATE TABLE IF NOT EXISTS audit (
        id {serial}, at {real} NOT NULL, table_name TEXT NOT NULL, from_state TEXT NOT NULL,
        to_state TEXT NOT NULL, why TEXT NOT NULL, cluster TEXT, app_id TEXT, token TEXT)""",
    "CREATE INDEX IF NOT EXISTS audit_table ON audit (table_name)",
    """CREATE TABLE IF NOT EXISTS requests (
        id {serial}, at {real} NOT NULL, action TEXT NOT NULL, table_name TEXT,
        done INTEGER NOT NULL DEFAULT 0)""",
]

#: The layout of the tables above; a state database of another layout is refused.
SCHEMA_VERSION = "2"

#: States a table may "move" to itself in (a catch-up round, a dual-run round).
SELF_MOVES = frozenset({*PHASES, State.READY})

#: Job statuses. ``submitting`` is written before the backend is asked to launch.
OPEN_JOB = ("submitting", "submitted", "running")


@dataclass
class TableRow:
    """A table's persisted state."""

    name: str
    state: State
    step: int
    attempt: int
    priority: int
    size_bytes: int
    cluster: str | None
    app_id: str | None
    token: str | None
    not_before: float
    last_error: str | None
    updated: float
    started: float | None
    finished: float | None
    round: int = 0
    resume_state: State | None = None
    approved_by: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobRow:
    """One submission of one step of one table."""

    token: str
    table_name: str
    step: int
    kind: str
    attempt: int
    cluster: str
    app_id: str | None
    status: str
    exit_code: int | None
    error: str | None
    metrics: str | None
    submitted_at: float
    running_at: float | None
    finished_at: float | None
    spark: str | None = None  # the application's metrics from its event log (JSON)


@dataclass
class Batch:
    """Writes collected during one scheduler tick, applied in one transaction."""

    transitions: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    new_jobs: list[tuple[Any, ...]] = field(default_factory=list)
    job_updates: list[tuple[Any, ...]] = field(default_factory=list)
    done_requests: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.transitions
            or self.audit
            or self.new_jobs
            or self.job_updates
            or self.done_requests
        )

    def transition(
        self,
        row: TableRow,
        dst: State,
        why: str,
        *,
        now: float,
        cluster: str | None = None,
        app_id: str | None = None,
        token: str | None = None,
        step: int | None = None,
        attempt: int | None = None,
        not_before: float | None = None,
        error: str | None = None,
        round: int | None = None,
        resume_state: State | str | None = "",
        approved_by: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Check ``row.state → dst``, update ``row`` in memory and queue the writes.

        ``details`` are merged into the row's details (lag, deviation, report, start point …);
        ``resume_state`` ``""`` keeps the remembered state, ``None`` clears it.

        Raises:
            IllegalTransitionError: the move is not allowed.
        """
        src = row.state
        if src is not dst or src not in SELF_MOVES:  # a phase may record a round in place
            check_transition(src, dst, row.name)
        row.state = dst
        if cluster is not None:
            row.cluster = cluster
        if app_id is not None:
            row.app_id = app_id
        if token is not None:
            row.token = token
        if step is not None:
            row.step = step
        if attempt is not None:
            row.attempt = attempt
        if not_before is not None:
            row.not_before = not_before
        if error is not None:
            row.last_error = error[-2000:]
        if round is not None:
            row.round = round
        if resume_state != "":
            row.resume_state = resume_state  # type: ignore[assignment]
        if approved_by is not None:
            row.approved_by = approved_by or None
        if details:
            row.details = {**row.details, **details}
        if src is State.PENDING and row.started is None:
            row.started = now
        if dst is State.DONE:
            row.finished = now
        row.updated = now
        self.transitions.append(
            (
                dst.value,
                row.step,
                row.attempt,
                row.cluster,
                row.app_id,
                row.token,
                row.not_before,
                row.last_error,
                now,
                row.started,
                row.finished,
                row.round,
                row.resume_state.value if row.resume_state else None,
                row.approved_by,
                json.dumps(row.details, sort_keys=True, default=str),
                row.name,
                src.value,
            )
        )
        self.audit.append(
            (now, row.name, src.value, dst.value, why[:2000], row.cluster, row.app_id, row.token)
        )


class StateStore:
    """Coordinator state in SQLite or PostgreSQL (see the module docstring)."""

    def __init__(self, conn: Any, dialect: Dialect, where: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.where = where
        self._lock_fd: int | None = None

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | Path) -> StateStore:
        """Open ``sqlite:///path``, a plain file path, ``:memory:`` or ``postgresql://…``.

        Raises:
            StoreError: the database cannot be opened.
        """
        text = str(url)
        if text.startswith(("postgresql://", "postgres://")):
            try:
                import psycopg
            except ImportError as exc:  # pragma: no cover - optional dependency
                raise ConfigError("state: postgresql:// needs the psycopg package") from exc
            try:
                pg_conn: Any = psycopg.connect(text)
            except psycopg.Error as exc:
                raise StoreError(f"state: cannot connect to PostgreSQL: {exc}") from exc
            return cls(pg_conn, POSTGRES, "postgresql")
        path = text.removeprefix("sqlite:///")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            conn: Any = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise StoreError(f"state: cannot open SQLite database {path}: {exc}") from exc
        return cls(conn, SQLITE, path)

    def close(self) -> None:
        """Close the connection and release the coordinator lock."""
        self.release_lock()
        self.conn.close()

    # ---- low level -----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor inside one transaction (committed on success, rolled back on error)."""
        cur = self.conn.cursor()
        if self.dialect is SQLITE:
            cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            if self.dialect is SQLITE:
                cur.execute("ROLLBACK")
            else:
                self.conn.rollback()
            raise
        else:
            if self.dialect is SQLITE:
                cur.execute("COMMIT")
            else:
                self.conn.commit()

    def _q(self, text: str) -> str:
        return self.dialect.sql(text)

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return all rows."""
        cur = self.conn.cursor()
        cur.execute(self._q(text), tuple(params))
        rows = list(cur.fetchall())
        if self.dialect is not SQLITE:
            self.conn.commit()  # end the read transaction
        return rows

    def init_schema(self) -> None:
        """Create the tables if missing; refuse a state database of another layout.

        Raises:
            StoreError: the database holds state written by a lakeshift with another layout.
        """
        with self.transaction() as cur:
            cur.execute(
                self._q(
                    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                )
            )
            cur.execute(self._q("SELECT value FROM meta WHERE key = 'schema_version'"))
            found = cur.fetchall()
            if found and found[0][0] != SCHEMA_VERSION:
                raise StoreError(
                    f"state {self.where}: written by another lakeshift version (state layout "
                    f"{found[0][0]}, this one reads {SCHEMA_VERSION}); finish that run with its "
                    f"own version or start this one in a new --state-dir"
                )
            if not found:
                cur.execute(self._q("SELECT key FROM meta WHERE key IN ('run_id', 'started')"))
                if cur.fetchall():
                    raise StoreError(
                        f"state {self.where}: written by an older lakeshift (no state layout "
                        f"version); start this run in a new --state-dir"
                    )
            for stmt in SCHEMA:
                cur.execute(self._q(stmt))
            if not found:
                cur.execute(
                    self._q("INSERT INTO meta (key, value) VALUES ('schema_version', ?)"),
                    (SCHEMA_VERSION,),
                )

    # ---- coordinator lock ----------------------------------------------------------------
    def acquire_lock(self) -> None:
        """Make sure only one coordinator drives this state (file lock / advisory lock).

        The lock dies with the process, so a killed coordinator never blocks its restart.

        Raises:
            StoreError: another coordinator holds it.
        """
        if self._lock_fd is not None:
            return
        if self.dialect is SQLITE:
            if self.where == ":memory:":
                return
            import fcntl

            fd = os.open(self.where + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                raise StoreError(
                    f"state {self.where}: another coordinator is running on it (lock held)"
                ) from exc
            self._lock_fd = fd
        else:
            row = self.query("SELECT pg_try_advisory_lock(727274)")
            if not row or not row[0][0]:
                raise StoreError("state postgresql: another coordinator is running on it")
            self._lock_fd = -1

    def release_lock(self) -> None:
        """Release the lock taken by :meth:`acquire_lock`."""
        if self._lock_fd is not None:
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
            else:
                self.query("SELECT pg_advisory_unlock(727274)")
            self._lock_fd = None

    # ---- meta ----------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        """A run-level value (``paused``, ``plan``, ``run_id`` …)."""
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        """Set a run-level value."""
        with self.transaction() as cur:
            cur.execute(
                self._q(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                (key, value),
            )

    # ---- tables --------------------------------------------------------------------------
    def ensure_tables(self, rows: Iterable[tuple[str, int, int]]) -> int:
        """Insert ``(name, priority, size_bytes)`` tables not yet known, as PENDING.

        Returns the number of new tables (each gets a ``plan`` audit row).
        """
        now = time.time()
        known = {r[0] for r in self.query("SELECT name FROM tables")}
        new = [(n, p, s) for n, p, s in rows if n not in known]
        with self.transaction() as cur:
            cur.executemany(
                self._q(
                    "INSERT INTO tables (name, state, priority, size_bytes, updated) "
                    "VALUES (?, 'PENDING', ?, ?, ?)"
                ),
                [(n, p, s, now) for n, p, s in new],
            )
            cur.executemany(
                self._q(
                    "INSERT INTO audit (at, table_name, from_state, to_state, why) "
                    "VALUES (?, ?, 'PENDING', 'PENDING', 'added by plan')"
                ),
                [(now, n) for n, _, _ in new],
            )
        return len(new)

    def tables(self) -> dict[str, TableRow]:
        """All tables by name."""
        rows = self.query(
            "SELECT name, state, step, attempt, priority, size_bytes, cluster, app_id, token, "
            "not_before, last_error, updated, started, finished, round, resume_state, "
            "approved_by, details FROM tables"
        )
        out = {}
        for r in rows:
            resume = State(r[15]) if r[15] else None
            details = json.loads(r[17]) if r[17] else {}
            out[r[0]] = TableRow(
                r[0],
                State(r[1]),
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
                r[11],
                r[12],
                r[13],
                r[14],
                resume,
                r[16],
                details,
            )
        return out

    def jobs(self, open_only: bool = False, table: str | None = None) -> list[JobRow]:
        """Job rows (optionally only submitting/submitted/running ones, or one table's)."""
        sql = (
            "SELECT token, table_name, step, kind, attempt, cluster, app_id, status, exit_code, "
            "error, metrics, submitted_at, running_at, finished_at, spark FROM jobs"
        )
        params: tuple[Any, ...] = ()
        if open_only:
            sql += " WHERE status IN ('submitting', 'submitted', 'running')"
        elif table is not None:
            sql += " WHERE table_name = ?"
            params = (table,)
        return [JobRow(*r) for r in self.query(sql + " ORDER BY submitted_at", params)]

    def audit(self, table: str | None = None, limit: int | None = None) -> list[tuple[Any, ...]]:
        """Audit rows ``(id, at, table, from, to, why, cluster, app_id, token)``, oldest first."""
        sql = (
            "SELECT id, at, table_name, from_state, to_state, why, cluster, app_id, token "
            "FROM audit"
        )
        params: tuple[Any, ...] = ()
        if table is not None:
            sql += " WHERE table_name = ?"
            params = (table,)
        sql += " ORDER BY id"
        rows = self.query(sql, params)
        return rows[-limit:] if limit else rows

    # ---- requests (pause/stop/resume/rerun from other processes) ----------------------------
    def add_request(self, action: str, table: str | None) -> None:
        """Queue an operator request for the coordinator."""
        with self.transaction() as cur:
            cur.execute(
                self._q("INSERT INTO requests (at, action, table_name) VALUES (?, ?, ?)"),
                (time.time(), action, table),
            )

    def pending_requests(self) -> list[tuple[int, str, str | None]]:
        """Requests not yet applied, oldest first."""
        rows = self.query("SELECT id, action, table_name FROM requests WHERE done = 0 ORDER BY id")
        return [(int(r[0]), str(r[1]), r[2]) for r in rows]

    # ---- the tick's writes ----------------------------------------------------------------
    def apply(self, batch: Batch) -> None:
        """Write a tick's transitions, audit rows and job changes in one transaction.

        Raises:
            StoreError: a table's stored state was not the expected one (another writer).
        """
        if not batch:
            return
        with self.transaction() as cur:
            if batch.new_jobs:
                cur.executemany(
                    self._q(
                        "INSERT INTO jobs (token, table_name, step, kind, attempt, cluster, "
                        "status, submitted_at) VALUES (?, ?, ?, ?, ?, ?, 'submitting', ?)"
                    ),
                    batch.new_jobs,
                )
            if batch.transitions:
                cur.executemany(
                    self._q(
                        "UPDATE tables SET state = ?, step = ?, attempt = ?, cluster = ?, "
                        "app_id = ?, token = ?, not_before = ?, last_error = ?, updated = ?, "
                        "started = ?, finished = ?, round = ?, resume_state = ?, "
                        "approved_by = ?, details = ? WHERE name = ? AND state = ?"
                    ),
                    batch.transitions,
                )
                if cur.rowcount != len(batch.transitions):
                    raise StoreError(
                        f"state {self.where}: {len(batch.transitions) - cur.rowcount} table(s) "
                        f"were not in the expected state (changed by another writer?)"
                    )
            if batch.audit:
                cur.executemany(
                    self._q(
                        "INSERT INTO audit (at, table_name, from_state, to_state, why, cluster, "
                        "app_id, token) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    batch.audit,
                )
            if batch.job_updates:
                cur.executemany(
                    self._q(
                        "UPDATE jobs SET status = ?, app_id = COALESCE(?, app_id), "
                        "exit_code = COALESCE(?, exit_code), error = COALESCE(?, error), "
                        "metrics = COALESCE(?, metrics), running_at = COALESCE(?, running_at), "
                        "finished_at = COALESCE(?, finished_at), spark = COALESCE(?, spark) "
                        "WHERE token = ?"
                    ),
                    batch.job_updates,
                )
            if batch.done_requests:
                cur.executemany(
                    self._q("UPDATE requests SET done = 1 WHERE id = ?"),
                    [(i,) for i in batch.done_requests],
                )


def job_update(
    token: str,
    status: str,
    *,
    app_id: str | None = None,
    exit_code: int | None = None,
    error: str | None = None,
    metrics: dict[str, Any] | None = None,
    running_at: float | None = None,
    finished_at: float | None = None,
    spark: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    """A row for :attr:`Batch.job_updates`."""
    return (
        status,
        app_id,
        exit_code,
        error[-4000:] if error else None,
        json.dumps(metrics) if metrics else None,
        running_at,
        finished_at,
        json.dumps(spark, default=str) if spark else None,
        token,
    )
