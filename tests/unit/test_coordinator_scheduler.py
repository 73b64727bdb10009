"""The scheduler over in-process fake clusters with a real SQLite state store."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lakeshift.coordinator.backends.base import Submission
from lakeshift.coordinator.backends.fake import FakeBackend
from lakeshift.coordinator.fsm import State
from lakeshift.coordinator.plan import RetryPolicy, plan_from_dict
from lakeshift.coordinator.scheduler import Coordinator, classify_failure
from lakeshift.coordinator.store import Batch, StateStore, StoreError


class Clock:
    """Manual time: each sleep advances it."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(s, 0.5)


def _plan(tables: list[dict], steps: list | None = None, retry: dict | None = None):
    base = {"source": "/s/{}", "target": "/t/{}", "keys": ["id"]}
    out = []
    for t in tables:
        d = {
            "source": base["source"].format(t["name"]),
            "target": base["target"].format(t["name"]),
            "keys": ["id"],
            **t,
        }
        out.append(d)
    # steps: the old name for "which jobs": ["copy"] = load only, else load + validation
    defaults: dict = {"auto_approve": True, "cutover": {"final_validate": False}}
    if steps != ["copy"]:
        defaults["validation"] = "v"
    if retry:
        defaults["retry"] = retry
    data = {
        "name": "t",
        "defaults": defaults,
        "tables": out,
        "validations": {"v": {"keys": ["id"]}},
    }
    return plan_from_dict(data)


def _run(plan, backends, store, clock=None, **kw):
    clock = clock or Clock()
    coord = Coordinator(
        plan, backends, store, poll_interval=1.0, clock=clock, sleep=clock.sleep, **kw
    )
    return coord, coord.run()


@pytest.fixture
def store(tmp_path: Path):
    s = StateStore.open(tmp_path / "state.db")
    yield s
    s.close()


def _to_states(store: StateStore, table: str) -> list[str]:
    return [a[4] for a in store.audit(table) if a[3] != a[4]]


def test_all_tables_done_in_dependency_order(store: StateStore) -> None:
    plan = _plan(
        [
            {"name": "a"},
            {"name": "b", "depends_on": ["a"]},
            {"name": "c", "depends_on": ["a"]},
            {"name": "d", "depends_on": ["b", "c"]},
            {"name": "e"},
        ]
    )
    backends = {"x": FakeBackend("x", capacity=1), "y": FakeBackend("y", capacity=2, ticks=2)}
    _, summary = _run(plan, backends, store)
    assert summary.states == {"DONE": 5}
    assert summary.ok
    audit = store.audit()
    done_at = {a[2]: a[0] for a in audit if a[4] == "DONE"}
    first_submit = {}
    for a in audit:
        if a[5].startswith("submitting"):
            first_submit.setdefault(a[2], a[0])
    assert first_submit["b"] > done_at["a"]
    assert first_submit["c"] > done_at["a"]
    assert first_submit["d"] > max(done_at["b"], done_at["c"])
    assert _to_states(store, "a") == ["LOADING", "VALIDATING", "READY", "CUT_OVER", "DONE"]
    # 5 tables x 2 steps, each submitted once
    subs = backends["x"].submitted + backends["y"].submitted
    assert Counter((s.table, s.kind) for s in subs) == {
        (t, k): 1 for t in "abcde" for k in ("load", "validate")
    }
    copy_a = next(s for s in subs if s.table == "a" and s.kind == "load")
    assert copy_a.args[:3] == ["/s/a", "/t/a", "--format=delta"]
    assert "--run-id=t" in copy_a.args  # run id


def test_capacity_and_priority(store: StateStore) -> None:
    plan = _plan([{"name": f"t{i}", "priority": i} for i in range(6)], steps=["copy"])
    log: list[tuple[str, int]] = []

    class Probe(FakeBackend):
        def submit(self, sub: Submission) -> str:
            log.append((sub.table, len(self.jobs)))
            return super().submit(sub)

        def poll(self, jobs):
            out = super().poll(jobs)
            for token, st in out.items():
                if st.state == "succeeded":
                    self.jobs.pop(token, None)
            return out

    _run(plan, {"only": Probe("only", capacity=2, ticks=1)}, store)
    assert [t for t, _ in log] == ["t5", "t4", "t3", "t2", "t1", "t0"]
    assert max(n for _, n in log) < 2  # never more than 2 running at once


def test_balances_bytes_by_weight(store: StateStore) -> None:
    plan = _plan([{"name": f"t{i}", "size": "1GB"} for i in range(8)], steps=["copy"])
    backends = {
        "big": FakeBackend("big", capacity=8, weight=3.0),
        "small": FakeBackend("small", capacity=8, weight=1.0),
    }
    _run(plan, backends, store)
    assert (len(backends["big"].submitted), len(backends["small"].submitted)) == (6, 2)


