"""Seeing a run: the ``status`` terminal view and the static HTML ``report``.

Both read only the state store: tables per operator bucket and per state, per-table progress
with the table's latest lag or deviation, throughput (bytes the bulk loads *reported moving*,
per second since the run started), ETA (declared bytes of the tables not loaded yet at that rate;
by table count when nothing reported bytes), the validation deviations, failures with their last
error, and the audit log. Where a finished load reported no byte count, its declared ``size:``
is counted instead and the views say "estimated".

The HTML report's charts (:mod:`lakeshift.coordinator.charts`, matplotlib PNGs inlined as
``data:`` URIs) are fed plain data prepared here: tables per bucket and state, DONE tables over
time from the audit log, latency per job per cluster, and executors asked vs used per job.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lakeshift.config import human_bytes
from lakeshift.coordinator.estimate import format_duration
from lakeshift.coordinator.fsm import State
from lakeshift.coordinator.store import StateStore, TableRow

#: Rough share of a table's work done when it is in each state (for the progress column).
PROGRESS = {
    State.PENDING: 0.0,
    State.START_POINT: 0.02,
    State.LOADING: 0.3,
    State.CATCHING_UP: 0.6,
    State.VALIDATING: 0.75,
    State.REPAIRING: 0.7,
    State.READY: 0.85,
    State.CUT_OVER: 0.95,
    State.DONE: 1.0,
    State.FAILED: 0.0,
    State.STOPPED: 0.0,
    State.PAUSED: 0.0,
}
#: The buckets operators of such migrations report, and the states in each.
BUCKETS: dict[str, tuple[State, ...]] = {
    "not started": (State.PENDING,),
    "loading": (State.START_POINT, State.LOADING),
    "dual-run/syncing": (State.CATCHING_UP,),
    "validating": (State.VALIDATING, State.REPAIRING),
    "ready": (State.READY,),
    "cut over": (State.CUT_OVER, State.DONE),
    "stopped": (State.STOPPED, State.PAUSED),
    "failed": (State.FAILED,),
}
STATE_COLOURS = {
    "PENDING": "#9e9e9e",
    "START_POINT": "#b3e5fc",
    "LOADING": "#42a5f5",
    "CATCHING_UP": "#7e57c2",
    "VALIDATING": "#ffa726",
    "REPAIRING": "#ff7043",
    "READY": "#26a69a",
    "CUT_OVER": "#9ccc65",
    "DONE": "#66bb6a",
    "FAILED": "#ef5350",
    "STOPPED": "#795548",
    "PAUSED": "#bcaaa4",
}


@dataclass
class Snapshot:
    """Everything the views show, read in one go."""

    run_id: str
    now: float
    started: float | None
    paused: bool
    tables: list[TableRow]
    counts: dict[str, int]
    done_bytes: int  # bytes loaded: reported by the load jobs, else the declared size
    total_bytes: int
    throughput: float  # reported bytes moved per second (0 when unknown)
    tables_per_hour: float
    eta_seconds: float | None
    failures: list[TableRow]
    audit: list[tuple[Any, ...]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    buckets: dict[str, int] = field(default_factory=dict)
    spark_jobs: list[dict[str, Any]] = field(default_factory=list)  # slowest first
    # every finished job's latency: table, kind, cluster, seconds, measured ("event log" when
    # its Spark event log gave the wall time, else "submitted to finished")
    job_times: list[dict[str, Any]] = field(default_factory=list)
    moved_bytes: int = 0  # bytes the load jobs reported moving
    estimated_tables: int = 0  # loaded tables counted by their declared size

    @property
    def estimated(self) -> bool:
        """Whether some loaded bytes are declared sizes rather than reported ones."""
        return self.estimated_tables > 0


#: States after the bulk load (its bytes count as moved).
LOADED = frozenset(
    {
        State.CATCHING_UP,
        State.VALIDATING,
        State.REPAIRING,
        State.READY,
        State.CUT_OVER,
        State.DONE,
    }
)


def buckets(counts: dict[str, int]) -> dict[str, int]:
    """Tables per operator bucket (:data:`BUCKETS`) from tables per state."""
    return {b: sum(counts.get(s.value, 0) for s in states) for b, states in BUCKETS.items()}


def spark_job(job: Any, data: dict[str, Any]) -> dict[str, Any]:
    """One job's line of the "requested vs used" view, from its event-log metrics."""
    from lakeshift.ops.eventlog import JobMetrics, advice

    m = JobMetrics.from_dict(data)
    slow = m.slowest_stage
    return {
        "table": job.table_name,
        "kind": job.kind,
        "cluster": job.cluster,
        "token": job.token,
        "status": job.status,
        "wall_seconds": m.wall_seconds,
        "task_seconds": m.task_seconds,
        "slowest_stage": f"{slow.name} ({slow.seconds:.1f} s)" if slow else "",
        "stages": [
            {"stage_id": st.stage_id, "name": st.name, "seconds": st.seconds} for st in m.stages
        ],
        "requested_executors": m.requested_executors or m.dynamic_max,
        "requested_cores": m.requested_cores,
        "requested_memory": m.requested_memory,
        "peak_executors": m.peak_executors,
        "utilisation": m.utilisation,
        "peak_jvm_heap_bytes": m.peak_jvm_heap_bytes,
        "spill_bytes": m.memory_spill_bytes + m.disk_spill_bytes,
        "failed_tasks": m.failed_tasks,
        "advice": advice(m),
    }


