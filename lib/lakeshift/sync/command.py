"""``lakeshift sync``: record a start point, catch up (``--once``) or stay in step (continuous).

Usage::

    lakeshift sync start-point --config sync.yaml   # before the bulk copy
    lakeshift sync --config sync.yaml --once          # catch up and stop
    lakeshift sync --config sync.yaml                 # continuous (Ctrl-C to stop)
    lakeshift sync status --config sync.yaml          # last committed position and metrics
    lakeshift sync finalize --config sync.yaml        # at cut-over: tombstones and hidden columns
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Annotated, Any, Literal

from lakeshift.config import load_model
from lakeshift.contracts import CommonArgs, Opt
from lakeshift.runtime import profile_from_args, run_date_from_args
from lakeshift.sync.config import SyncConfig


class SyncArgs(CommonArgs):
    """The arguments of ``lakeshift sync`` (and of ``jobs/incremental_sync.py``)."""

    COMMAND = ("sync",)
    JOB = "jobs/incremental_sync.py"

    action: Annotated[
        Literal["run", "start-point", "status", "finalize"],
        Opt(
            positional=True,
            help="run (default), start-point (before the bulk copy), status, or finalize (at "
            "cut-over, after the last sync: drop tombstones and the hidden version columns)",
        ),
    ] = "run"
    config: Annotated[str, Opt(help="sync YAML file")]
    once: Annotated[bool, Opt(help="catch up, then stop")] = False
    max_batches: Annotated[int | None, Opt(help="stop after N batches (--once)")] = None
    trigger_seconds: Annotated[float | None, Opt(help="continuous trigger interval")] = None
    stop_after: Annotated[float | None, Opt(help="continuous: stop after this many seconds")] = None
    json_out: Annotated[
        str | None,
        Opt(
            "--json",
            metavar="FILE",
            help="write a JSON summary: the start point, or the events applied and the lag "
            "(seconds, events) left after the last batch",
        ),
    ] = None


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``sync`` subcommand."""
    p = subparsers.add_parser(
        "sync",
        parents=[common],
        help="live sync after the bulk copy: apply inserts, updates and deletes idempotently",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    SyncArgs.add_arguments(p)
    p.set_defaults(func=run)


def _write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True, default=str)


def run(args: argparse.Namespace) -> int:
    """Run the sync action; exit 0 when it completed."""
    cfg = load_model(args.config, SyncConfig, run_date=run_date_from_args(args))
    if args.trigger_seconds is not None:
        cfg.trigger_seconds = args.trigger_seconds
    if args.action == "status":
        from lakeshift.sync.state import SyncState

        state = SyncState(cfg.state_dir, cfg.name)
        out = {
            "start_point": state.start_point(),
            "committed": state.position(),
            "pending": state.pending(),
        }
        print(json.dumps(out, indent=2, sort_keys=True, default=str))
        return 0

    from lakeshift.spark import session
    from lakeshift.sync import engine

    profile = profile_from_args(args, f"lakeshift-sync-{cfg.name}")
    with session(profile) as spark:
        if args.action == "start-point":
            point = engine.record_start_point(spark, cfg)
            print(f"sync {cfg.name}: start point recorded: {json.dumps(point, default=str)}")
            _write_json(args.json_out, {"name": cfg.name, "start_point": point})
            return 0
        if args.action == "finalize":
            done = engine.finalize(spark, cfg)
            dropped = ", ".join(done.get("dropped_columns") or []) or "none"
            print(f"sync {cfg.name}: target finalized for readers (dropped columns: {dropped})")
            _write_json(args.json_out, done)
            return 0
        if args.once:
            total, batches, last = 0, 0, None
            for report in engine.run_once(spark, cfg, max_batches=args.max_batches):
                total += report.events
                batches += 1
                last = report
                print(report.line(), flush=True)
            print(f"sync {cfg.name}: caught up ({total} events applied)", flush=True)
            _write_json(
                args.json_out,
                {
                    "name": cfg.name,
                    "batches": batches,
                    "events": total,
                    "position": last.position if last else None,
                    "lag_seconds": (last.lag_seconds or 0.0) if last else 0.0,
                    "behind": last.behind if last else {},
                },
            )
            return 0
        engine.run_continuous(
            spark,
            cfg,
            stop_after=args.stop_after,
            on_batch=lambda r: print(r.line(), file=sys.stdout, flush=True),
        )
    return 0
