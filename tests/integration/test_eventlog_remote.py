"""Event logs read straight from HDFS (Hadoop's mini cluster) and S3 (SeaweedFS).

A REAL Spark application (tests/integration/test_eventlog_real.py's job: zstd rolling log,
one injected task failure, seven output rows) writes its event log locally; the folder is
uploaded with independent clients (hdfs-native, boto3) and ``read_event_log`` of the remote
copy must equal the local one's metrics, and hold the job's known facts. A ~24 MB plain log is
folded from each store with a few MB of Python memory (streamed, never read whole).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
import uuid
from pathlib import Path

import pytest

from lakeshift.errors import UsageError
from lakeshift.ops.eventlog import JobMetrics, read_event_log
from tests.hadoop_cluster import HadoopCluster, hadoop_cluster  # noqa: F401
from tests.integration.test_eventlog_real import JOB
from tests.s3_server import S3Server, s3_env, s3_server  # noqa: F401

pytestmark = pytest.mark.slow

TASKS = 25_000


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rolling, zstd-compressed event log folder of one real local Spark application."""
    tmp = tmp_path_factory.mktemp("eventlog")
    logs, out = tmp / "logs", tmp / "out"
    logs.mkdir()
    script = tmp / "job.py"
    script.write_text(JOB, encoding="utf-8")
    subprocess.run(
        [sys.executable, str(script), logs.as_uri(), str(out), "true"],
        check=True,
        timeout=240,
        capture_output=True,
    )
    (log,) = list(logs.iterdir())
    assert log.is_dir() and {p.suffix for p in log.glob("events_*")} == {".zstd"}
    return log


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain single-file log of ``TASKS`` task ends (1 s each), over 20 MB."""
    log = tmp_path_factory.mktemp("big") / "local-1700000000000"
    task = json.dumps(
        {
            "Event": "SparkListenerTaskEnd",
            "Task Info": {"Failed": False},
            "Task Metrics": {"Executor Run Time": 1000},
            "pad": "x" * 900,
        }
    )
    with log.open("w", encoding="utf-8") as f:
        f.write('{"Event":"SparkListenerApplicationStart","Timestamp":1000}\n')
        for _ in range(TASKS):
            f.write(task + "\n")
        f.write('{"Event":"SparkListenerApplicationEnd","Timestamp":61000}\n')
    assert log.stat().st_size > 20 * 2**20
    return log


def _check_real(remote: JobMetrics, local: JobMetrics) -> None:
    assert remote == local
    assert remote.output_records == 7 and remote.failed_tasks == 1  # what the job does
    assert remote.requested_executors == 8 and remote.wall_seconds > 0


def _streamed(uri: str) -> tuple[JobMetrics, int]:
    tracemalloc.start()
    try:
        m = read_event_log(uri)
        return m, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_event_logs_on_hdfs(
    hadoop_cluster: HadoopCluster,
    real_log: Path,
    big_log: Path,
) -> None:
    hdfs = hadoop_cluster.client()
    base = f"/spark-logs-{uuid.uuid4().hex[:8]}"
    folder = f"{base}/{real_log.name}"
    hdfs.mkdirs(folder, create_parent=True)
    for p in sorted(real_log.iterdir()):
        with hdfs.create(f"{folder}/{p.name}") as w:
            w.write(p.read_bytes())
    with hdfs.create(f"{base}/{big_log.name}") as w, big_log.open("rb") as r:
        while chunk := r.read(4 << 20):
            w.write(chunk)
    assert sorted(s.path.rsplit("/", 1)[1] for s in hdfs.list_status(folder)) == sorted(
        p.name for p in real_log.iterdir()
    )

    _check_real(read_event_log(f"{hadoop_cluster.fs}{folder}"), read_event_log(real_log))
    m, peak = _streamed(f"{hadoop_cluster.fs}{base}/{big_log.name}")
    assert (m.tasks, m.task_seconds, m.wall_seconds) == (TASKS, float(TASKS), 60.0)
    assert peak < 4 * 2**20, peak
    print(f"hdfs: {big_log.stat().st_size} B log folded with a {peak} B Python peak")
    with pytest.raises(UsageError, match="no such event log"):
        read_event_log(f"{hadoop_cluster.fs}{base}/missing")


def test_event_logs_on_s3(s3_env: S3Server, real_log: Path, big_log: Path) -> None:
    bucket = s3_env.bucket(f"logs-{uuid.uuid4().hex[:8]}")
    c = s3_env.client()
    for p in sorted(real_log.iterdir()):
        c.upload_file(str(p), bucket, f"spark-logs/{real_log.name}/{p.name}")
    c.upload_file(str(big_log), bucket, f"spark-logs/{big_log.name}")

    local = read_event_log(real_log)
    for scheme in ("s3a", "s3"):
        _check_real(read_event_log(f"{scheme}://{bucket}/spark-logs/{real_log.name}"), local)
    m, peak = _streamed(f"s3a://{bucket}/spark-logs/{big_log.name}")
    assert (m.tasks, m.task_seconds, m.wall_seconds) == (TASKS, float(TASKS), 60.0)
    assert peak < 4 * 2**20, peak
    print(f"s3: {big_log.stat().st_size} B log folded with a {peak} B Python peak")
    with pytest.raises(UsageError, match="no such event log"):
        read_event_log(f"s3a://{bucket}/spark-logs/missing")
