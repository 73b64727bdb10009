"""Scheduler scale benchmark: 50,000 jobs in a 53-layer DAG through an in-process fake backend.

Measures the coordinator's own overhead (the fake clusters finish jobs instantly, so every second
is scheduling, state-machine checks and SQLite writes), wall and CPU time (the machine is shared:
CPU time is the steadier figure), and peak memory (ru_maxrss). Baseline, side by side on a
smaller DAG: the same coordinator but finding ready tables by rescanning every table and its
dependencies on each tick. Prints both and the ratio.

Usage: .venv/bin/python scripts/bench/coordinator.py [--jobs 50000] [--layers 53]
"""

from __future__ import annotations

import argparse
import heapq
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

# this folder holds other benchmarks (e.g. copy.py) that would shadow stdlib modules
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parents[1] / "lib"))

from lakeshift.coordinator.backends.fake import FakeBackend  # noqa: E402
from lakeshift.coordinator.fsm import State  # noqa: E402
from lakeshift.coordinator.plan import plan_from_dict  # noqa: E402
from lakeshift.coordinator.scheduler import JOB_STATES, Coordinator  # noqa: E402
from lakeshift.coordinator.store import StateStore  # noqa: E402


def build_plan_dict(jobs: int, layers: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    per_layer = jobs // layers
    tables = []
    prev: list[str] = []
    made = 0
    for layer in range(layers):
        count = per_layer if layer < layers - 1 else jobs - made
        cur = []
        for i in range(count):
            name = f"l{layer:02d}_t{i:05d}"
            deps = rng.sample(prev, k=min(len(prev), rng.choice((1, 2)))) if prev else []
            tables.append(
                {
                    "name": name,
                    "depends_on": deps,
                    "size": rng.randint(1, 1000) * 1024,
                    "priority": rng.randint(0, 3),
                }
            )
            cur.append(name)
        made += count
        prev = cur
    return {
        "name": "bench",
        "defaults": {
            "load": {"kind": "script", "file": "jobs/noop.py", "args": ["{table}"]},
            "auto_approve": True,
        },
        "tables": tables,
    }


def backends(capacity: int) -> dict[str, FakeBackend]:
    return {f"c{i}": FakeBackend(f"c{i}", capacity=capacity, weight=1 + i % 2) for i in range(4)}


class RescanCoordinator(Coordinator):
    """Baseline: the same coordinator, but ready tables are found by rescanning every table
    (and its dependencies) on every tick instead of in-degree counting + a heap."""

    def _enqueue(self, name: str, now: float) -> None:
        return None

    def _release_delayed(self, now: float) -> None:
        self.delayed.clear()

    def _schedule(self, now: float) -> None:
        done = State.DONE
        for n, t in self.plan.tables.items():  # the naive way: look at every table each tick
            row = self.rows[n]
            if row.state is State.PENDING and all(self.rows[d].state is done for d in t.depends_on):
                self._advance(row, now)
        self.ready = [
            (-t.priority, -t.height, -t.size_bytes, n)
            for n, t in self.plan.tables.items()
            if self.rows[n].state in JOB_STATES
            and self.rows[n].not_before <= now
            and all(self.rows[d].state is done for d in t.depends_on)
        ]
        heapq.heapify(self.ready)
        super()._schedule(now)
        self.ready = (
            [(0, 0, 0, "")] if any(r.state in JOB_STATES for r in self.rows.values()) else []
        )


def ours(
    plan_dict: dict, capacity: int, db: Path, cls: type[Coordinator] = Coordinator
) -> tuple[float, float, int, dict[str, int]]:
    t0 = time.perf_counter()
    plan = plan_from_dict(plan_dict, "bench")
    t_plan = time.perf_counter() - t0
    store = StateStore.open(db)
    t1, c1 = time.perf_counter(), time.process_time()
    coord = cls(plan, dict(backends(capacity)), store, poll_interval=0, sleep=lambda s: None)
    summary = coord.run()
    t_run = time.perf_counter() - t1
    ours.cpu = time.process_time() - c1  # type: ignore[attr-defined]
    store.close()
    return t_plan, t_run, summary.ticks, summary.states


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=50_000)
    ap.add_argument("--layers", type=int, default=53)
    ap.add_argument("--capacity", type=int, default=100, help="per cluster (4 clusters)")
    ap.add_argument(
        "--baseline-jobs",
        type=int,
        default=10_000,
        help="size of the side-by-side comparison with the rescan baseline",
    )
    args = ap.parse_args()
    plan_dict = build_plan_dict(args.jobs, args.layers)
    with tempfile.TemporaryDirectory() as tmp:
        t_plan, t_run, ticks, states = ours(plan_dict, args.capacity, Path(tmp) / "state.db")
        rss_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        db_mb = (Path(tmp) / "state.db").stat().st_size / 2**20
    print(f"jobs={args.jobs} layers={args.layers} clusters=4 x capacity {args.capacity}")
    print(
        f"coordinator: plan resolve {t_plan:.2f}s, scheduling {t_run:.2f}s wall / "
        f"{ours.cpu:.2f}s CPU over {ticks} ticks "
        f"({t_run / args.jobs * 1e6:.0f} us/job incl. durable SQLite state, {db_mb:.0f} MiB), "
        f"final states {states}"
    )
    print(f"peak memory (ru_maxrss, whole process) {rss_ours:.0f} MiB")
    n_base = args.baseline_jobs
    base_dict = build_plan_dict(n_base, args.layers)
    with tempfile.TemporaryDirectory() as tmp:
        _, t_small, _, _ = ours(base_dict, args.capacity, Path(tmp) / "a.db")
        c_small = ours.cpu
        _, t_rescan, _, st = ours(base_dict, args.capacity, Path(tmp) / "b.db", RescanCoordinator)
        c_rescan = ours.cpu
    assert st == {"DONE": n_base}, st
    print(
        f"side by side at {n_base} jobs: coordinator {t_small:.2f}s wall / {c_small:.2f}s CPU, "
        f"baseline rescan-every-tick {t_rescan:.2f}s wall / {c_rescan:.2f}s CPU; "
        f"ratio baseline/coordinator {t_rescan / t_small:.2f}x wall, {c_rescan / c_small:.2f}x CPU"
    )
    ok = t_run + t_plan < 60 and rss_ours < 1024 and states == {"DONE": args.jobs}
    print("target (<60 s, <1 GiB, all DONE):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
