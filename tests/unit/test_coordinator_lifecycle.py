"""The table lifecycle over an in-process fake cluster and a real SQLite state store.

Job outcomes and JSON summaries are scripted per job kind (what the real commands write with
``--json``); the expectations are the literal state sequences of the lifecycle.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lakeshift.coordinator.backends.base import Submission
from lakeshift.coordinator.backends.fake import FakeBackend
from lakeshift.coordinator.plan import plan_from_dict
from lakeshift.coordinator.scheduler import Coordinator
from lakeshift.coordinator.store import StateStore


def _plan(tmp_path: Path, **orders: Any):
    return plan_from_dict(
        {
            "name": "life",
            "defaults": {"validation": "gate"},
            "validations": {"gate": {"keys": ["id"], "max_deviation": 0.001, "repair_rounds": 1}},
            "tables": [
                {
                    "name": "orders",
                    "source": str(tmp_path / "raw/orders"),
                    "source_format": "parquet",
                    "target": str(tmp_path / "delta/orders"),
                    "cutover": {"catalog": "sales.orders"},
                    **orders,
                },
                {
                    "name": "logs",
                    "load": "files",
                    "source": str(tmp_path / "raw/logs"),
                    "target": str(tmp_path / "mirror/logs"),
                    "validation": "none",
                    "auto_approve": True,
                    "cutover": {"route": True},
                },
            ],
        }
    )


class Script:
    """Outcomes and summaries per (table, kind): the first validation of orders fails."""

    def __init__(self, fail_validations: int = 1, lag_rounds: int = 0) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()
        self.fail_validations = fail_validations
        self.lag_rounds = lag_rounds

    def outcome(self, sub: Submission) -> tuple[int, str]:
        self.seen[(sub.table, sub.kind)] += 1
        if self._bad(sub):
            return 1, "validation failed"
        return 0, ""

    def _bad(self, sub: Submission) -> bool:
        return (
            sub.table == "orders"
            and sub.kind == "validate"
            and self.seen[(sub.table, sub.kind)] <= self.fail_validations
        )

    def metrics(self, sub: Submission) -> dict[str, Any]:
        if sub.table == "orders" and sub.kind in ("validate", "final_validate"):
            bad = self._bad(sub)
            verdict = "fail" if bad else "pass"
            return {"tables": [{"verdict": verdict, "deviation": 0.01 if bad else 0.0}]}
        if sub.kind in ("catch_up", "final_sync"):
            left = self.lag_rounds - self.seen[(sub.table, sub.kind)]
            return {"copied": max(0, left + 1) if left >= 0 else 0, "kind": "copy"}
        if sub.kind == "validate":
            return {"kind": "verify", "missing": 0, "failed": 0}
        if sub.kind == "load":
            return {"copied_bytes": 1234, "kind": "copy"}
        return {}


def _run(plan, store, script, tmp_path, **kw):
    backend = FakeBackend("c1", capacity=2, outcome=script.outcome, metrics=script.metrics)
    coord = Coordinator(
        plan,
        {"c1": backend},
        store,
        poll_interval=0,
        sleep=lambda s: None,
        state_dir=tmp_path / "state",
        **kw,
    )
    return backend, coord.run()


def _moves(store: StateStore, table: str) -> list[str]:
    return [a[4] for a in store.audit(table) if a[3] != a[4]]


@pytest.fixture
def store(tmp_path: Path):
    s = StateStore.open(tmp_path / "state.db")
    yield s
    s.close()


def test_gate_repair_approval_and_cut_over(tmp_path: Path, store: StateStore) -> None:
    plan = _plan(tmp_path)
    script = Script()
    backend, summary = _run(plan, store, script, tmp_path)
    assert summary.states == {"DONE": 1, "READY": 1}  # orders waits for its approval
    assert _moves(store, "orders") == ["LOADING", "VALIDATING", "REPAIRING", "VALIDATING", "READY"]
    assert _moves(store, "logs") == [
        "LOADING",
        "CATCHING_UP",
        "VALIDATING",
        "READY",
        "CUT_OVER",
        "DONE",
    ]
    gate = [a[5] for a in store.audit("orders") if a[3] == "VALIDATING" and a[4] == "REPAIRING"]
    assert gate == ["validation gate failed (deviation 0.01); repair round 1 of 1"]
    assert store.tables()["logs"].details["bytes_moved"] == 1234
    routing = (tmp_path / "state/routing/spark-routing.conf").read_text().splitlines()
    assert (
        f"spark.hadoop.fs.viewfs.mounttable.default.link.{tmp_path}/raw/logs file://{tmp_path}/mirror/logs"
        in routing
    )
    assert (
        "spark.hadoop.fs.file.impl org.apache.hadoop.fs.viewfs.ViewFileSystemOverloadScheme"
        in routing
    )

    store.add_request("approve", "orders\talice\tdeviation 0 after repair")
    backend, summary = _run(plan, store, script, tmp_path)
    assert summary.states == {"DONE": 2}
    assert _moves(store, "orders")[-2:] == ["CUT_OVER", "DONE"]
    approvals = [a[5] for a in store.audit("orders") if "approved by alice" in a[5]]
    assert approvals[0] == "approved by alice: deviation 0 after repair"
    assert [s.kind for s in backend.submitted] == ["final_validate", "switch"]
    assert store.tables()["orders"].approved_by == "alice"


def test_gate_failing_after_the_repair_rounds_fails_with_the_report(
    tmp_path: Path, store: StateStore
) -> None:
    plan = _plan(tmp_path)
    _, summary = _run(plan, store, Script(fail_validations=5), tmp_path)
    assert summary.states["FAILED"] == 1
    row = store.tables()["orders"]
    assert row.resume_state is not None and row.resume_state.value == "VALIDATING"
    last = store.audit("orders")[-1][5]
    assert last.startswith("validation gate failed (deviation 0.01) after 1 repair round(s)")


def test_catch_up_rounds_until_under_the_threshold(tmp_path: Path, store: StateStore) -> None:
    plan = _plan(tmp_path)
    _run(plan, store, Script(lag_rounds=2), tmp_path)
    rounds = [
        a[5]
        for a in store.audit("logs")
        if a[3] == a[4] == "CATCHING_UP" and a[5].startswith("round ")
    ]
    assert [r.split(":")[0] for r in rounds] == ["round 1", "round 2"]
    caught = [a[5] for a in store.audit("logs") if a[3] == "CATCHING_UP" and a[4] == "VALIDATING"]
    assert caught == ["caught up after 3 round(s): lag 0s, 0 events"]


def test_rollback_takes_a_table_back_to_ready_and_out_of_the_routing(
    tmp_path: Path, store: StateStore
) -> None:
    plan = _plan(tmp_path)
    script = Script()
    _run(plan, store, script, tmp_path)
    store.add_request("rollback", "logs")
    _run(plan, store, script, tmp_path, max_ticks=20)
    assert store.tables()["logs"].state.value == "READY"
    assert _moves(store, "logs")[-1] == "READY"
    routes = (tmp_path / "state/routing/routes.json").read_text()
    assert "raw/logs" not in routes
