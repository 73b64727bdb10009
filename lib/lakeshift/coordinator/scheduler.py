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
from typing import Any

from lakeshift.coordinator.backends.base import Backend, JobStatus, Submission
from lakeshift.coordinator.fsm import ACTIVE, TERMINAL, WAITING, State, active_state_for
from lakeshift.coordinator.jobs import render_args
from lakeshift.coordinator.plan import Plan, PlanTable, RetryPolicy
from lakeshift.coordinator.store import Batch, StateStore, TableRow, job_update
from lakeshift.errors import ConfigError

log = logging.getLogger(__name__)


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
            if backend is None or row.state not in ACTIVE or row.token != token:
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
            if row.state in ACTIVE and name not in active_tables:
                self._failed(row, None, -1, "job process lost: no open job after restart", now)
        self._flush()
        for name, row in self.rows.items():
            if row.state in WAITING:
                self._enqueue(name, now)

    # ---- queues ----------------------------------------------------------------------------
    def _enqueue(self, name: str, now: float) -> None:
        row = self.rows[name]
        if row.state not in WAITING or self.waiting_deps[name] > 0:
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

    # ---- transitions -----------------------------------------------------------------------
    def _done(self, row: TableRow, why: str, now: float, job: OpenJob | None) -> None:
        self.batch.transition(row, State.DONE, why, now=now, app_id=job.app_id if job else None)
        for dep in self.plan.tables[row.name].dependents:
            self.waiting_deps[dep] -= 1
            if self.waiting_deps[dep] == 0:
                self._enqueue(dep, now)

    def _succeeded(self, row: TableRow, job: OpenJob, now: float) -> None:
        table = self.plan.tables[row.name]
        kind = table.steps[job.step].kind
        nxt = job.step + 1
        if row.state in (State.SUBMITTED, State.RUNNING) or nxt < len(table.steps):
            self.batch.transition(
                row,
                State.COPIED,
                f"{kind} finished",
                now=now,
                app_id=job.app_id,
                step=nxt,
                attempt=0,
            )
        if nxt >= len(table.steps):
            self._done(row, f"{kind} finished; all {len(table.steps)} steps done", now, job)
        else:
            self._enqueue(row.name, now)

    def _failed(
        self, row: TableRow, job: OpenJob | None, code: int | None, error: str, now: float
    ) -> None:
        table = self.plan.tables[row.name]
        step = table.steps[min(row.step, len(table.steps) - 1)]
        retry = table.retry
        transient = classify_failure(code, error, retry, step.exit1_permanent)
        first_line = next((ln for ln in error.splitlines() if ln.strip()), "")[:300]
        app = job.app_id if job else None
        if transient and row.attempt < retry.max_attempts:
            wait = retry.backoff(row.attempt)
            back = State.PENDING if row.step == 0 else State.COPIED
            self.batch.transition(
                row,
                back,
                f"{step.kind} attempt {row.attempt} failed (exit {code}, transient); retry in "
                f"{wait:.0f}s: {first_line}",
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
                f"{step.kind} failed (exit {code}, {reason}): {first_line}",
                now=now,
                app_id=app,
                error=error,
            )

    # ---- requests --------------------------------------------------------------------------
    def _apply_requests(self, now: float) -> None:
        self.paused = self.store.get_meta("paused", "0") == "1"
        for req_id, action, table in self.store.pending_requests():
            names = [table] if table else list(self.rows)
            for name in names:
                row = self.rows.get(name)
                if row is None:
                    continue
                if action == "stop":
                    self._stop(row, now)
                elif action in ("resume", "rerun"):
                    self._restart(row, now, rerun=action == "rerun")
                elif action == "resume-all" and row.state is State.STOPPED:
                    self._restart(row, now, rerun=False)
            self.batch.done_requests.append(req_id)

    def _stop(self, row: TableRow, now: float) -> None:
        if row.state in TERMINAL:
            return
        job = self.jobs.pop(row.token or "", None) if row.state in ACTIVE else None
        if job is not None:
            self.backends[job.cluster].cancel(job.token, job.app_id)
            self.by_cluster[job.cluster].pop(job.token, None)
            self.bytes_on[job.cluster] -= self.plan.tables[row.name].size_bytes
            self.batch.job_updates.append(
                job_update(job.token, "cancelled", error="stopped by operator", finished_at=now)
            )
        self.batch.transition(row, State.STOPPED, "stopped by operator", now=now)

    def _restart(self, row: TableRow, now: float, rerun: bool) -> None:
        if row.state not in TERMINAL or (row.state is State.DONE and not rerun):
            return
        was_done = row.state is State.DONE
        if rerun or row.step == 0:
            self.batch.transition(
                row,
                State.PENDING,
                "re-run requested" if rerun else "resumed",
                now=now,
                step=0,
                attempt=0,
                not_before=0.0,
            )
        else:
            self.batch.transition(row, State.COPIED, "resumed", now=now, attempt=0, not_before=0.0)
        if was_done:
            for dep in self.plan.tables[row.name].dependents:
                self.waiting_deps[dep] += 1
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
                if row.state is State.SUBMITTED:
                    self.batch.transition(
                        row, State.RUNNING, "cluster reports running", now=now, app_id=job.app_id
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
                job_update(job.token, "succeeded", exit_code=0, metrics=st.metrics, finished_at=now)
            )
            self._succeeded(row, job, now)
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
                )
            )
            self._failed(row, job, st.exit_code, error, now)

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
        step = table.steps[job.step]
        backend = self.backends[job.cluster]
        values = {
            **table.values,
            "run_id": self.run_id,
            "token": job.token,
            "attempt": str(job.attempt),
            "result": backend.result_path(job.token),
            "state_dir": str(getattr(getattr(backend, "ctx", None), "state_dir", "")),
        }
        args = render_args(step.args, values, f"table {table.name}")
        return Submission(job.token, table.name, step.kind, job.step, job.attempt, step.file, args)

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
            if row.state not in WAITING or self.waiting_deps[name] > 0 or row.not_before > now:
                continue  # stale entry
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
                table.steps[row.step].kind,
                attempt,
                cluster,
                None,
                "submitting",
                now,
            )
            dst = active_state_for(table.steps[row.step].phase, row.step)
            self.batch.new_jobs.append((token, name, row.step, job.kind, attempt, cluster, now))
            self.batch.transition(
                row,
                dst,
                f"submitting {job.kind} (attempt {attempt}) to {cluster}",
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
        return bool(self.jobs or self.ready or self.delayed or self.paused)

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
            n for n, r in self.rows.items() if r.state in WAITING and self.waiting_deps[n] > 0
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
    }
