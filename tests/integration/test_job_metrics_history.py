"""Job metrics as operators see them, held against Spark's own numbers.

The coordinator runs three real ``lakeshift copy`` jobs on a Spark standalone cluster (started
from the pyspark install by scripts/spark_cluster.sh); one asks for four executors of a worker
that can hold two. ``lakeshift status --json`` must carry each job's wall time and stage times,
and the advice must name only the over-provisioned job. The oracle is Spark's History Server
reading the same event logs: its REST API's application durations and stage submission/completion
times — Spark's own parser, not lakeshift's.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "spark_cluster.sh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _gmt(text: str) -> float:
    return (
        dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fGMT")
        .replace(tzinfo=dt.timezone.utc)
        .timestamp()
    )


@pytest.fixture
def standalone(tmp_path: Path):
    d = tmp_path / "cluster"
    env = {**os.environ, "PYTHON": sys.executable}
    out = subprocess.run(
        ["bash", str(SCRIPT), "start", str(d), "--cores", "2", "--memory", "2g"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(d)], cwd=REPO, timeout=60, check=False)


@pytest.fixture
def history(tmp_path: Path):
    """Start Spark's History Server on a folder; yields (folder, base URL)."""
    import pyspark

    logs = tmp_path / "history"
    logs.mkdir()
    port = _free_port()
    props = tmp_path / "history.conf"
    props.write_text(
        f"spark.history.fs.logDirectory file:{logs}\n"
        f"spark.history.ui.port {port}\n"
        "spark.history.fs.update.interval 1s\n"
        "spark.history.ui.bindAddress 127.0.0.1\n"
    )
    exe = Path(pyspark.__file__).parent / "bin" / "spark-class"
    with (tmp_path / "history.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                str(exe),
                "org.apache.spark.deploy.history.HistoryServer",
                "--properties-file",
                str(props),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
        )
        try:
            yield logs, f"http://127.0.0.1:{port}/api/v1"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_status_json_job_metrics_match_the_history_server(
    standalone: str, history, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    for name, n in (("small", 200), ("medium", 2000), ("big", 4000)):
        (src / name).mkdir(parents=True)
        for part in range(4):
            pq.write_table(
                pa.table({"id": list(range(part * n, (part + 1) * n)), "v": ["x"] * n}),
                src / name / f"part-{part}.parquet",
            )
    (tmp_path / "clusters.yaml").write_text(
        json.dumps(
            {
                "clusters": {
                    "sa": {
                        "backend": "spark-submit",
                        "master": standalone,
                        "capacity": 1,
                        "submit_args": ["--driver-memory", "512m"],
                        "env": {"SPARK_LOCAL_IP": "127.0.0.1"},
                        "conf": {
                            "spark.executor.cores": "1",
                            "spark.executor.memory": "512m",
                            "spark.ui.enabled": "false",
                            "spark.sql.shuffle.partitions": "2",
                        },
                    }
                }
            }
        )
    )
    tables = []
    for name in ("small", "medium", "big"):
        table: dict = {
            "name": name,
            "source": str(src / name),
            "target": str(tmp_path / "dst" / name),
        }
        if name == "big":  # four executors asked of a worker with two cores
            table["load"] = {"kind": "copy", "args": ["--spark-conf", "spark.executor.instances=4"]}
        tables.append(table)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        json.dumps(
            {
                "name": "metrics",
                "clusters": "clusters.yaml",
                "defaults": {
                    "source_format": "parquet",
                    "validation": "none",
                    "auto_approve": True,
                    "retry": {"max_attempts": 1},
                },
                "tables": tables,
            }
        )
    )
    state = tmp_path / "state"
    run = subprocess.run(
        [sys.executable, "-m", "lakeshift.cli", "run", str(plan), "--state-dir", str(state),
         "--poll", "0.5", "--plain"],
        capture_output=True, text=True, cwd=REPO, timeout=1200, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    status = subprocess.run(
        [sys.executable, "-m", "lakeshift.cli", "status", "--state-dir", str(state), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=True,
    )  # fmt: skip
    jobs = {j["table"]: j for j in json.loads(status.stdout)["spark_jobs"]}
    assert set(jobs) == {"small", "medium", "big"}

    # Spark's History Server reads the same event logs
    logs, api = history
    for folder in (state / "eventlogs").iterdir():
        for entry in folder.iterdir():
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, logs / entry.name)
    deadline = time.time() + 180
    apps: list = []
    while time.time() < deadline:
        try:
            apps = list(_get(f"{api}/applications"))  # type: ignore[arg-type]
        except OSError:
            apps = []
        if len(apps) == 3 and all(a["attempts"][0]["completed"] for a in apps):
            break
        time.sleep(1)
    assert len(apps) == 3, apps
    by_id = {a["id"]: a for a in apps}
    with sqlite3.connect(state / "state.db") as conn:
        spark_apps = {
            t: json.loads(m)["app_id"]
            for t, m in conn.execute("SELECT table_name, spark FROM jobs")
        }
    for name, job in jobs.items():
        app_id = spark_apps[name]
        app = by_id[app_id]
        spark_wall = app["attempts"][0]["duration"] / 1000
        assert job["wall_seconds"] == pytest.approx(spark_wall, abs=0.01), name
        stages = _get(f"{api}/applications/{app_id}/stages")
        spark_stages = {
            s["stageId"]: _gmt(s["completionTime"]) - _gmt(s["submissionTime"])
            for s in stages  # type: ignore[union-attr]
            if s["status"] == "COMPLETE"
        }
        ours = {s["stage_id"]: s["seconds"] for s in job["stages"]}
        assert set(ours) == set(spark_stages), name
        for sid, secs in spark_stages.items():
            assert ours[sid] == pytest.approx(secs, abs=0.01), (name, sid)

    assert any("asked 4 executors" in a for a in jobs["big"]["advice"]), jobs["big"]
    assert jobs["big"]["requested_executors"] == 4 and jobs["big"]["peak_executors"] <= 2
    for name in ("small", "medium"):
        assert not any("executors" in a for a in jobs[name]["advice"]), jobs[name]
