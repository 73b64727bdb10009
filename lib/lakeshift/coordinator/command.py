"""``lakeshift run|status|report|plan|pause|resume|stop|rerun``: the coordinator's commands."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakeshift.errors import UsageError

if TYPE_CHECKING:
    from lakeshift.coordinator.plan import Plan
    from lakeshift.coordinator.store import StateStore

log = logging.getLogger(__name__)

DEFAULT_CLUSTERS = Path("conf/clusters.yaml")


def register(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the coordinator's subcommands."""

    def state_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--state-dir", help="the run's folder (default: .lakeshift/<plan name>)")
        p.add_argument(
            "--db",
            help="state database URL: a SQLite path (default "
            "<state-dir>/state.db) or postgresql://…",
        )

    p = subparsers.add_parser("run", parents=[common], help="run a migration plan over clusters")
    p.add_argument("plan", help="plan YAML file")
    p.add_argument(
        "--clusters", help="cluster profiles YAML (default: the plan's, else conf/clusters.yaml)"
    )
    p.add_argument("--poll", type=float, default=2.0, help="seconds between polls (default 2)")
    p.add_argument(
        "--wait-for-approval",
        action="store_true",
        help="keep running while tables wait in READY, and cut them over as `lakeshift "
        "approve` signs them off (default: exit, telling what to approve)",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="one line per transition even on a terminal (default there: a live table)",
    )
    state_opts(p)
    p.set_defaults(func=run_command)

    p = subparsers.add_parser("status", parents=[common], help="show a run's progress")
    p.add_argument("--plan", help="the plan (its name locates the state)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    p.add_argument("--interval", type=float, default=2.0, help="refresh seconds (default 2)")
    state_opts(p)
    p.set_defaults(func=status_command)

    p = subparsers.add_parser("report", parents=[common], help="write a static HTML dashboard")
    p.add_argument("--plan", help="the plan (its name locates the state)")
    p.add_argument("--html", required=True, help="output HTML file")
    state_opts(p)
    p.set_defaults(func=report_command)

    p = subparsers.add_parser("plan", parents=[common], help="check a plan; --estimate: timing")
    p.add_argument("plan", help="plan YAML file")
    p.add_argument("--estimate", action="store_true", help="estimate the transfer time")
    p.add_argument("--bandwidth", default="1GB", help="bytes per second (default 1GB)")
    p.add_argument(
        "--scan",
        metavar="PROFILE.json",
        help="take bytes, files (-> requests, parts per size bucket), prefixes and the change "
        "rate from a 'lakeshift scan' profile instead of the plan's sizes (options below "
        "still override)",
    )
    p.add_argument(
        "--change-rate",
        default=None,
        help="source changes, bytes per second (default: the profile's, else 0)",
    )
    p.add_argument(
        "--change-files",
        type=float,
        default=None,
        help="files changed or added per second (default: the profile's; else changes are "
        "assumed to look like the bulk)",
    )
    p.add_argument(
        "--change-size",
        default=None,
        help="median size of a changed file (default: the profile's)",
    )
    p.add_argument(
        "--request-limit",
        type=float,
        default=None,
        help="object-store requests per second (default: unlimited)",
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    p.add_argument("--part-size", default="128MB", help="multipart part size")
    p.add_argument(
        "--prefixes",
        type=float,
        default=None,
        help="prefixes the --request-limit applies to each (default 1; with --scan: objects / "
        "objects of the busiest top-level prefix)",
    )
    p.add_argument(
        "--tcp-window",
        default=None,
        help="bytes one connection has in flight per round trip (--latency as RTT)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 2) on a warning (missing source, empty glob)",
    )
    p.set_defaults(func=plan_command)

    p = subparsers.add_parser(
        "approve", parents=[common], help="approve the cut-over of READY tables (audited)"
    )
    p.add_argument("tables", nargs="+", help="READY tables to cut over")
    p.add_argument("--plan", help="the plan (its name locates the state)")
    p.add_argument("--by", required=True, help="who approves (recorded in the audit log)")
    p.add_argument("--note", default="", help="why (recorded in the audit log)")
    state_opts(p)
    p.set_defaults(func=approve_command)

    p = subparsers.add_parser(
        "rollback", parents=[common], help="undo the cut-over of tables (metastore and routing)"
    )
    p.add_argument("tables", nargs="+", help="cut-over tables to take back to READY")
    p.add_argument("--plan", help="the plan (its name locates the state)")
    state_opts(p)
    p.set_defaults(func=rollback_command)

    for name, helptext in (
        ("pause", "pause tables (their running job finishes), or the whole run"),
        ("resume", "resume a paused run, or stopped/failed tables"),
        ("stop", "stop tables (cancels their jobs), or all"),
        ("rerun", "run tables again from their first step"),
    ):
        p = subparsers.add_parser(name, parents=[common], help=helptext)
        p.add_argument("tables", nargs="*", help="tables (default: the whole run)")
        p.add_argument("--plan", help="the plan (its name locates the state)")
        state_opts(p)
        p.set_defaults(func=control_command, action=name)


def _size_arg(value: str, flag: str) -> int:
    from lakeshift.config import parse_size

    if value in ("0", "0B"):
        return 0
    try:
        return parse_size(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from exc


def _plan_name(path: str) -> str:
    from lakeshift.config.base import load_model
    from lakeshift.coordinator.plan import PlanConfig

    try:
        cfg = load_model(path, PlanConfig)
        return cfg.name or Path(path).stem
    except Exception:  # the name is only used to find the state
        return Path(path).stem


def _state_dir(args: argparse.Namespace, plan_name: str | None) -> Path:
    if args.state_dir:
        return Path(args.state_dir)
    if plan_name:
        return Path(".lakeshift") / plan_name
    raise UsageError("give --state-dir, --db or --plan to locate the run's state")


def _open_store(args: argparse.Namespace, plan_name: str | None, must_exist: bool) -> StateStore:
    from lakeshift.coordinator.store import StateStore

    if args.db:
        url = args.db
    else:
        db = _state_dir(args, plan_name) / "state.db"
        if must_exist and not db.is_file():
            raise UsageError(f"no run state at {db}: run `lakeshift run PLAN` first")
        url = str(db)
    store = StateStore.open(url)
    store.init_schema()
    return store


def run_command(args: argparse.Namespace) -> int:
    """``lakeshift run PLAN``."""
    from lakeshift.coordinator.backends import RunContext, make_backend
    from lakeshift.coordinator.clusters import load_clusters
    from lakeshift.coordinator.plan import load_plan
    from lakeshift.coordinator.scheduler import Coordinator, describe
    from lakeshift.coordinator.store import StateStore
    from lakeshift.runtime import run_date_from_args

    run_date = run_date_from_args(args)
    plan = load_plan(args.plan, run_date=run_date)
    clusters_path = Path(args.clusters) if args.clusters else plan.clusters_path or DEFAULT_CLUSTERS
    clusters = load_clusters(clusters_path, run_date=run_date)
    state_dir = _state_dir(args, plan.name).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(run_id=plan.name, state_dir=state_dir)
    backends = {name: make_backend(name, prof, ctx) for name, prof in clusters.clusters.items()}
    store = StateStore.open(args.db or str(state_dir / "state.db"))
    store.init_schema()
    live = None if args.plain or not sys.stdout.isatty() else _LiveView(store)
    try:
        coord = Coordinator(
            plan,
            backends,
            store,
            run_id=plan.name,
            poll_interval=args.poll,
            state_dir=state_dir,
            echo=live.transition if live else print_transition,
            sleep=live.sleep if live else time.sleep,
            wait_for_approval=args.wait_for_approval,
        )
        if live:
            with live:
                summary = coord.run()
        else:
            summary = coord.run()
        ready = sorted(n for n, r in coord.rows.items() if r.state.value == "READY")
    finally:
        store.close()
    print(json.dumps(describe(summary), sort_keys=True))
    if ready:
        shown = " ".join(ready[:10]) + (" …" if len(ready) > 10 else "")
        print(
            f"lakeshift run: {len(ready)} table(s) READY, waiting for a sign-off: "
            f"lakeshift approve {shown} --plan {args.plan} --by NAME, then run again "
            f"(or run with --wait-for-approval)",
            file=sys.stderr,
        )
    return 0 if summary.ok or summary.awaiting_approval else 1


class _LiveView:
    """``lakeshift run`` on a terminal.

    The status table is redrawn while the coordinator waits, the latest transitions under it.
    """

    def __init__(self, store: StateStore, every_s: float = 1.0) -> None:
        from rich.console import Console
        from rich.live import Live

        self.store = store
        self.every_s = every_s
        self.last = 0.0
        self.recent: list[str] = []
        self.live = Live(console=Console(), refresh_per_second=2, transient=False)

    def __enter__(self) -> _LiveView:
        self.live.__enter__()
        self.redraw()
        return self

    def __exit__(self, *exc: object) -> None:
        self.redraw()
        self.live.__exit__(None, None, None)

    def transition(self, row: tuple[object, ...]) -> None:
        self.recent = [*self.recent[-7:], transition_line(row)]

    def redraw(self) -> None:
        from rich.console import Group
        from rich.text import Text

        from lakeshift.coordinator.dashboard import render, snapshot

        self.last = time.monotonic()
        self.live.update(Group(render(snapshot(self.store)), Text("\n".join(self.recent))))

    def sleep(self, seconds: float) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self.redraw()
        time.sleep(seconds)


def transition_line(row: tuple[object, ...]) -> str:
    """``HH:MM:SS table: FROM -> TO: why`` for an audit row ``(at, table, from, to, why, …)``."""
    at, table, src, dst, why = row[:5]
    stamp = time.strftime("%H:%M:%S", time.localtime(float(at)))  # type: ignore[arg-type]
    move = f"{src} -> {dst}" if src != dst else str(dst)
    return f"{stamp} {table}: {move}: {why}"


def print_transition(row: tuple[object, ...]) -> None:
    """One plain line per audited transition (``lakeshift run`` off a terminal)."""
    print(transition_line(row), flush=True)


def status_command(args: argparse.Namespace) -> int:
    """``lakeshift status``: live view, or one snapshot with ``--once``/``--json``."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.live import Live

    from lakeshift.coordinator.dashboard import render, snapshot

    store = _open_store(args, _plan_name(args.plan) if args.plan else None, must_exist=True)
    if args.json:
        snap = snapshot(store)
        data = asdict(snap)
        data["tables"] = [{**asdict(t), "state": t.state.value} for t in snap.tables]
        data["failures"] = [t.name for t in snap.failures]
        print(json.dumps(data, default=str, sort_keys=True))
        return 0
    console = Console(width=160 if not sys.stdout.isatty() else None)
    if args.once:
        console.print(render(snapshot(store)))
        return 0
    with Live(render(snapshot(store)), console=console, refresh_per_second=1) as live:
        while True:
            time.sleep(args.interval)
            snap = snapshot(store)
            live.update(render(snap))
            if snap.eta_seconds == 0.0:
                return 0


def report_command(args: argparse.Namespace) -> int:
    """``lakeshift report --html FILE``."""
    from lakeshift.coordinator.dashboard import render_html, snapshot

    store = _open_store(args, _plan_name(args.plan) if args.plan else None, must_exist=True)
    page = render_html(snapshot(store, audit_limit=None))
    out = Path(args.html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    print(f"wrote {out}")
    return 0


def plan_command(args: argparse.Namespace) -> int:
    """``lakeshift plan PLAN [--estimate]``."""
    from lakeshift.config import human_bytes
    from lakeshift.coordinator.estimate import estimate_transfer
    from lakeshift.coordinator.plan import load_plan
    from lakeshift.runtime import run_date_from_args

    plan = load_plan(args.plan, run_date=run_date_from_args(args))
    for w in plan.warnings:
        print(f"lakeshift plan: warning: {w}", file=sys.stderr)
    if args.strict and plan.warnings:
        raise UsageError(
            f"{args.plan}: {len(plan.warnings)} warning(s) with --strict: {plan.warnings[0]}"
        )
    total = sum(t.size_bytes for t in plan.tables.values())
    out: dict[str, object] = {
        "plan": plan.name,
        "tables": len(plan.tables),
        "layers": plan.layers,
        "bytes": total,
    }
    if args.scan and not args.estimate:
        raise UsageError("--scan: only with --estimate")
    if args.estimate:
        est_in = _estimate_inputs(args, plan, total)
        if "scan" in est_in:
            out["scan"] = est_in.pop("scan")
        est = estimate_transfer(
            bandwidth=_size_arg(args.bandwidth, "--bandwidth"),
            request_limit=args.request_limit,
            latency=args.latency,
            concurrency=args.concurrency,
            tcp_window=_size_arg(args.tcp_window, "--tcp-window") if args.tcp_window else None,
            **est_in,
        )
        out["estimate"] = {
            "bytes": est.bytes,
            "files": est.files,
            "prefixes": est_in["prefixes"],
            "change_rate": est_in["change_rate"],
            "change_files": est_in["change_files"],
            "change_requests": est.change_requests,
            "base_seconds": est.base_seconds,
            "total_seconds": est.total_seconds if est.converges else None,
            "binding": est.binding,
            "converges": est.converges,
            "change_ratio": est.change_ratio,
            "requests": est.requests,
            "limits": est.limits(),
            "bytes_sent": est.bytes_sent if est.converges else None,
            "concurrency_needed": est.concurrency_needed,
            "summary": est.describe(),
        }
    if args.json:
        print(json.dumps(out, sort_keys=True))
        return 0
    print(
        f"plan {plan.name}: {len(plan.tables)} tables in {plan.layers} dependency layers, "
        f"{human_bytes(total)}"
    )
    for name in plan.order:
        t = plan.tables[name]
        deps = f" after {', '.join(t.depends_on)}" if t.depends_on else ""
        chain = " -> ".join(k for k in t.jobs if k != "rollback")
        print(
            f"  L{t.layer} {name}: {t.load_kind}: {chain} "
            f"({human_bytes(t.size_bytes)}, priority {t.priority}){deps}"
        )
    if args.estimate:
        sc = out.get("scan")
        if isinstance(sc, dict):
            ch = sc.get("change")
            print(
                f"scan {sc['profile']}: {sc['files']} files, {human_bytes(sc['bytes'])}, "
                f"{sc['prefixes']} prefixes (busiest {sc['max_prefix_files']} objects), "
                + (
                    f"changes {ch['events_per_s']:.3g} files/s, {human_bytes(ch['bytes_per_s'])}/s"
                    if ch
                    else "no change rate (scan with --since for one)"
                )
            )
        print(f"estimate: {out['estimate']['summary']}")  # type: ignore[index]
    return 0


def _estimate_inputs(args: argparse.Namespace, plan: Plan, plan_bytes: int) -> dict[str, Any]:
    """The planner's inputs: the plan's sizes, or a scan profile's figures; options override."""
    from lakeshift.coordinator.estimate import parts_for_buckets, requests_needed

    part_size = _size_arg(args.part_size, "--part-size")
    if args.prefixes is not None and args.prefixes <= 0:
        raise UsageError(f"--prefixes: expected more than 0, found {args.prefixes:g}")
    if args.change_files is not None and args.change_files < 0:
        raise UsageError(f"--change-files: expected 0 or more, found {args.change_files:g}")
    inputs: dict[str, Any] = {"part_size": part_size}
    change_rate: float | None = None
    change_files: float | None = args.change_files
    change_size: float | None = None
    delete_rate = 0.0
    if args.scan:
        from lakeshift.ops.scan import load_profile

        prof = load_profile(args.scan, "--scan")
        totals = prof["totals"]
        files, nbytes = int(totals["files"]), int(totals["bytes"])
        busiest = int(totals["max_prefix_files"])
        buckets = [(int(b["files"]), int(b["bytes"])) for b in prof["buckets"]]
        parts = parts_for_buckets(buckets, part_size)
        inputs.update(
            total_bytes=nbytes,
            files=files,
            requests=requests_needed(files, parts),
            prefixes=files / busiest if busiest else 1.0,
        )
        ch = prof.get("change")
        if ch:
            change_rate = float(ch["bytes_per_s"])
            if change_files is None:
                change_files = float(ch["events_per_s"])
            median = ch.get("median_changed_size")
            change_size = float(median) if median is not None else None
            delete_rate = float(ch["deletes_per_s"])
        inputs["scan"] = {
            "profile": args.scan,
            "scanned_at": prof["scanned_at"],
            "files": files,
            "bytes": nbytes,
            "parts": parts,
            "prefixes": int(totals["prefixes"]),
            "max_prefix_files": busiest,
            "change": ch or None,
        }
    else:
        inputs.update(
            total_bytes=plan_bytes,
            files=sum(max(1, int(t.values.get("files", "1"))) for t in plan.tables.values()),
            prefixes=1.0,
        )
    if args.prefixes is not None:
        inputs["prefixes"] = float(args.prefixes)
    if args.change_rate is not None:
        change_rate = float(_size_arg(args.change_rate, "--change-rate"))
    if args.change_size is not None:
        change_size = float(_size_arg(args.change_size, "--change-size"))
    inputs.update(
        change_rate=change_rate or 0.0,
        change_files=change_files,
        change_file_size=change_size,
        delete_rate=delete_rate,
    )
    return inputs


def control_command(args: argparse.Namespace) -> int:
    """``pause``, ``resume``, ``stop``, ``rerun``: requests the running coordinator applies."""
    store = _open_store(args, _plan_name(args.plan) if args.plan else None, must_exist=True)
    known = set(store.tables())
    unknown = [t for t in args.tables if t not in known]
    if unknown:
        raise UsageError(f"{args.action}: unknown table(s) {', '.join(unknown)}")
    if args.action == "rerun" and not args.tables:
        raise UsageError("rerun: name the tables to run again")
    if args.action == "pause" and not args.tables:
        store.set_meta("paused", "1")
    elif args.action == "resume" and not args.tables:
        store.set_meta("paused", "0")
        store.add_request("resume-all", None)
    else:
        for t in args.tables or [None]:
            store.add_request(args.action, t)
    print(f"{args.action}: recorded for {', '.join(args.tables) or 'the whole run'}")
    return 0


def _tables_in(args: argparse.Namespace, allowed: set[str], what: str) -> StateStore:
    """The run's store, once every named table exists and is in one of ``allowed`` states."""
    store = _open_store(args, _plan_name(args.plan) if args.plan else None, must_exist=True)
    rows = store.tables()
    unknown = [t for t in args.tables if t not in rows]
    if unknown:
        raise UsageError(f"{what}: unknown table(s) {', '.join(unknown)} (known: {len(rows)})")
    wrong = [
        f"{t} is {rows[t].state.value}" for t in args.tables if rows[t].state.value not in allowed
    ]
    if wrong:
        need = " or ".join(sorted(allowed))
        raise UsageError(f"{what}: {'; '.join(wrong)}; {what} needs {need} tables")
    return store


def approve_command(args: argparse.Namespace) -> int:
    """``lakeshift approve TABLE… --by NAME``: the cut-over's sign-off, audited."""
    if "\t" in args.by or "\t" in args.note:
        raise UsageError("approve: --by and --note may not contain tabs")
    store = _tables_in(args, {"READY"}, "approve")
    for t in args.tables:
        store.add_request("approve", f"{t}\t{args.by}\t{args.note}")
    print(
        f"approve: recorded for {', '.join(args.tables)} by {args.by}; the running coordinator "
        f"(or the next `lakeshift run`) cuts them over"
    )
    return 0


def rollback_command(args: argparse.Namespace) -> int:
    """``lakeshift rollback TABLE…``: metastore and routing back to the old locations."""
    store = _tables_in(args, {"DONE", "CUT_OVER"}, "rollback")
    for t in args.tables:
        store.add_request("rollback", t)
    print(f"rollback: recorded for {', '.join(args.tables)}")
    return 0
