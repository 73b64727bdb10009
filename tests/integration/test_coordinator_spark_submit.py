"""The spark-submit backend for real: jobs launched with the pyspark install's spark-submit
through the detached wrapper; the coordinator is killed with SIGKILL mid-run and restarted."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from lakeshift.cli import main as cli
from lakeshift.coordinator.store import StateStore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "tests" / "integration" / "coordinator_jobs" / "marker_job.py"


def _wait(pred, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _states(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return dict(conn.execute("SELECT name, state FROM tables").fetchall())
    except sqlite3.Error:
        return {}


def _load(args: list[str]) -> dict:
    return {"kind": "script", "file": str(JOB), "args": args}


def _job_running(db: Path) -> bool:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return bool(conn.execute("SELECT 1 FROM jobs WHERE status = 'running'").fetchall())
    except sqlite3.Error:
        return False


def test_kill_and_resume_local_spark_submit(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    state = tmp_path / "state"
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        json.dumps(
            {
                "clusters": {
                    "local": {
                        "backend": "spark-submit",
                        "master": "local[1]",
                        "capacity": 2,
                        "submit_args": ["--driver-memory", "512m"],
                        "conf": {"spark.ui.enabled": "false"},
                    }
                }
            }
        )
    )
    base = [str(out), "{table}"]
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        json.dumps(
            {
                "name": "itest",
                "clusters": str(clusters),
                "defaults": {"retry": {"max_attempts": 3, "backoff_s": 1}, "auto_approve": True},
                "tables": [
                    {
                        "name": "a",
                        "priority": 9,
                        "load": _load([*base, "load", "{attempt}", "--sleep", "6"]),
                    },
                    {
                        "name": "b",
                        "depends_on": ["a"],
                        "load": _load([*base, "load", "{attempt}"]),
                    },
                    {
                        "name": "c",
                        "priority": 5,
                        "load": _load([*base, "load", "{attempt}", "--fail-attempts", "1"]),
                    },
                    {"name": "d", "load": _load([*base, "load", "{attempt}", "--exit", "2"])},
                ],
            }
        )
    )
    cmd = [
        sys.executable,
        "-m",
        "lakeshift.cli",
        "run",
        str(plan),
        "--state-dir",
        str(state),
        "--poll",
        "0.5",
    ]
    log1 = (tmp_path / "coord1.log").open("wb")
    first = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT, cwd=REPO)
    db = state / "state.db"
    try:
        _wait(lambda: _job_running(db), 300, "a job to run")
    finally:
        first.send_signal(signal.SIGKILL)  # no cleanup at all
        first.wait()
    # the job a was running and is detached: it survives the coordinator
    with sqlite3.connect(db) as conn:
        pids = [
            int(r[0])
            for r in conn.execute(
                "SELECT app_id FROM jobs WHERE status IN ('submitted', 'running') AND app_id != ''"
            )
        ]
    assert pids and any(Path(f"/proc/{p}").exists() for p in pids)

    log2 = (tmp_path / "coord2.log").open("wb")
    second = subprocess.run(
        cmd, stdout=log2, stderr=subprocess.STDOUT, cwd=REPO, timeout=300, check=False
    )
    assert second.returncode == 1, (tmp_path / "coord2.log").read_text()[-3000:]
    assert _states(db) == {"a": "DONE", "b": "DONE", "c": "DONE", "d": "FAILED"}

    runs = Counter(tuple(line.split()) for line in (out / "runs.txt").read_text().splitlines())
    assert runs == {
        ("a", "load", "1"): 1,
        ("b", "load", "1"): 1,
        ("c", "load", "1"): 1,
        ("c", "load", "2"): 1,
        ("d", "load", "1"): 1,
    }
    store = StateStore.open(db)
    dones = Counter(a[2] for a in store.audit() if a[4] == "DONE")
    assert dones == {"a": 1, "b": 1, "c": 1}
    by_step: dict[tuple[str, str], list[str]] = {}
    for j in store.jobs():
        by_step.setdefault((j.table_name, j.kind), []).append(j.status)
    for statuses in by_step.values():  # a second job for a step only after a recorded failure
        assert all(s == "failed" for s in statuses[:-1]), by_step
    assert by_step[("c", "load")] == ["failed", "succeeded"]
    d = store.tables()["d"]
    assert "simulated failure, exit 2" in (d.last_error or "")
    assert "permanent" in next(a for a in store.audit("d") if a[4] == "FAILED")[5]
    store.close()

    assert cli(["status", "--state-dir", str(state), "--once"]) == 0
    text = capsys.readouterr().out
    assert "3/4 tables DONE" in text
    assert "simulated failure, exit 2" in text
    html_file = tmp_path / "report.html"
    assert cli(["report", "--state-dir", str(state), "--html", str(html_file)]) == 0
    page = html_file.read_text()
    assert "<h2>Audit log</h2>" in page and page.count('src="data:image/png;base64,') >= 3
    assert page.count("<td class='s-DONE'>DONE</td>") == 3
    assert "http" not in page.replace("http-equiv", "")  # self-contained: no external links


@pytest.mark.skipif(
    not (REPO / "jobs" / "validate.py").exists() or not (REPO / "jobs" / "bulk_copy.py").exists(),
    reason="jobs/bulk_copy.py or jobs/validate.py not there",
)
def test_real_copy_and_validate_jobs(tmp_path: Path) -> None:
    """The job-kind table against the real entry points: `copy` then `validate` of one table,
    and a `validate`-only table whose sides differ (exit 1: a permanent failure, no retry)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, n in (("good", 10), ("left", 6), ("right", 5)):
        (tmp_path / "src" / name).mkdir(parents=True)
        pq.write_table(
            pa.table({"id": list(range(n)), "v": [f"x{i}" for i in range(n)]}),
            tmp_path / "src" / name / "part-0.parquet",
        )
    clusters = tmp_path / "clusters.yaml"
    clusters.write_text(
        json.dumps(
            {
                "clusters": {
                    "local": {
                        "backend": "spark-submit",
                        "master": "local[1]",
                        "capacity": 2,
                        "submit_args": ["--driver-memory", "1g"],
                        "conf": {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"},
                    }
                }
            }
        )
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        json.dumps(
            {
                "name": "real",
                "clusters": str(clusters),
                "defaults": {
                    "source_format": "parquet",
                    "validation": "by_id",
                    "auto_approve": True,
                    "cutover": {"final_validate": False},
                    "retry": {"max_attempts": 2, "backoff_s": 1},
                },
                "validations": {"by_id": {"keys": ["id"]}},
                "tables": [
                    {
                        "name": "good",
                        "source": str(tmp_path / "src" / "good"),
                        "target": str(tmp_path / "dst" / "good"),
                        "keys": ["id"],
                    },
                    {
                        "name": "differs",
                        "load": "none",
                        "format": "parquet",
                        "keys": ["id"],
                        "source": str(tmp_path / "src" / "left"),
                        "target": str(tmp_path / "src" / "right"),
                    },
                ],
            }
        )
    )
    state = tmp_path / "state"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lakeshift.cli",
            "run",
            str(plan),
            "--state-dir",
            str(state),
            "--poll",
            "0.5",
        ],
        capture_output=True,
        cwd=REPO,
        timeout=900,
        check=False,
    )
    assert done.returncode == 1, done.stderr.decode()[-3000:]
    store = StateStore.open(state / "state.db")
    tables = store.tables()
    assert (tables["good"].state.value, tables["differs"].state.value) == ("DONE", "FAILED")
    jobs = {(j.table_name, j.kind): j for j in store.jobs()}
    assert len(store.jobs()) == 3  # the mismatch was not retried
    copy_metrics = json.loads(jobs[("good", "load")].metrics or "{}")
    assert copy_metrics["tables"][0]["totals"]["rows_written"] == 10
    check = json.loads(jobs[("good", "validate")].metrics or "{}")
    assert check["passed"] is True and check["tables"][0]["right_rows"] == 10
    assert jobs[("differs", "validate")].exit_code == 1
    # each job's Spark event log was read into the store beside it
    spark = json.loads(jobs[("good", "load")].spark or "{}")
    assert spark["app_name"] and spark["wall_seconds"] > 0 and spark["tasks"] >= 1
    assert spark["output_records"] >= 10  # the 10 rows the copy wrote
    logs = list((state / "eventlogs" / jobs[("good", "load")].token).iterdir())
    assert len(logs) == 1
    assert json.loads(jobs[("differs", "validate")].spark or "{}")["tasks"] >= 1  # failed job too
    store.close()
    status = subprocess.run(
        [sys.executable, "-m", "lakeshift.cli", "status", "--state-dir", str(state), "--json"],
        capture_output=True,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    seen = {(j["table"], j["kind"]) for j in json.loads(status.stdout)["spark_jobs"]}
    assert {("good", "load"), ("good", "validate"), ("differs", "validate")} <= seen