def job_time(job: Any, spark: dict[str, Any] | None) -> dict[str, Any] | None:
    """One finished job's latency: the event log's wall time, else submitted to finished.

    ``None`` for a job that has not finished (or has neither figure).
    """
    base = {"table": job.table_name, "kind": job.kind, "cluster": job.cluster}
    wall = float((spark or {}).get("wall_seconds") or 0.0)
    if wall > 0:
        return {**base, "seconds": wall, "measured": "event log"}
    if job.finished_at and job.submitted_at:
        seconds = max(0.0, float(job.finished_at) - float(job.submitted_at))
        return {**base, "seconds": seconds, "measured": "submitted to finished"}
    return None


def bucket_states(counts: dict[str, int]) -> dict[str, dict[str, int]]:
    """Tables per operator bucket, split by state: ``{bucket: {state: tables}}``.

    Example:
        >>> bucket_states({"LOADING": 2, "DONE": 1})["loading"]
        {'START_POINT': 0, 'LOADING': 2}
    """
    return {b: {s.value: counts.get(s.value, 0) for s in states} for b, states in BUCKETS.items()}


def done_steps(audit: list[tuple[Any, ...]]) -> list[tuple[float, int]]:
    """Tables DONE after each change, from audit rows ``(id, at, table, from, to, …)``.

    Starts at the first audit row with 0; a transition into DONE adds one, one out of DONE (a
    rollback) takes one away; ends at the last audit row. Empty without audit rows.

    Example:
        >>> done_steps([(1, 10.0, "a", "PENDING", "LOADING"), (2, 40.0, "a", "CUT_OVER", "DONE")])
        [(10.0, 0), (40.0, 1)]
    """
    if not audit:
        return []
    points = [(float(audit[0][1]), 0)]
    done = 0
    for row in audit:
        to, frm = row[4], row[3]
        if (to == "DONE") == (frm == "DONE"):
            continue
        done += 1 if to == "DONE" else -1
        points.append((float(row[1]), done))
    if float(audit[-1][1]) > points[-1][0]:
        points.append((float(audit[-1][1]), done))
    return points


def detail_text(row: TableRow) -> str:
    """The table's latest figure in words: lag, deviation or bytes moved."""
    d = row.details
    if row.state in (State.CATCHING_UP, State.READY) and "lag_seconds" in d:
        return f"lag {float(d['lag_seconds']):.0f} s, {int(d.get('lag_events', 0))} events"
    if "deviation" in d:
        return f"deviation {float(d['deviation']):.4%} ({int(d.get('differing_rows', 0))} rows)"
    if "differing_files" in d:
        return f"{int(d['differing_files'])} files differ"
    if "bytes_moved" in d:
        return f"moved {human_bytes(int(d['bytes_moved']))}"
    return ""


