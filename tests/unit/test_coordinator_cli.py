"""Operator commands and the status/report views over a state written by a real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakeshift.cli import main as cli
from lakeshift.coordinator.backends.base import Submission
from lakeshift.coordinator.backends.fake import FakeBackend
from lakeshift.coordinator.dashboard import human_bytes, render_html, snapshot
from lakeshift.coordinator.plan import plan_from_dict
from lakeshift.coordinator.scheduler import Coordinator
from lakeshift.coordinator.store import StateStore


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    plan = plan_from_dict(
        {
            "name": "ops",
            "defaults": {
                "validation": "v",
                "auto_approve": True,
                "cutover": {"final_validate": False},
                "retry": {"max_attempts": 1},
            },
            "validations": {"v": {"keys": ["id"]}},
            "tables": [
                {"name": "a", "source": "/s", "target": "/t", "keys": ["id"], "size": "3MB"},
                {"name": "b", "source": "/s", "target": "/t", "keys": ["id"], "size": "1MB"},
                {"name": "c", "source": "/s", "target": "/t", "keys": ["id"], "depends_on": ["b"]},
            ],
        }
    )

    def outcome(sub: Submission) -> tuple[int, str]:
        return (
            (1, "3 rows differ: mismatch")
            if sub.table == "b" and sub.kind == "validate"
            else (0, "")
        )

    store = StateStore.open(tmp_path / "state.db")
    Coordinator(
        plan,
        {"x": FakeBackend("x", 2, outcome=outcome)},
        store,
        poll_interval=0,
        sleep=lambda s: None,
    ).run()
    store.close()
    return tmp_path


def test_status_once_and_json(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["status", "--state-dir", str(state_dir), "--once"]) == 0
    text = capsys.readouterr().out
    assert "run ops: 1/3 tables DONE" in text
    assert "3 rows differ: mismatch" in text
    assert cli(["status", "--state-dir", str(state_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"DONE": 1, "FAILED": 1, "PENDING": 1}
    assert data["failures"] == ["b"]
    assert data["done_bytes"] == 3 * 2**20


def test_report_html(state_dir: Path) -> None:
    out = state_dir / "r" / "report.html"
    assert cli(["report", "--state-dir", str(state_dir), "--html", str(out)]) == 0
    page = out.read_text()
    for part in (
        "State distribution",
        "Progress over time",
        "<h2>Tables</h2>",
        "Audit log",
        "3 rows differ: mismatch",
        "Latency per job per cluster",
        "Requested vs used",
    ):
        assert part in page
    # charts as inline PNGs: states, DONE over time, latency (the fake cluster's jobs timed by
    # the coordinator's clock); no event logs, so requested vs used says so in words
    assert page.count('<img src="data:image/png;base64,') == 3
    assert "latency of 4 jobs on 1 clusters (x)" in page
    assert "no Spark event logs collected yet" in page
    assert "<script" not in page and "<svg" not in page
    store = StateStore.open(state_dir / "state.db")
    audit = len(store.audit())
    assert sum(1 for j in store.jobs() if j.finished_at) == 4
    store.close()
    # buckets (head + counts), gates (head; no deviation reported), Spark jobs (head; the fake
    # cluster writes no event logs), tables, audit log
    assert page.count("<tr>") == 2 + 1 + 1 + (1 + 3) + (1 + audit)
    assert "<th>not started</th>" in page and "<td>1</td>" in page


def test_control_commands_queue_requests(state_dir: Path, capsys) -> None:
    d = ["--state-dir", str(state_dir)]
    assert cli(["pause", *d]) == 0
    store = StateStore.open(state_dir / "state.db")
    assert store.get_meta("paused") == "1"
    assert cli(["resume", *d]) == 0
    assert store.get_meta("paused") == "0"
    assert cli(["rerun", "b", *d]) == 0
    assert cli(["stop", *d]) == 0
    assert [(a, t) for _, a, t in store.pending_requests()] == [
        ("resume-all", None),
        ("rerun", "b"),
        ("stop", None),
    ]
    assert cli(["stop", "zzz", *d]) == 2
    assert "unknown table(s) zzz" in capsys.readouterr().err
    assert cli(["rerun", *d]) == 2
    store.close()


def test_snapshot_eta_from_throughput(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "s.db")
    store.init_schema()
    store.ensure_tables([("a", 0, 100), ("b", 0, 300)])
    store.set_meta("started", "1000")
    store.conn.execute(
        """UPDATE tables SET state = 'DONE', details = '{"bytes_moved": 100}' WHERE name = 'a'"""
    )
    snap = snapshot(store, now=1010.0)  # 100 bytes in 10 s: 10 B/s; 300 left: 30 s
    assert snap.throughput == pytest.approx(10.0)
    assert snap.eta_seconds == pytest.approx(30.0)
    assert snap.tables_per_hour == pytest.approx(360.0)
    assert "lakeshift run" in render_html(snap)
    assert human_bytes(3 * 2**20) == "3.0 MiB"
    store.close()


def test_snapshot_counts_reported_bytes_and_labels_declared_ones(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "s.db")
    store.init_schema()
    store.ensure_tables([("a", 0, 100), ("b", 0, 300), ("c", 0, 1000), ("d", 0, 50)])
    store.set_meta("started", "1000")
    details = {"a": '{"bytes_moved": 400}', "b": '{"deviation": 0.0005, "differing_rows": 2}'}
    for name, state in (("a", "DONE"), ("b", "VALIDATING"), ("d", "LOADING")):
        store.conn.execute(
            "UPDATE tables SET state = ?, details = ? WHERE name = ?",
            (state, details.get(name, "{}"), name),
        )
    snap = snapshot(store, now=1020.0)
    # a reported 400 B moved (declared 100); b finished its load without a byte count: its
    # declared 300 B count, labelled as estimated; c (PENDING) and d (LOADING) are not loaded
    assert (snap.moved_bytes, snap.done_bytes, snap.estimated_tables) == (400, 700, 1)
    assert snap.throughput == pytest.approx(20.0)  # 400 B reported in 20 s
    assert snap.eta_seconds == pytest.approx((1000 + 50) / 20.0)
    assert snap.buckets["not started"] == 1 and snap.buckets["loading"] == 1
    assert snap.buckets["validating"] == 1 and snap.buckets["cut over"] == 1
    page = render_html(snap)
    assert "estimated" in page and "deviation 0.0500% (2 rows)" in page
    store.close()


def test_spark_job_metrics_requested_vs_used(tmp_path: Path) -> None:
    from lakeshift.coordinator.store import Batch, job_update

    store = StateStore.open(tmp_path / "s.db")
    store.init_schema()
    store.ensure_tables([("a", 0, 100)])
    batch = Batch()
    batch.new_jobs.append(("t1", "a", 0, "load", 1, "c1", 10.0))
    spark = {
        "app_id": "local-1",
        "app_name": "copy",
        "wall_seconds": 100.0,
        "task_seconds": 40.0,
        "tasks": 8,
        "requested_executors": 4,
        "requested_cores": 2,
        "peak_executors": 1,
        "total_cores": 2,
        "stages": [
            {"stage_id": 0, "name": "scan", "seconds": 10.0},
            {"stage_id": 1, "name": "write", "seconds": 70.0},
        ],
    }
    batch.job_updates.append(
        job_update("t1", "succeeded", exit_code=0, finished_at=110.0, spark=spark)
    )
    store.apply(batch)
    snap = snapshot(store)
    (job,) = snap.spark_jobs
    assert (job["table"], job["kind"], job["cluster"]) == ("a", "load", "c1")
    assert job["slowest_stage"] == "write (70.0 s)"
    assert job["utilisation"] == pytest.approx(40.0 / (2 * 100.0))
    # asked 4 executors, 1 alive at peak: the advice names what it really held
    assert job["advice"] == [
        "asked 4 executors x 2 cores, peak 1 alive, utilisation 20%: try --num-executors 1"
    ]
    page = render_html(snap)
    assert "requested vs used" in page and "try --num-executors 1" in page
    store.close()
