"""EMR backend against moto's EMR/S3 API in server mode (moto is a test double of AWS, run as a
real HTTP server), and the Livy backend against a minimal Livy REST double (http.server in a
thread, below). Neither runs Spark: they check what the coordinator sends and how it reads the
answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from lakeshift.coordinator.backends.base import RunContext
from lakeshift.coordinator.backends.emr import EmrBackend, step_status
from lakeshift.coordinator.backends.livy import LivyBackend, batch_status
from lakeshift.coordinator.clusters import EmrProfile, LivyProfile
from lakeshift.coordinator.plan import plan_from_dict
from lakeshift.coordinator.scheduler import Coordinator
from lakeshift.coordinator.store import StateStore
from tests.moto_server import moto_s3  # noqa: F401  (moto's server mode: a fake AWS)


def _plan(names: list[str]):
    return plan_from_dict(
        {
            "name": "remote",
            "defaults": {
                "load": "copy",
                "retry": {"max_attempts": 3, "backoff_s": 0},
            },
            "tables": [
                {"name": n, "source": f"/s/{n}", "target": f"/t/{n}", "keys": ["id"]} for n in names
            ],
        }
    )


# ---- EMR (moto) ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("step", "state", "code"),
    [
        ({"Id": "s-1", "Status": {"State": "PENDING"}}, "submitted", None),
        ({"Id": "s-1", "Status": {"State": "RUNNING"}}, "running", None),
        ({"Id": "s-1", "Status": {"State": "COMPLETED"}}, "succeeded", 0),
        (
            {
                "Id": "s-1",
                "Status": {
                    "State": "FAILED",
                    "FailureDetails": {
                        "Reason": "Unknown",
                        "Message": "Command exited with exit code 2",
                    },
                },
            },
            "failed",
            2,
        ),
        ({"Id": "s-1", "Status": {"State": "CANCELLED"}}, "failed", -15),
        ({"Id": "s-1", "Status": {"State": "FAILED"}}, "failed", 1),
    ],
)
def test_emr_step_status(step: dict, state: str, code: int | None) -> None:
    st = step_status(step)
    assert (st.state, st.exit_code, st.app_id) == (state, code, "s-1")


def test_emr_backend_against_moto(moto_s3, monkeypatch, tmp_path: Path) -> None:
    for key, value in moto_s3.env().items():
        monkeypatch.setenv(key, value)
    kw = moto_s3.boto_kwargs()
    boto3.client("s3", **kw).create_bucket(Bucket="code")
    emr = boto3.client("emr", **kw)
    cluster_id = emr.run_job_flow(
        Name="lakeshift-test",
        ReleaseLabel="emr-7.0.0",
        StepConcurrencyLevel=2,
        Instances={
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": True,
            "MasterInstanceType": "m5.xlarge",
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    profile = EmrProfile(
        backend="emr",
        cluster_id=cluster_id,
        region=moto_s3.region,
        endpoint_url=moto_s3.endpoint_url,
        code_uri="s3://code/lakeshift/",
        capacity=5,
        conf={"spark.executor.memory": "2g"},
    )
    ctx = RunContext(run_id="remote", state_dir=tmp_path)
    backend = EmrBackend("emr", profile, ctx)
    assert backend.capacity == 2  # capped by the cluster's step concurrency

    store = StateStore.open(tmp_path / "state.db")
    plan = _plan(["a", "b", "c"])
    coord = Coordinator(
        plan, {"emr": backend}, store, poll_interval=0, sleep=lambda s: None, max_ticks=3
    )
    summary = coord.run()
    steps = emr.list_steps(ClusterId=cluster_id)["Steps"]
    assert len(steps) == 2  # capacity respected
    assert summary.states == {"LOADING": 3}  # the third table's load waits for a slot
    assert sorted(j.status for j in store.jobs()) == ["running", "submitted"]
    jobs = {j.table_name: j for j in store.jobs()}
    for step in steps:
        token = step["Name"].rsplit(":", 1)[1]
        table = step["Name"].split(":")[1]
        assert jobs[table].token == token and jobs[table].app_id == step["Id"]
        args = step["Config"]["Args"]
        assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
        assert args[args.index("--py-files") + 1].startswith("s3://code/lakeshift/lakeshift-")
        assert "spark.executor.memory=2g" in args
        assert args[args.index("s3://code/lakeshift/jobs/bulk_copy.py") + 1] == f"/s/{table}"
        assert backend.lookup(token) == step["Id"]
    keys = [o["Key"] for o in boto3.client("s3", **kw).list_objects_v2(Bucket="code")["Contents"]]
    assert "lakeshift/jobs/bulk_copy.py" in keys
    assert any(k.startswith("lakeshift/lakeshift-") and k.endswith(".zip") for k in keys)

    # a restarted coordinator reconciles with the steps instead of adding them again
    coord2 = Coordinator(
        plan,
        {"emr": EmrBackend("emr", profile, ctx)},
        store,
        poll_interval=0,
        sleep=lambda s: None,
        max_ticks=2,
    )
    coord2.run()
    assert len(emr.list_steps(ClusterId=cluster_id)["Steps"]) == 2
    store.close()


# ---- Livy (an HTTP double of Livy's batch API) ---------------------------------------------
class LivyDouble(BaseHTTPRequestHandler):
    """Batches go starting -> running -> success, or -> dead when their args contain FAIL_ONCE
    and they are the first batch for that table."""

    batches: dict[int, dict] = {}
    seen_tables: set[str] = set()
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def _send(self, code: int, body: object) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            bid = len(self.batches)
            table = body["args"][0]
            fail = "FAIL_ONCE" in json.dumps(body["args"]) and table not in self.seen_tables
            self.seen_tables.add(table)
            self.batches[bid] = {
                "id": bid,
                "name": body["name"],
                "state": "starting",
                "body": body,
                "fail": fail,
                "polls": 0,
            }
        self._send(201, {"id": bid, "name": body["name"], "state": "starting"})

    def do_GET(self) -> None:
        path = self.path.split("?")[0].strip("/").split("/")
        with self.lock:
            if path == ["batches"]:
                sessions = [
                    {k: b[k] for k in ("id", "name", "state")} for b in self.batches.values()
                ]
                self._send(200, {"from": 0, "total": len(sessions), "sessions": sessions})
                return
            b = self.batches.get(int(path[1]))
            if b is None:
                self._send(404, {"msg": "not found"})
                return
            if len(path) == 3:
                self._send(200, {"log": ["java.net.ConnectException: Connection refused"]})
                return
            b["polls"] += 1
            if b["state"] == "starting":
                b["state"] = "running"
            elif b["state"] == "running" and b["polls"] >= 3:
                b["state"] = "dead" if b["fail"] else "success"
            self._send(200, {k: b[k] for k in ("id", "name", "state")})

    def do_DELETE(self) -> None:
        with self.lock:
            b = self.batches[int(self.path.strip("/").split("/")[1])]
            b["state"] = "killed"
        self._send(200, {"msg": "deleted"})


@pytest.fixture
def livy_server():
    LivyDouble.batches = {}
    LivyDouble.seen_tables = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), LivyDouble)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_livy_backend_against_http_double(livy_server: str, tmp_path: Path) -> None:
    code_dir = tmp_path / "code"
    profile = LivyProfile(
        backend="livy",
        url=livy_server,
        code_uri=str(code_dir),
        capacity=2,
        conf={"spark.executor.memory": "1g"},
    )
    ctx = RunContext(run_id="remote", state_dir=tmp_path)
    plan = plan_from_dict(
        {
            "name": "remote",
            "defaults": {
                "load": {
                    "kind": "script",
                    "file": "jobs/bulk_copy.py",
                    "args": ["{table}", "{flag}"],
                },
                "validation": "none",
                "auto_approve": True,
                "retry": {"max_attempts": 3, "backoff_s": 0},
            },
            "tables": [
                {"name": n, "options": {"flag": "FAIL_ONCE" if n == "c" else "-"}}
                for n in ("a", "b", "c")
            ],
        }
    )
    store = StateStore.open(tmp_path / "state.db")
    coord = Coordinator(
        plan, {"livy": LivyBackend("livy", profile, ctx)}, store, poll_interval=0.01
    )
    summary = coord.run()
    assert summary.states == {"DONE": 3}
    batches = LivyDouble.batches
    assert len(batches) == 4  # c ran twice: its first batch died with a transient error
    c_jobs = store.jobs(table="c")
    assert [j.status for j in c_jobs] == ["failed", "succeeded"]
    assert "Connection refused" in (c_jobs[0].error or "")
    body = batches[0]["body"]
    assert Path(body["file"]).read_bytes() == (ctx.project_root / "jobs/bulk_copy.py").read_bytes()
    assert Path(body["pyFiles"][0]).is_file() and body["pyFiles"][0].endswith(".zip")
    assert body["conf"] == {"spark.executor.memory": "1g"}
    backend = LivyBackend("livy", profile, ctx)
    assert backend.lookup(c_jobs[1].token) == c_jobs[1].app_id
    assert backend.lookup("nope") is None
    store.close()


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("starting", "submitted"),
        ("running", "running"),
        ("success", "succeeded"),
        ("dead", "failed"),
        ("killed", "failed"),
    ],
)
def test_livy_batch_status(state: str, expected: str) -> None:
    assert batch_status({"id": 1, "state": state}).state == expected