def test_transient_failure_retried_with_backoff(store: StateStore) -> None:
    plan = _plan(
        [{"name": "a"}, {"name": "b", "depends_on": ["a"]}],
        retry={"max_attempts": 3, "backoff_s": 10},
    )
    calls = Counter()

    def outcome(sub: Submission) -> tuple[int, str]:
        calls[(sub.table, sub.kind)] += 1
        if sub.table == "a" and sub.kind == "load" and sub.attempt < 3:
            return 1, "java.net.ConnectException: Connection refused"
        return 0, ""

    clock = Clock()
    _, summary = _run(plan, {"x": FakeBackend("x", 2, outcome=outcome)}, store, clock)
    assert summary.states == {"DONE": 2}
    assert calls[("a", "load")] == 3
    states = _to_states(store, "a")
    assert states == ["LOADING", "VALIDATING", "READY", "CUT_OVER", "DONE"]  # retries stay put
    retries = [a for a in store.audit("a") if a[3] == a[4] == "LOADING" and "retry in" in a[5]]
    assert "retry in 10s" in retries[0][5] and "retry in 20s" in retries[1][5]
    assert retries[1][1] - retries[0][1] >= 10  # waited for the backoff
    jobs = store.jobs(table="a")
    assert [j.status for j in jobs] == ["failed", "failed", "succeeded", "succeeded"]


@pytest.mark.parametrize(
    ("kind", "code", "error", "attempts"),
    [
        ("load", 2, "ConfigError: bad", 1),  # exit 2: permanent
        ("load", 1, "AnalysisException: [PATH_NOT_FOUND]", 1),  # permanent pattern
        ("validate", 1, "validation failed: 3 rows differ", 1),  # mismatch: permanent
        ("load", 1, "something odd", 2),  # unknown exit-1 error of copy: transient, gives up
    ],
)
def test_permanent_failures_and_blocked_dependents(
    store: StateStore, kind: str, code: int, error: str, attempts: int
) -> None:
    plan = _plan(
        [{"name": "a"}, {"name": "b", "depends_on": ["a"]}, {"name": "c"}],
        retry={"max_attempts": 2, "backoff_s": 1},
    )

    def outcome(sub: Submission) -> tuple[int, str]:
        return (code, error) if sub.table == "a" and sub.kind == kind else (0, "")

    backend = FakeBackend("x", 2, outcome=outcome)
    _, summary = _run(plan, {"x": backend}, store)
    assert summary.states == {"FAILED": 1, "PENDING": 1, "DONE": 1}
    assert summary.blocked == ["b"]
    assert not summary.ok
    assert sum(1 for s in backend.submitted if s.table == "a" and s.kind == kind) == attempts
    row = store.tables()["a"]
    assert row.state is State.FAILED
    assert error.split(":", maxsplit=1)[0] in (row.last_error or "")


@pytest.mark.parametrize(
    ("code", "text", "exit1_permanent", "transient"),
    [
        (2, "Connection refused", False, False),
        (1, "Connection refused", True, True),
        (1, "", True, False),
        (1, "", False, True),
        (137, "", True, True),
        (1, "Py4JJavaError ... AnalysisException", False, False),
        (-9, "killed by signal 9", False, True),
    ],
)
def test_classify(code: int, text: str, exit1_permanent: bool, transient: bool) -> None:
    assert classify_failure(code, text, RetryPolicy(), exit1_permanent) is transient


def test_stuck_submission_times_out(store: StateStore) -> None:
    plan = _plan(
        [{"name": "a"}],
        steps=["copy"],
        retry={"max_attempts": 2, "backoff_s": 0, "submit_timeout_s": 5},
    )

    class Stuck(FakeBackend):
        def poll(self, jobs):
            from lakeshift.coordinator.backends.base import JobStatus

            first = self.submitted[0].token
            return {
                t: JobStatus("submitted") if t == first else JobStatus("succeeded", 0)
                for t, _ in jobs
            }

    backend = Stuck("x", 1)
    _, summary = _run(plan, {"x": backend}, store)
    assert summary.states == {"DONE": 1}
    assert backend.cancelled == [backend.submitted[0].token]
    assert "timed out" in store.jobs(table="a")[0].error


def test_crash_and_resume_no_double_submission(tmp_path: Path) -> None:
    plan = _plan(
        [{"name": f"t{i}", "depends_on": [f"t{i - 1}"] if i % 2 else []} for i in range(8)]
    )
    cluster = FakeBackend("x", capacity=3, ticks=3)  # the "cluster" survives the crash
    db = tmp_path / "state.db"
    s1 = StateStore.open(db)
    _, first = _run(plan, {"x": cluster}, s1, max_ticks=6)
    s1.close()  # "killed": no cleanup beyond what was committed
    assert first.states.get("DONE", 0) < 8
    running_before = {t for t, j in cluster.jobs.items()}
    s2 = StateStore.open(db)
    _, second = _run(plan, {"x": cluster}, s2)
    assert second.states == {"DONE": 8}
    per_step = Counter((s.table, s.kind) for s in cluster.submitted)
    assert set(per_step.values()) == {1}
    dones = Counter(a[2] for a in s2.audit() if a[4] == "DONE")
    assert dones == {f"t{i}": 1 for i in range(8)}
    assert running_before  # some jobs were in flight at the crash and got reconciled
    s2.close()


