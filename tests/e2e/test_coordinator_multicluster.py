"""Real multi-cluster run: two Spark standalone clusters on loopback (started from the pyspark
install by scripts/spark_cluster.sh), a 12-table plan with dependencies spread over both, the
coordinator killed with SIGKILL mid-run and restarted.

Each table is copied from Parquet into Delta by Spark and validated (row count + order-free hash
of source vs target). To keep JVM start-ups within the test budget, each table is ONE job that
does copy+validate in one driver (tests/e2e/coordinator_jobs/delta_job.py) unless the real
``jobs/bulk_copy.py`` and ``jobs/validate.py`` work (``LAKESHIFT_E2E_REAL_JOBS=1``), in which
case they run as the load and the validation gate of each table. The test then checks the Delta
targets independently (pyarrow reads the files the Delta log adds).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakeshift.coordinator.store import StateStore

# JVM start-ups dominate; on a busy shared machine a job can take minutes, hence the timeout
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "tests" / "e2e" / "coordinator_jobs" / "delta_job.py"
SCRIPT = REPO / "scripts" / "spark_cluster.sh"
N_TABLES = 12


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("clusters")
    dirs = [base / "c1", base / "c2"]
    env = {**os.environ, "PYTHON": str(Path(sys.executable))}
    procs = [
        subprocess.Popen(
            ["bash", str(SCRIPT), "start", str(d), "--cores", "2", "--memory", "1g"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
        )
        for d in dirs
    ]
    try:
        urls = []
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-2000:]
            urls.append(out.decode().strip().splitlines()[-1])
        yield urls
    finally:
        for d in dirs:
            subprocess.run(["bash", str(SCRIPT), "stop", str(d)], cwd=REPO, timeout=60, check=False)


def _states(db: Path) -> dict[str, str]:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return dict(conn.execute("SELECT name, state FROM tables").fetchall())
    except sqlite3.Error:
        return {}


def _wait(pred, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _delta_rows(target: Path) -> list[tuple]:
    """Rows of a Delta table read without Spark: the log's add actions minus removes."""
    files: set[str] = set()
    for log in sorted((target / "_delta_log").glob("*.json")):
        for line in log.read_text().splitlines():
            action = json.loads(line)
            if "add" in action:
                files.add(action["add"]["path"])
            if "remove" in action:
                files.discard(action["remove"]["path"])
    rows: list[tuple] = []
    for f in files:
        t = pq.read_table(target / f)
        rows += list(zip(t.column("id").to_pylist(), t.column("v").to_pylist(), strict=True))
    return sorted(rows)


@pytest.fixture
def reap_jobs(tmp_path: Path):
    """Stop job wrappers this test launched that outlive it (e.g. after a failure)."""
    yield
    for pid_file in (tmp_path / "state" / "jobs").glob("*.pid"):
        if (pid_file.with_suffix(".exit")).exists():
            continue
        pid = int(json.loads(pid_file.read_text())["pid"])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid_file.stem.encode() in cmdline:
            os.killpg(pid, signal.SIGTERM)


