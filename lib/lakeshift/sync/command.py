"""``lakeshift sync``: record a start point, catch up (``--once``) or stay in step (continuous).

Usage::

    lakeshift sync start-point --config sync.yaml   # before the bulk copy
    lakeshift sync --config sync.yaml --once          # catch up and stop
    lakeshift sync --config sync.yaml                 # continuous (Ctrl-C to stop)
    lakeshift sync status --config sync.yaml          # last committed position and metrics
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lakeshift.config import load_model
from lakeshift.runtime import profile_from_args, run_date_from_args
from lakeshift.sync.config import SyncConfig


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``sync`` subcommand."""
    p = subparsers.add_parser(
        "sync",
        parents=[common],
        help="live sync after the bulk copy: apply inserts, updates and deletes idempotently",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument(
        "action",
        nargs="?",
        choices=["run", "start-point", "status"],
        default="run",
        help="run (default), start-point (before the bulk copy) or status",
    )
    p.add_argument("--config", required=True, help="sync YAML file")
    p.add_argument("--once", action="store_true", help="catch up, then stop")
    p.add_argument("--max-batches", type=int, default=None, help="stop after N batches (--once)")
    p.add_argument(
        "--trigger-seconds", type=float, default=None, help="continuous trigger interval"
    )
    p.add_argument(
        "--stop-after", type=float, default=None, help="continuous: stop after this many seconds"
    )
    p.set_defaults(func=run)


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
            return 0
        if args.once:
            total = 0
            for report in engine.run_once(spark, cfg, max_batches=args.max_batches):
                total += report.events
                print(report.line(), flush=True)
            print(f"sync {cfg.name}: caught up ({total} events applied)", flush=True)
            return 0
        engine.run_continuous(
            spark,
            cfg,
            stop_after=args.stop_after,
            on_batch=lambda r: print(r.line(), file=sys.stdout, flush=True),
        )
    return 0