def test_unlaunched_submission_is_relaunched_once(tmp_path: Path) -> None:
    plan = _plan([{"name": "a"}], steps=["copy"])
    db = tmp_path / "state.db"
    s1 = StateStore.open(db)

    class CrashOnSubmit(FakeBackend):
        def submit(self, sub: Submission) -> str:
            raise KeyboardInterrupt  # the coordinator dies between "submitting" and launch

    with pytest.raises(KeyboardInterrupt):
        _run(plan, {"x": CrashOnSubmit("x", 1)}, s1)
    s1.close()
    s2 = StateStore.open(db)
    assert [j.status for j in s2.jobs()] == ["submitting"]
    cluster = FakeBackend("x", 1)
    _, summary = _run(plan, {"x": cluster}, s2)
    assert summary.states == {"DONE": 1}
    assert len(cluster.submitted) == 1
    assert cluster.submitted[0].token == s2.jobs()[0].token  # same token, not a new job
    s2.close()


def test_stop_resume_rerun_and_pause_requests(store: StateStore) -> None:
    plan = _plan([{"name": "a"}, {"name": "b", "depends_on": ["a"]}], steps=["copy"])
    store.init_schema()
    store.ensure_tables([("a", 0, 0), ("b", 0, 0)])
    store.add_request("stop", "a")
    _, summary = _run(plan, {"x": FakeBackend("x", 1)}, store)
    assert summary.states == {"STOPPED": 1, "PENDING": 1}
    assert summary.blocked == ["b"]
    store.add_request("resume", "a")
    _, summary = _run(plan, {"x": FakeBackend("x", 1)}, store)
    assert summary.states == {"DONE": 2}
    store.add_request("rerun", "a")
    backend = FakeBackend("x", 1)
    _, summary = _run(plan, {"x": backend}, store)
    assert summary.states == {"DONE": 2}
    assert [s.table for s in backend.submitted] == ["a"]
    assert _to_states(store, "a")[-5:] == ["PENDING", "LOADING", "READY", "CUT_OVER", "DONE"]

    # pause: nothing is submitted while paused; the loop idles until resumed
    store.add_request("rerun", "b")
    store.set_meta("paused", "1")
    clock = Clock()
    backend = FakeBackend("x", 1)
    ticks = {"n": 0}

    def sleep(s: float) -> None:
        clock.sleep(s)
        ticks["n"] += 1
        if ticks["n"] == 3:
            assert backend.submitted == []
            store.set_meta("paused", "0")

    coord = Coordinator(plan, {"x": backend}, store, clock=clock, sleep=sleep)
    assert coord.run().states == {"DONE": 2}
    assert [s.table for s in backend.submitted] == ["b"]


def test_stop_running_job_cancels_it(store: StateStore) -> None:
    plan = _plan([{"name": "a"}], steps=["copy"])
    backend = FakeBackend("x", 1, ticks=100)
    clock = Clock()
    coord = Coordinator(plan, {"x": backend}, store, clock=clock, sleep=clock.sleep, max_ticks=2)
    coord.run()
    store.add_request("stop", None)
    coord2 = Coordinator(plan, {"x": backend}, store, clock=clock, sleep=clock.sleep)
    assert coord2.run().states == {"STOPPED": 1}
    assert backend.cancelled == [backend.submitted[0].token]
    assert store.jobs(table="a")[0].status == "cancelled"


def test_store_rejects_illegal_and_concurrent_changes(store: StateStore) -> None:
    store.init_schema()
    store.ensure_tables([("a", 0, 0)])
    row = store.tables()["a"]
    batch = Batch()
    with pytest.raises(Exception, match="illegal state change PENDING -> DONE"):
        batch.transition(row, State.DONE, "x", now=1.0)
    stale = store.tables()["a"]
    b1 = Batch()
    b1.transition(row, State.LOADING, "x", now=1.0)
    store.apply(b1)
    b2 = Batch()
    b2.transition(stale, State.STOPPED, "y", now=2.0)  # stale view: PENDING
    with pytest.raises(StoreError, match="not in the expected state"):
        store.apply(b2)
    assert store.tables()["a"].state is State.LOADING
    assert [(a[3], a[4]) for a in store.audit("a")] == [
        ("PENDING", "PENDING"),
        ("PENDING", "LOADING"),
    ]


def test_second_coordinator_is_locked_out(tmp_path: Path) -> None:
    s1 = StateStore.open(tmp_path / "s.db")
    s1.init_schema()
    s1.acquire_lock()
    s2 = StateStore.open(tmp_path / "s.db")
    with pytest.raises(StoreError, match="another coordinator"):
        s2.acquire_lock()
    s1.close()
    s2.acquire_lock()
    s2.close()