def _real_jobs_work() -> bool:
    if os.environ.get("LAKESHIFT_E2E_REAL_JOBS") != "1":
        return False
    probe = subprocess.run(
        [sys.executable, "-m", "lakeshift.cli", "copy", "--help"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return probe.returncode == 0 and (REPO / "jobs" / "validate.py").exists()


def test_two_clusters_kill_and_resume(clusters: list[str], tmp_path: Path, reap_jobs) -> None:
    src, dst, state = tmp_path / "src", tmp_path / "dst", tmp_path / "state"
    expected = {}
    for i in range(N_TABLES):
        rows = [(i * 1000 + k, f"t{i}-{k}") for k in range(5 + i)]
        (src / f"t{i:02d}").mkdir(parents=True)
        pq.write_table(
            pa.table({"id": [r[0] for r in rows], "v": [r[1] for r in rows]}),
            src / f"t{i:02d}" / "part-0.parquet",
        )
        expected[f"t{i:02d}"] = sorted(rows)
    common = {
        "spark.cores.max": "1",
        "spark.executor.cores": "1",
        "spark.executor.memory": "512m",
        "spark.ui.enabled": "false",
    }
    profiles = {
        f"c{n + 1}": {
            "backend": "spark-submit",
            "master": url,
            "capacity": 2,
            "conf": common,
            "submit_args": ["--driver-memory", "512m"],
            "env": {"SPARK_LOCAL_IP": "127.0.0.1"},
        }
        for n, url in enumerate(clusters)
    }
    (tmp_path / "clusters.yaml").write_text(json.dumps({"clusters": profiles}))
    real = _real_jobs_work()
    lifecycle: dict = {"auto_approve": True}  # no sign-off step in this test
    if real:
        lifecycle.update(load="copy", validation="by_id")
    else:
        lifecycle.update(
            load={
                "kind": "script",
                "file": str(JOB),
                "args": ["copy+validate", "{source}", "{target}"],
            },
            validation="none",  # the job validates itself
        )
    tables = []
    for i in range(N_TABLES):
        t = {
            "name": f"t{i:02d}",
            "source": str(src / f"t{i:02d}"),
            "target": str(dst / f"t{i:02d}"),
            "keys": ["id"],
            "size": 1000 + i,
        }
        if i >= 4:  # three layers of four: all four slots (2 clusters x 2) busy
            t["depends_on"] = [f"t{i - 4:02d}"]
        tables.append(t)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        json.dumps(
            {
                "name": "e2e",
                "clusters": "clusters.yaml",
                "validations": {"by_id": {"keys": ["id"], "max_deviation": 0}},
                "defaults": {
                    **lifecycle,
                    "source_format": "parquet",
                    "retry": {"max_attempts": 3, "backoff_s": 2},
                },
                "tables": tables,
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
    db = state / "state.db"
    with (tmp_path / "coord1.log").open("wb") as log1:
        first = subprocess.Popen(cmd, stdout=log1, stderr=subprocess.STDOUT, cwd=REPO)
        try:
            _wait(lambda: Counter(_states(db).values())["DONE"] >= 2, 1200, "two tables DONE")
        finally:
            first.send_signal(signal.SIGKILL)  # mid-run, no cleanup
            first.wait()
    before = Counter(_states(db).values())
    assert before["DONE"] < N_TABLES
    with (tmp_path / "coord2.log").open("wb") as log2:
        second = subprocess.run(
            cmd, stdout=log2, stderr=subprocess.STDOUT, cwd=REPO, timeout=1500, check=False
        )
    assert second.returncode == 0, (tmp_path / "coord2.log").read_text()[-3000:]
    assert set(_states(db).values()) == {"DONE"}

    store = StateStore.open(db)
    audit = store.audit()
    assert Counter(a[2] for a in audit if a[4] == "DONE") == {t: 1 for t in expected}
    jobs = store.jobs()
    by_step: dict[tuple[str, int], list[str]] = {}
    for j in jobs:
        by_step.setdefault((j.table_name, j.step), []).append(j.status)
    for key, statuses in by_step.items():
        assert statuses[-1] == "succeeded", key
        assert all(s == "failed" for s in statuses[:-1]), (key, statuses)
    assert {j.cluster for j in jobs} == {"c1", "c2"}
    done_at = {a[2]: a[0] for a in audit if a[4] == "DONE"}
    first_submit: dict[str, int] = {}
    for a in audit:
        if a[4] == "LOADING":
            first_submit.setdefault(a[2], a[0])
    for i in range(4, N_TABLES):
        assert first_submit[f"t{i:02d}"] > done_at[f"t{i - 4:02d}"]
    store.close()
    for name, rows in expected.items():
        assert _delta_rows(dst / name) == rows, name
    print(f"real jobs: {real}; states at kill: {dict(before)}; jobs: {len(jobs)}")