def snapshot(store: StateStore, audit_limit: int | None = 50, now: float | None = None) -> Snapshot:
    """Read a :class:`Snapshot` from the store."""
    now = time.time() if now is None else now
    rows = sorted(store.tables().values(), key=lambda r: r.name)
    counts = Counter(r.state.value for r in rows)
    started_text = store.get_meta("started")
    started = float(started_text) if started_text else None
    done = [r for r in rows if r.state is State.DONE]
    loaded = [r for r in rows if r.state in LOADED]
    moved = [r for r in loaded if r.details.get("bytes_moved") is not None]
    moved_bytes = sum(int(r.details["bytes_moved"]) for r in moved)
    done_bytes = moved_bytes + sum(r.size_bytes for r in loaded if r not in moved)
    total_bytes = sum(r.size_bytes for r in rows)
    elapsed = (now - started) if started else 0.0
    throughput = moved_bytes / elapsed if elapsed > 0 else 0.0
    per_hour = len(done) / elapsed * 3600 if elapsed > 0 else 0.0
    open_rows = [r for r in rows if r.state not in (State.DONE, State.FAILED, State.STOPPED)]
    to_load = [r for r in open_rows if r.state not in LOADED]
    eta: float | None = None
    if not open_rows:
        eta = 0.0
    elif throughput > 0 and sum(r.size_bytes for r in to_load) > 0:
        eta = sum(r.size_bytes for r in to_load) / throughput
    elif per_hour > 0:
        eta = len(open_rows) / per_hour * 3600
    metrics: dict[str, dict[str, Any]] = {}
    spark_jobs: list[dict[str, Any]] = []
    job_times: list[dict[str, Any]] = []
    for job in store.jobs():
        m = metrics.setdefault(job.table_name, {"jobs": 0, "seconds": 0.0})
        m["jobs"] += 1
        if job.finished_at and job.submitted_at:
            m["seconds"] += job.finished_at - job.submitted_at
        if job.metrics:
            with contextlib.suppress(ValueError):
                m[job.kind] = json.loads(job.metrics)
        spark: dict[str, Any] | None = None
        if job.spark:
            with contextlib.suppress(ValueError, TypeError):
                spark = json.loads(job.spark)
                spark_jobs.append(spark_job(job, spark))
        timed = job_time(job, spark if isinstance(spark, dict) else None)
        if timed is not None:
            job_times.append(timed)
    return Snapshot(
        run_id=store.get_meta("run_id") or "?",
        now=now,
        started=started,
        paused=store.get_meta("paused", "0") == "1",
        tables=rows,
        counts=dict(counts),
        done_bytes=done_bytes,
        total_bytes=total_bytes,
        throughput=throughput,
        tables_per_hour=per_hour,
        eta_seconds=eta,
        failures=[
            r
            for r in rows
            if r.state is State.FAILED
            or (r.last_error and r.attempt > 0 and r.state is not State.DONE)
        ],
        audit=store.audit(limit=audit_limit),
        metrics=metrics,
        buckets=buckets(dict(counts)),
        spark_jobs=sorted(spark_jobs, key=lambda j: -float(j["wall_seconds"])),
        job_times=job_times,
        moved_bytes=moved_bytes,
        estimated_tables=len(loaded) - len(moved),
    )


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _first_line(text: str | None, width: int = 120) -> str:
    line = next((ln for ln in (text or "").splitlines() if ln.strip()), "")
    return line[:width]


