"""The scheduler: runs a plan's tables over several clusters, durably.

One loop, one tick at a time:

1. apply operator requests (stop / resume / re-run) and honour ``paused``;
2. poll each backend about its open jobs (one batched call per cluster);
3. move tables on: next step, DONE (which may make dependents ready), retry with backoff
   (transient failure) or FAILED (permanent failure, retries exhausted);
4. cancel jobs stuck in submission or running past their timeout;
5. submit ready tables, highest priority first, then the longest remaining dependency chain,
   then the biggest, each to the cluster with a free slot and the least weighted bytes;
6. write the tick's transitions, audit rows and job rows in one transaction.

Ready tables live in a heap keyed by priority; a table enters it when its last dependency turns
DONE (in-degree counting), so a tick costs O(changes · log n), never a rescan of all tables.

Crash safety: a job row (status ``submitting``, with its token) and the table's transition are
committed *before* the backend launches the job; the application id follows in the next
transaction. A restarted coordinator asks the backend about every open job — by application id,
or by token when the id never got recorded — and only relaunches a submission the backend has
never seen (the spark-submit wrapper's atomic claim makes even that idempotent).
"""

from __future__ import annotations

import heapq
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakeshift.coordinator.backends.base import Backend, JobStatus, Submission
from lakeshift.coordinator.fsm import PHASES, TERMINAL, State
from lakeshift.coordinator.jobs import KIND_TEXT
from lakeshift.coordinator.plan import Plan, PlanTable, RetryPolicy
from lakeshift.coordinator.store import OPEN_JOB, Batch, StateStore, TableRow, job_update
from lakeshift.errors import ConfigError

log = logging.getLogger(__name__)

#: States in which the table has (or waits to submit) a job.
JOB_STATES = frozenset({*PHASES, State.PENDING, State.READY})


def _bytes_moved(metrics: dict[str, Any]) -> int | None:
    """Bytes a load job wrote, from its JSON summary (copy: per table; files: copied_bytes)."""
    if "copied_bytes" in metrics:
        return int(metrics["copied_bytes"])
    tables = metrics.get("tables")
    if isinstance(tables, list):
        total = [t.get("totals", {}).get("bytes_out") for t in tables if isinstance(t, dict)]
        if any(v is not None for v in total):
            return sum(int(v or 0) for v in total)
    return None


def _lag(metrics: dict[str, Any]) -> tuple[float, int]:
    """``(seconds, events)`` left after a catch-up round (sync --json, or files --update)."""
    if "copied" in metrics:  # files --update: what the round found changed
        return 0.0, int(metrics.get("copied", 0)) + int(metrics.get("deleted", 0))
    behind = metrics.get("behind") or {}
    events = int(behind.get("events", 0) or 0) + int(behind.get("files", 0) or 0)
    return float(metrics.get("lag_seconds") or 0.0), events


def _gate_result(metrics: dict[str, Any]) -> str:
    """``pass``, ``fail`` (a difference: repair may help) or ``error`` of a validation job."""
    if metrics.get("kind") == "verify":  # files --verify
        return "fail" if metrics.get("failed", 0) == 0 else "error"
    tables = metrics.get("tables") or []
    verdicts = {t.get("verdict") for t in tables if isinstance(t, dict)}
    if "error" in verdicts or not verdicts:
        return "error"
    return "fail" if "fail" in verdicts else "pass"


def _validation_details(metrics: dict[str, Any], job: OpenJob) -> dict[str, Any]:
    tables = [t for t in metrics.get("tables") or [] if isinstance(t, dict)]
    out: dict[str, Any] = {"validated_by": job.token}
    if tables:
        out["deviation"] = max(float(t.get("deviation") or 0.0) for t in tables)
        out["differing_rows"] = sum(int(t.get("differing_rows") or 0) for t in tables)
    elif metrics.get("kind") == "verify":
        out["differing_files"] = sum(
            int(metrics.get(k, 0)) for k in ("missing", "extra", "differing")
        )
    return out