# ---- terminal ------------------------------------------------------------------------------
def render(snap: Snapshot, max_rows: int = 40) -> Any:
    """A rich renderable of the snapshot."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    total = len(snap.tables)
    done = snap.counts.get("DONE", 0)
    eta = format_duration(snap.eta_seconds) if snap.eta_seconds is not None else "unknown"
    est = " (estimated: declared sizes)" if snap.estimated else ""
    head = Text(
        f"run {snap.run_id}{' (PAUSED)' if snap.paused else ''}: {done}/{total} tables DONE"
        f" | {human_bytes(snap.done_bytes)} of {human_bytes(snap.total_bytes)} loaded{est}"
        f" | {human_bytes(snap.throughput)}/s, {snap.tables_per_hour:.1f} tables/h"
        f" | ETA {eta}",
        style="bold",
    )
    counts = Table(title="tables", show_edge=False)
    for b in BUCKETS:
        counts.add_column(b, justify="right")
    counts.add_row(*(str(snap.buckets.get(b, 0)) for b in BUCKETS))
    per_table = Table(show_edge=False)
    for col in ("table", "state", "progress", "round", "attempt", "cluster", "size", "latest"):
        per_table.add_column(col)
    order = {s: 0 for s in State} | {
        State.FAILED: 1,
        State.READY: 2,
        State.PENDING: 3,
        State.STOPPED: 4,
        State.PAUSED: 4,
        State.DONE: 5,
    }
    shown = sorted(snap.tables, key=lambda r: (order[r.state], r.name))[:max_rows]
    for r in shown:
        frac = PROGRESS[r.state]
        bar = "#" * int(frac * 10) + "." * (10 - int(frac * 10))
        per_table.add_row(
            r.name,
            r.state.value,
            f"{bar} {frac:4.0%}",
            str(r.round),
            str(r.attempt),
            r.cluster or "",
            human_bytes(r.size_bytes),
            detail_text(r),
        )
    parts: list[Any] = [head, counts, per_table]
    if len(snap.tables) > max_rows:
        parts.append(Text(f"… {len(snap.tables) - max_rows} more tables"))
    if snap.failures:
        fails = Table(title="failures", show_edge=False)
        fails.add_column("table")
        fails.add_column("state")
        fails.add_column("attempt")
        fails.add_column("last error")
        for r in snap.failures[:20]:
            fails.add_row(r.name, r.state.value, str(r.attempt), _first_line(r.last_error))
        parts.append(fails)
    return Group(*parts)


# ---- HTML ----------------------------------------------------------------------------------
def _img(png: bytes, alt: str) -> str:
    from lakeshift.coordinator.charts import data_uri

    return f'<p><img src="{data_uri(png)}" alt="{html.escape(alt)}"></p>'


def chart_sections(snap: Snapshot) -> dict[str, str]:
    """The report's charts as ``<img>`` fragments (a line of text where there is no data)."""
    from lakeshift.coordinator import charts

    per_bucket = bucket_states(snap.counts)
    out = {
        "states": _img(
            charts.state_chart(per_bucket, STATE_COLOURS),
            "tables per bucket: "
            + ", ".join(f"{b} {sum(states.values())}" for b, states in per_bucket.items()),
        )
    }
    steps = done_steps(snap.audit)
    out["progress"] = (
        _img(
            charts.done_chart(steps, len(snap.tables)),
            f"DONE tables over time: {steps[-1][1]} of {len(snap.tables)}",
        )
        if steps and snap.tables
        else "<p>no progress yet</p>"
    )
    times = [
        charts.JobTime(f"{j['table']}/{j['kind']}", j["cluster"], j["seconds"], j["measured"])
        for j in snap.job_times
    ]
    clusters = sorted({t.cluster for t in times})
    out["latency"] = (
        _img(
            charts.latency_chart(times),
            f"latency of {len(times)} jobs on {len(clusters)} clusters ({', '.join(clusters)})",
        )
        if times
        else "<p>no finished jobs yet</p>"
    )
    uses = [
        charts.JobUse(
            f"{j['table']}/{j['kind']}",
            j["cluster"],
            j["requested_executors"],
            int(j["peak_executors"]),
            float(j["utilisation"]),
        )
        for j in snap.spark_jobs
    ]
    out["usage"] = (
        _img(charts.usage_chart(uses), f"executors asked vs peak alive of {len(uses)} jobs")
        if uses
        else "<p>no Spark event logs collected yet (local and standalone client-mode jobs "
        "write them)</p>"
    )
    return out


def render_html(snap: Snapshot) -> str:
    """A self-contained HTML dashboard page.

    Inline CSS, the charts as PNG ``data:`` URIs (:func:`chart_sections`); no scripts, no
    external files.
    """
    e = html.escape
    chart = chart_sections(snap)
    rows = []
    for r in snap.tables:
        m = snap.metrics.get(r.name, {})
        extra = {k: v for k, v in m.items() if k not in ("jobs", "seconds")}
        rows.append(
            f"<tr><td>{e(r.name)}</td><td class='s-{r.state.value}'>{r.state.value}</td>"
            f"<td>{r.round}</td><td>{r.attempt}</td><td>{e(r.cluster or '')}</td>"
            f"<td>{human_bytes(r.size_bytes)}</td><td>{m.get('jobs', 0)}</td>"
            f"<td>{m.get('seconds', 0.0):.1f}</td><td>{_when(r.started)}</td>"
            f"<td>{_when(r.finished)}</td><td>{e(detail_text(r))}</td>"
            f"<td><code>{e(json.dumps(extra)[:300])}</code></td>"
            f"<td>{e(_first_line(r.last_error))}</td></tr>"
        )
    audit_rows = "".join(
        f"<tr><td>{a[0]}</td><td>{_when(a[1])}</td><td>{e(str(a[2]))}</td><td>{e(str(a[3]))}</td>"
        f"<td>{e(str(a[4]))}</td><td>{e(str(a[5]))}</td><td>{e(str(a[6] or ''))}</td>"
        f"<td>{e(str(a[7] or ''))}</td></tr>"
        for a in snap.audit
    )
    gates = [r for r in snap.tables if "deviation" in r.details or "differing_files" in r.details]
    gate_rows = "".join(
        f"<tr><td>{e(r.name)}</td><td class='s-{r.state.value}'>{r.state.value}</td>"
        f"<td>{e(detail_text(r))}</td><td>{e(str(r.details.get('report') or ''))}</td>"
        f"<td>{e(r.approved_by or '')}</td></tr>"
        for r in sorted(
            gates,
            key=lambda r: -float(r.details.get("deviation", r.details.get("differing_files", 0))),
        )
    )
    job_rows = "".join(
        f"<tr><td>{e(j['table'])}</td><td>{e(j['kind'])}</td><td>{e(j['cluster'])}</td>"
        f"<td>{float(j['wall_seconds']):.1f}</td><td>{e(j['slowest_stage'])}</td>"
        f"<td>{e(str(j['requested_executors'] or ''))}</td><td>{j['peak_executors']}</td>"
        f"<td>{float(j['utilisation']):.0%}</td><td>{human_bytes(j['peak_jvm_heap_bytes'])}</td>"
        f"<td>{human_bytes(j['spill_bytes'])}</td><td>{j['failed_tasks']}</td>"
        f"<td>{e('; '.join(j['advice']))}</td></tr>"
        for j in snap.spark_jobs[:50]
    )
    bucket_row = "".join(f"<td>{snap.buckets.get(b, 0)}</td>" for b in BUCKETS)
    bucket_head = "".join(f"<th>{e(b)}</th>" for b in BUCKETS)
    est = (
        " (estimated: some loads reported no bytes; their declared sizes count)"
        if snap.estimated
        else ""
    )
    eta = format_duration(snap.eta_seconds) if snap.eta_seconds is not None else "unknown"
    styles = "".join(f".s-{k}{{color:{v};font-weight:bold}}" for k, v in STATE_COLOURS.items())
    done = snap.counts.get("DONE", 0)
    rate = 0.0 if math.isnan(snap.throughput) else snap.throughput
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lakeshift run {e(snap.run_id)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ddd;padding:3px 6px}}
th{{background:#f0f0f0}}img{{max-width:100%;height:auto}}
{styles}</style></head><body>
<h1>lakeshift run {e(snap.run_id)}{" (paused)" if snap.paused else ""}</h1>
<p>Generated {_when(snap.now)} UTC. {done}/{len(snap.tables)} tables DONE,
{human_bytes(snap.done_bytes)} of {human_bytes(snap.total_bytes)} loaded{est};
throughput {human_bytes(rate)}/s ({snap.tables_per_hour:.1f} tables/h); ETA {eta}.</p>
<h2>Where the tables are</h2><table><tr>{bucket_head}</tr><tr>{bucket_row}</tr></table>
<h2>State distribution</h2>{chart["states"]}
<h2>Progress over time</h2>{chart["progress"]}
<h2>Validation gates</h2><table><tr><th>table</th><th>state</th><th>result</th><th>report</th>
<th>approved by</th></tr>{gate_rows}</table>
<h2>Latency per job per cluster</h2>{chart["latency"]}
<h2>Requested vs used</h2>{chart["usage"]}
<h2>Spark jobs, slowest first: requested vs used</h2><table><tr><th>table</th><th>job</th>
<th>cluster</th><th>wall s</th><th>slowest stage</th><th>executors asked</th><th>peak alive</th>
<th>utilisation</th><th>peak heap</th><th>spill</th><th>failed tasks</th><th>advice</th></tr>
{job_rows}</table>
<h2>Tables</h2><table><tr><th>table</th><th>state</th><th>round</th><th>attempt</th>
<th>cluster</th><th>size</th><th>jobs</th><th>job seconds</th><th>started</th><th>finished</th>
<th>latest</th><th>metrics</th><th>last error</th></tr>{"".join(rows)}</table>
<h2>Audit log</h2><table><tr><th>#</th><th>when (UTC)</th><th>table</th><th>from</th><th>to</th>
<th>why</th><th>cluster</th><th>application</th></tr>{audit_rows}</table>
</body></html>
"""