def _deviation_text(metrics: dict[str, Any]) -> str:
    tables = [t for t in metrics.get("tables") or [] if isinstance(t, dict)]
    if not tables:
        return ""
    dev = max(float(t.get("deviation") or 0.0) for t in tables)
    thr = tables[0].get("threshold")
    return f" (deviation {dev:.6g}" + (f", gate {thr:g})" if thr is not None else ")")


@dataclass
class OpenJob:
    """A job the scheduler is waiting on."""

    token: str
    table: str
    step: int
    kind: str
    attempt: int
    cluster: str
    app_id: str | None
    status: str
    submitted_at: float
    running_at: float | None = None


@dataclass
class RunSummary:
    """How a run ended."""

    states: dict[str, int]
    ticks: int
    submitted: int
    blocked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every table is DONE."""
        return set(self.states) <= {State.DONE.value}

    @property
    def awaiting_approval(self) -> bool:
        """True when nothing failed and the tables not DONE wait for a sign-off (READY)."""
        return State.READY.value in self.states and set(self.states) <= {
            State.DONE.value,
            State.READY.value,
        }


def classify_failure(
    code: int | None, error: str, retry: RetryPolicy, exit1_permanent: bool
) -> bool:
    """Whether a failure is transient (worth a retry).

    Exit code 2 is a configuration/usage error: permanent. Otherwise the error text decides:
    permanent patterns first, then transient ones; without a match, exit code 1 is permanent for
    kinds where 1 means "ran and found a mismatch" (validate) and transient otherwise; signals and
    other codes are transient.

    Example:
        >>> classify_failure(2, "", RetryPolicy(), False)
        False
        >>> classify_failure(1, "ConnectException: Connection refused", RetryPolicy(), True)
        True
    """
    if code == 2:
        return False
    text = error or ""
    if any(re.search(p, text, re.IGNORECASE) for p in retry.permanent_patterns):
        return False
    if any(re.search(p, text, re.IGNORECASE) for p in retry.transient_patterns):
        return True
    return not (code == 1 and exit1_permanent)


class Coordinator:
    """Drives one plan to completion over a set of backends (see the module docstring).

    Args:
        plan: the resolved plan.
        backends: cluster name → backend.
        store: the state store (schema initialised by the coordinator).
        run_id: the run's id (passed to jobs as ``{run_id}``).
        poll_interval: seconds between ticks while jobs run.
        clock: time source (tests).
        sleep: sleep function (tests).
        max_ticks: stop after this many ticks (tests, crash simulation).
    """

    def __init__(
        self,
        plan: Plan,
        backends: dict[str, Backend],
        store: StateStore,
        *,
        run_id: str | None = None,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        max_ticks: int | None = None,
        state_dir: Path | None = None,
        echo: Callable[[tuple[Any, ...]], None] | None = None,
        wait_for_approval: bool = False,
    ) -> None:
        if not backends:
            raise ConfigError("coordinator: no clusters configured")
        for t in plan.tables.values():
            if t.cluster is not None and t.cluster not in backends:
                raise ConfigError(
                    f"table {t.name}: cluster {t.cluster!r} is not a known cluster "
                    f"(known: {', '.join(sorted(backends))})"
                )
        self.plan = plan
        self.backends = backends
        self.store = store
        self.run_id = run_id or plan.name
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self.max_ticks = max_ticks
        self.state_dir = state_dir
        self.echo = echo
        self.wait_for_approval = wait_for_approval
        self.rows: dict[str, TableRow] = {}
        self.jobs: dict[str, OpenJob] = {}
        self.by_cluster: dict[str, dict[str, OpenJob]] = {c: {} for c in backends}
        self.bytes_on: Counter[str] = Counter()
        self.waiting_deps: dict[str, int] = {}
        self.ready: list[tuple[int, int, int, str]] = []
        self.delayed: list[tuple[float, str]] = []
        self.batch = Batch()
        self.paused = False
        self.submitted = 0
        self.ticks = 0

    # ---- set-up ----------------------------------------------------------------------------
    def _load(self) -> None:
        store = self.store
        store.init_schema()
        store.acquire_lock()
        store.set_meta("run_id", self.run_id)
        if self.plan.path is not None:
            store.set_meta("plan", str(self.plan.path))
        if store.get_meta("started") is None:
            store.set_meta("started", str(self.clock()))
        store.ensure_tables(
            (t.name, t.priority, t.size_bytes)
            for t in (self.plan.tables[n] for n in self.plan.order)
        )
        self.rows = {n: r for n, r in store.tables().items() if n in self.plan.tables}
        for j in store.jobs(open_only=True):
            if j.table_name not in self.plan.tables:
                continue
            job = OpenJob(
                j.token,
                j.table_name,
                j.step,
                j.kind,
                j.attempt,
                j.cluster,
                j.app_id,
                j.status,
                j.submitted_at,
                j.running_at,
            )
            self.jobs[j.token] = job
        for t in self.plan.tables.values():
            self.waiting_deps[t.name] = sum(
                1 for d in t.depends_on if self.rows[d].state is not State.DONE
            )

    def _reconcile(self) -> None:
        """Match open jobs against the clusters after a (re)start."""
        now = self.clock()
        active_tables = {j.table for j in self.jobs.values()}
        for token, job in list(self.jobs.items()):
            backend = self.backends.get(job.cluster)
            row = self.rows[job.table]
            if backend is None or row.state not in JOB_STATES or row.token != token:
                self.batch.job_updates.append(
                    job_update(token, "lost", error="not tracked after restart", finished_at=now)
                )
                del self.jobs[token]
                active_tables.discard(job.table)
                continue
            if job.app_id is None:
                app_id = backend.lookup(token)
                if app_id is None:
                    # never launched: launch now with the same token (idempotent)
                    log.info("table %s: relaunching unlaunched submission %s", job.table, token)
                    app_id = backend.submit(self._submission(self.plan.tables[job.table], job))
                job.app_id = app_id
                job.status = "submitted"
                self.batch.job_updates.append(job_update(token, "submitted", app_id=app_id))
            self.by_cluster[job.cluster][token] = job
            self.bytes_on[job.cluster] += self.plan.tables[job.table].size_bytes
        for name, row in self.rows.items():
            if (
                row.token
                and row.state in JOB_STATES
                and name not in active_tables
                and any(
                    j.token == row.token and j.status in OPEN_JOB
                    for j in self.store.jobs(table=name)
                )
            ):
                self._failed(row, None, -1, "job process lost: no open job after restart", now)
        self._flush()
        for name, row in self.rows.items():
            self._advance(row, now)
            if row.state in JOB_STATES:
                self._enqueue(name, now)

    # ---- queues ----------------------------------------------------------------------------
    def _enqueue(self, name: str, now: float) -> None:
        row = self.rows[name]
        if row.state is State.PENDING and self.waiting_deps[name] == 0:
            self._advance(row, now)
        if row.state not in JOB_STATES or self.waiting_deps[name] > 0 or row.token in self.jobs:
            return
        if row.not_before > now:
            heapq.heappush(self.delayed, (row.not_before, name))
            return
        t = self.plan.tables[name]
        heapq.heappush(self.ready, (-t.priority, -t.height, -t.size_bytes, name))

    def _release_delayed(self, now: float) -> None:
        while self.delayed and self.delayed[0][0] <= now:
            _, name = heapq.heappop(self.delayed)
            self._enqueue(name, now)

    def on_cutover(self, table: PlanTable) -> str | None:
        """Rewrite the routing files for every cut-over table (this one included)."""
        from lakeshift.coordinator.routing import write_routing

        state_dir = self.state_dir
        if state_dir is None:
            return None
        routes = [
            t.route
            for n, t in self.plan.tables.items()
            if t.route
            and (n == table.name or self.rows[n].state is State.DONE)
            and not (n == table.name and self.rows[n].details.get("rollback") == "pending")
        ]
        return str(write_routing(state_dir / "routing", routes))

    # ---- the lifecycle ---------------------------------------------------------------------
    #: the jobs of a cut-over, in order (a table runs the ones its plan entry has)
    CUTOVER_JOBS = ("final_sync", "final_validate", "finalize", "switch")

    def _after(self, table: PlanTable, state: State) -> State:
        """The next lifecycle state after ``state`` that ``table`` needs."""
        order = [
            (State.START_POINT, "start_point"),
            (State.LOADING, "load"),
            (State.CATCHING_UP, "catch_up"),
            (State.VALIDATING, "validate"),
        ]
        states = [st for st, _ in order]
        start = states.index(state) + 1 if state in states else 0
        for st, kind in order[start:]:
            if kind in table.jobs:
                return st
        return State.READY

    def job_for(self, row: TableRow, now: float) -> str | None:
        """The job kind ``row``'s state needs next, or ``None`` (nothing to submit now)."""
        table = self.plan.tables[row.name]
        st = row.state
        if st is State.START_POINT:
            return "start_point"
        if st is State.LOADING:
            return "load"
        if st is State.CATCHING_UP:
            return "catch_up"
        if st is State.VALIDATING:
            return "validate"
        if st is State.REPAIRING:
            return "repair"
        if st is State.CUT_OVER:
            steps = [k for k in self.CUTOVER_JOBS if k in table.jobs]
            return steps[row.step] if row.step < len(steps) else None
        if st is State.READY:
            if row.details.get("rollback") == "pending":
                return "rollback" if "rollback" in table.jobs else None
            if table.catch_up.dual_run and "dual_run" in table.jobs and not row.approved_by:
                return "dual_run"
        return None

    def _advance(self, row: TableRow, now: float) -> None:
        """Moves that need no job, as long as there are any (PENDING on, approval, the end)."""
        before = None
        while before != (row.state, row.step):
            before = (row.state, row.step)
            self._advance_once(row, now)

    def _advance_once(self, row: TableRow, now: float) -> None:
        table = self.plan.tables[row.name]
        if row.state is State.PENDING:
            if self.waiting_deps.get(row.name, 0) > 0:
                return
            self.batch.transition(
                row,
                self._after(table, State.PENDING),
                "dependencies done; starting",
                now=now,
                step=0,
                attempt=0,
                round=0,
                not_before=0.0,
            )
        elif row.state is State.READY and row.details.get("rollback") == "pending":
            if "rollback" not in table.jobs:
                self._rolled_back(row, now)
        elif row.state is State.READY and (row.approved_by or table.auto_approve):
            by = row.approved_by or "auto_approve"
            self.batch.transition(
                row,
                State.CUT_OVER,
                f"cut-over approved by {by}",
                now=now,
                step=0,
                attempt=0,
                approved_by=by,
            )
        elif row.state is State.CUT_OVER and self.job_for(row, now) is None:
            route = table.route
            routed = self.on_cutover(table) if route else None
            why = "cut over" + (f"; readers of {route[0]} routed by {routed}" if route else "")
            self.batch.transition(row, State.DONE, why, now=now, details={"cut_over_at": now})
            for dep in table.dependents:
                self.waiting_deps[dep] -= 1
                if self.waiting_deps[dep] == 0:
                    self._enqueue(dep, now)

    def _rolled_back(self, row: TableRow, now: float) -> None:
        table = self.plan.tables[row.name]
        routed = self.on_cutover(table) if table.route else None
        why = "rolled back" + (f"; routing rewritten in {routed}" if routed else "")
        self.batch.transition(
            row, State.READY, why, now=now, approved_by="", details={"rollback": "done"}
        )

    def _succeeded(self, row: TableRow, job: OpenJob, now: float, metrics: dict[str, Any]) -> None:
        table = self.plan.tables[row.name]
        kind = job.kind
        text = KIND_TEXT.get(kind, kind)
        if kind == "start_point":
            self.batch.transition(
                row,
                self._after(table, State.START_POINT),
                f"{text}: done",
                now=now,
                attempt=0,
                details={"start_point": metrics.get("start_point")},
            )
        elif kind == "load":
            moved = _bytes_moved(metrics)
            self.batch.transition(
                row,
                self._after(table, State.LOADING),
                f"{text} finished",
                now=now,
                attempt=0,
                round=0,
                details={"bytes_moved": moved} if moved is not None else None,
            )
        elif kind in ("catch_up", "dual_run"):
            lag_s, events = _lag(metrics)
            cu = table.catch_up
            under = lag_s <= cu.max_lag_seconds and events <= cu.max_lag_events
            lag = {"lag_seconds": lag_s, "lag_events": events, "lag_at": now}
            rnd = row.round + 1
            if kind == "dual_run":
                self.batch.transition(
                    row,
                    State.READY,
                    f"dual run: round {rnd}, lag {lag_s:.0f}s / {events} events",
                    now=now,
                    attempt=0,
                    round=rnd,
                    details=lag,
                    not_before=now + cu.dual_run_interval_s,
                )
            elif under:
                nxt = State.VALIDATING if "validate" in table.jobs else State.READY
                self.batch.transition(
                    row,
                    nxt,
                    f"caught up after {rnd} round(s): lag {lag_s:.0f}s, {events} events",
                    now=now,
                    attempt=0,
                    round=0,
                    details=lag,
                )
            elif rnd >= cu.max_rounds:
                self.batch.transition(
                    row,
                    State.FAILED,
                    f"catch-up not converging: lag {lag_s:.0f}s / {events} "
                    f"events after {rnd} rounds (max_rounds {cu.max_rounds})",
                    now=now,
                    resume_state=State.CATCHING_UP,
                    round=0,
                    details=lag,
                )
            else:
                self.batch.transition(
                    row,
                    State.CATCHING_UP,
                    f"round {rnd}: lag {lag_s:.0f}s, {events} events",
                    now=now,
                    attempt=0,
                    round=rnd,
                    details=lag,
                    not_before=now + cu.interval_s,
                )
        elif kind == "validate":
            self.batch.transition(
                row,
                State.READY,
                f"{text} passed{_deviation_text(metrics)}",
                now=now,
                attempt=0,
                round=0,
                details=_validation_details(metrics, job),
            )
        elif kind == "repair":
            self.batch.transition(
                row,
                State.VALIDATING,
                f"repair round {row.round + 1} done; validating again",
                now=now,
                attempt=0,
                round=row.round + 1,
            )
        elif kind == "rollback":
            self._rolled_back(row, now)
        else:  # a cut-over job
            self.batch.transition(
                row,
                State.CUT_OVER,
                f"{text}: done",
                now=now,
                attempt=0,
                step=row.step + 1,
                details=_validation_details(metrics, job) if kind == "final_validate" else None,
            )
        self._advance(row, now)
        self._enqueue(row.name, now)

    def _gate_failed(
        self, row: TableRow, job: OpenJob, now: float, metrics: dict[str, Any]
    ) -> None:
        table = self.plan.tables[row.name]
        details = _validation_details(metrics, job)
        text = f"validation gate failed{_deviation_text(metrics)}"
        if job.kind == "validate" and row.round < table.repair_rounds and "repair" in table.jobs:
            self.batch.transition(
                row,
                State.REPAIRING,
                f"{text}; repair round {row.round + 1} of {table.repair_rounds}",
                now=now,
                attempt=0,
                details=details,
            )
            self._enqueue(row.name, now)
            return
        report = details.get("report") or "the job's JSON"
        self.batch.transition(
            row,
            State.FAILED,
            f"{text} after {row.round} repair round(s); report: {report}",
            now=now,
            resume_state=row.state,
            details=details,
        )

    def _failed(
        self,
        row: TableRow,
        job: OpenJob | None,
        code: int | None,
        error: str,
        now: float,
        *,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        table = self.plan.tables[row.name]
        kind = job.kind if job else (self.job_for(row, now) or "job")
        spec = table.jobs.get(kind)
        gate = job is not None and spec is not None and spec.exit1_permanent and code == 1
        if gate and job is not None and metrics is not None and _gate_result(metrics) == "fail":
            self._gate_failed(row, job, now, metrics)
            return
        retry = table.retry
        transient = classify_failure(code, error, retry, bool(spec and spec.exit1_permanent))
        first_line = next((ln for ln in error.splitlines() if ln.strip()), "")[:300]
        app = job.app_id if job else None
        if transient and row.attempt < retry.max_attempts:
            wait = retry.backoff(row.attempt)
            self.batch.transition(
                row,
                row.state,
                f"{kind} attempt {row.attempt} failed (exit {code}, transient); "
                f"retry in {wait:.0f}s: {first_line}",
                now=now,
                app_id=app,
                not_before=now + wait,
                error=error,
            )
            self._enqueue(row.name, now)
        else:
            reason = "permanent" if not transient else f"gave up after {row.attempt} attempts"
            self.batch.transition(
                row,
                State.FAILED,
                f"{kind} failed (exit {code}, {reason}): {first_line}",
                now=now,
                app_id=app,
                error=error,
                resume_state=row.state if row.state is not State.PENDING else None,
            )

    # ---- requests --------------------------------------------------------------------------
    def _apply_requests(self, now: float) -> None:
        self.paused = self.store.get_meta("paused", "0") == "1"
        for req_id, action, table in self.store.pending_requests():
            name, _, arg = (table or "").partition("\t")
            names = [name] if name else list(self.rows)
            for n in names:
                row = self.rows.get(n)
                if row is None:
                    continue
                if action == "stop":
                    self._interrupt(row, now, State.STOPPED)
                elif action == "pause" and name:
                    self._interrupt(row, now, State.PAUSED)
                elif action in ("resume", "rerun"):
                    self._restart(row, now, rerun=action == "rerun")
                elif action == "resume-all" and row.state in (State.STOPPED, State.PAUSED):
                    self._restart(row, now, rerun=False)
                elif action == "approve" and row.state is State.READY:
                    by, _, note = arg.partition("\t")
                    self.batch.transition(
                        row,
                        State.READY,
                        f"approved by {by}" + (f": {note}" if note else ""),
                        now=now,
                        approved_by=by,
                    )
                    self._advance(row, now)
                    self._enqueue(row.name, now)
                elif action == "rollback" and row.state in (State.DONE, State.CUT_OVER):
                    self._interrupt(row, now, None)
                    self.batch.transition(
                        row,
                        State.READY,
                        "rollback requested",
                        now=now,
                        approved_by="",
                        step=0,
                        attempt=0,
                        details={"rollback": "pending"},
                    )
                    if row.state is State.READY and self.rows[n].finished:
                        for dep in self.plan.tables[n].dependents:
                            self.waiting_deps[dep] += 1
                    self._advance(row, now)
                    self._enqueue(row.name, now)
            self.batch.done_requests.append(req_id)

    def _interrupt(self, row: TableRow, now: float, dst: State | None) -> None:
        """Cancel the table's running job; move it to ``dst`` (STOPPED/PAUSED) if given.

        A pause lets the running job finish its phase (it is not cancelled).
        """
        if row.state in TERMINAL and dst is not None:
            return
        job = self.jobs.get(row.token or "")
        if job is not None and dst is not State.PAUSED:
            self.backends[job.cluster].cancel(job.token, job.app_id)
            self._close_job(job)
            self.batch.job_updates.append(
                job_update(job.token, "cancelled", error="stopped by operator", finished_at=now)
            )
        if dst is not None and row.state is not dst:
            resume = row.state if row.state not in (State.PAUSED,) else row.resume_state
            self.batch.transition(
                row, dst, f"{dst.value.lower()} by operator", now=now, resume_state=resume
            )

    def _restart(self, row: TableRow, now: float, rerun: bool) -> None:
        if rerun:
            if row.state is not State.DONE and row.state not in (State.FAILED, State.STOPPED):
                return
            was_done = row.state is State.DONE
            self.batch.transition(
                row,
                State.PENDING,
                "re-run requested",
                now=now,
                step=0,
                attempt=0,
                round=0,
                not_before=0.0,
                resume_state=None,
                approved_by="",
            )
            if was_done:
                for dep in self.plan.tables[row.name].dependents:
                    self.waiting_deps[dep] += 1
        elif row.state in (State.FAILED, State.STOPPED, State.PAUSED):
            back = row.resume_state or State.PENDING
            self.batch.transition(
                row, back, "resumed", now=now, attempt=0, not_before=0.0, resume_state=None
            )
        else:
            return
        self._advance(row, now)
        self._enqueue(row.name, now)

    # ---- polling ---------------------------------------------------------------------------
    def _poll(self, now: float) -> None:
        for cluster, open_jobs in self.by_cluster.items():
            if not open_jobs:
                continue
            statuses = self.backends[cluster].poll(
                [(j.token, j.app_id) for j in open_jobs.values()]
            )
            for token, st in statuses.items():
                job = open_jobs.get(token)
                if job is not None:
                    self._on_status(job, st, now)

    def _close_job(self, job: OpenJob) -> None:
        self.jobs.pop(job.token, None)
        self.by_cluster[job.cluster].pop(job.token, None)
        self.bytes_on[job.cluster] -= self.plan.tables[job.table].size_bytes

    def _on_status(self, job: OpenJob, st: JobStatus, now: float) -> None:
        row = self.rows[job.table]
        retry = self.plan.tables[job.table].retry
        if st.state == "running":
            if job.status != "running":
                job.status = "running"
                job.running_at = now
                self.batch.job_updates.append(
                    job_update(job.token, "running", app_id=st.app_id, running_at=now)
                )
            elif now - (job.running_at or now) > retry.job_timeout_s:
                self._timeout(job, row, now, f"running longer than {retry.job_timeout_s:.0f}s")
        elif st.state in ("submitted", "unknown"):
            if now - job.submitted_at > retry.submit_timeout_s:
                self._timeout(
                    job, row, now, f"not running {retry.submit_timeout_s:.0f}s after submission"
                )
        elif st.state == "succeeded":
            self._close_job(job)
            self.batch.job_updates.append(
                job_update(
                    job.token,
                    "succeeded",
                    exit_code=0,
                    metrics=st.metrics,
                    finished_at=now,
                    spark=st.spark,
                )
            )
            self._succeeded(row, job, now, st.metrics or {})
        else:
            self._close_job(job)
            error = st.error or f"exit code {st.exit_code}"
            self.batch.job_updates.append(
                job_update(
                    job.token,
                    "failed",
                    exit_code=st.exit_code,
                    error=error,
                    metrics=st.metrics,
                    finished_at=now,
                    spark=st.spark,
                )
            )
            self._failed(row, job, st.exit_code, error, now, metrics=st.metrics)

    def _timeout(self, job: OpenJob, row: TableRow, now: float, why: str) -> None:
        self.backends[job.cluster].cancel(job.token, job.app_id)
        self._close_job(job)
        error = f"timed out: {why}"
        self.batch.job_updates.append(
            job_update(job.token, "failed", exit_code=-1, error=error, finished_at=now)
        )
        self._failed(row, job, -1, error, now)

    # ---- submitting ------------------------------------------------------------------------
    def _submission(self, table: PlanTable, job: OpenJob) -> Submission:
        spec = table.jobs[job.kind]
        backend = self.backends[job.cluster]
        values = {
            **table.values,
            "run_id": self.run_id,
            "token": job.token,
            "attempt": str(job.attempt),
            "result": backend.result_path(job.token),
            "state_dir": str(getattr(getattr(backend, "ctx", None), "state_dir", "")),
        }
        args = spec.render(values, f"table {table.name}")
        return Submission(job.token, table.name, job.kind, job.step, job.attempt, spec.file, args)

    def _pick_cluster(self, table: PlanTable) -> str | None:
        best: tuple[float, str] | None = None
        names = [table.cluster] if table.cluster else self.backends
        for name in names:
            b = self.backends[name]
            if len(self.by_cluster[name]) >= b.capacity:
                continue
            score = (self.bytes_on[name] + table.size_bytes + 1) / b.weight
            score += len(self.by_cluster[name]) / (b.capacity * 1e6)  # tie-break by load
            if best is None or score < best[0]:
                best = (score, name)
        return best[1] if best else None

    def _free_slots(self) -> bool:
        return any(len(self.by_cluster[n]) < b.capacity for n, b in self.backends.items())

    def _schedule(self, now: float) -> None:
        if self.paused:
            return
        launches: list[OpenJob] = []
        skipped: list[tuple[int, int, int, str]] = []
        while self.ready and self._free_slots():
            entry = heapq.heappop(self.ready)
            name = entry[3]
            row = self.rows[name]
            if row.state not in JOB_STATES or self.waiting_deps[name] > 0 or row.not_before > now:
                continue  # stale entry
            kind = self.job_for(row, now)
            if kind is None or row.token in self.jobs:
                continue
            table = self.plan.tables[name]
            cluster = self._pick_cluster(table)
            if cluster is None:  # pinned to a full cluster
                skipped.append(entry)
                continue
            token = uuid.uuid4().hex[:16]
            attempt = row.attempt + 1
            job = OpenJob(
                token,
                name,
                row.step,
                kind,
                attempt,
                cluster,
                None,
                "submitting",
                now,
            )
            self.batch.new_jobs.append((token, name, row.step, job.kind, attempt, cluster, now))
            self.batch.transition(
                row,
                row.state,
                f"submitting {KIND_TEXT.get(kind, kind)} (attempt {attempt}) to {cluster}",
                now=now,
                cluster=cluster,
                token=token,
                attempt=attempt,
                app_id="",
            )
            self.jobs[token] = job
            self.by_cluster[cluster][token] = job
            self.bytes_on[cluster] += table.size_bytes
            launches.append(job)
        for entry in skipped:
            heapq.heappush(self.ready, entry)
        if not launches:
            return
        self._flush()  # the submission is durable before anything is launched
        for job in launches:
            row = self.rows[job.table]
            try:
                app_id = self.backends[job.cluster].submit(
                    self._submission(self.plan.tables[job.table], job)
                )
            except Exception as exc:  # a backend error is a failed attempt, not a crash
                log.warning("table %s: submission to %s failed: %s", job.table, job.cluster, exc)
                self._close_job(job)
                self.batch.job_updates.append(
                    job_update(job.token, "failed", exit_code=-1, error=str(exc), finished_at=now)
                )
                self._failed(row, job, -1, f"submission failed: {exc}", now)
                continue
            job.app_id = app_id
            job.status = "submitted"
            row.app_id = app_id
            self.submitted += 1
            self.batch.job_updates.append(job_update(job.token, "submitted", app_id=app_id))

    def _flush(self) -> None:
        if self.batch:
            self.store.apply(self.batch)
            if self.echo is not None:
                for row in self.batch.audit:
                    self.echo(row)
            self.batch = Batch()

    # ---- the loop --------------------------------------------------------------------------
    def tick(self) -> bool:
        """One scheduling round; returns False when nothing is left to do."""
        now = self.clock()
        self._apply_requests(now)
        self._poll(now)
        self._release_delayed(now)
        self._schedule(now)
        self._flush()
        self.ticks += 1
        waiting = self.wait_for_approval and any(r.state is State.READY for r in self.rows.values())
        return bool(self.jobs or self.ready or self.delayed or self.paused or waiting)

    def run(self) -> RunSummary:
        """Run until every table is DONE, FAILED, STOPPED or blocked by a failed dependency."""
        self._load()
        self._reconcile()
        try:
            while self.tick():
                if self.max_ticks is not None and self.ticks >= self.max_ticks:
                    break
                if self.jobs or self.paused or not self.ready:
                    wait = self.poll_interval
                    if not self.jobs and self.delayed and not self.paused:
                        wait = max(0.0, min(wait, self.delayed[0][0] - self.clock()))
                    if wait > 0:
                        self.sleep(wait)
        finally:
            self._flush()
            for b in self.backends.values():
                b.close()
            self.store.release_lock()
        return self.summary()

    def summary(self) -> RunSummary:
        """Counts per state and the tables blocked by failed/stopped dependencies."""
        states = Counter(r.state.value for r in self.rows.values())
        blocked = sorted(
            n for n, r in self.rows.items() if r.state is State.PENDING and self.waiting_deps[n] > 0
        )
        return RunSummary(dict(states), self.ticks, self.submitted, blocked)


def describe(summary: RunSummary) -> dict[str, Any]:
    """A JSON-able view of a summary."""
    return {
        "states": summary.states,
        "ticks": summary.ticks,
        "submitted": summary.submitted,
        "blocked": summary.blocked,
        "ok": summary.ok,
        "awaiting_approval": summary.awaiting_approval,
    }
