"""The job wrapper's claim/exit files and the spark-submit command lines per master."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lakeshift.coordinator.backends.base import RunContext, Submission
from lakeshift.coordinator.backends.spark_submit import SparkSubmitBackend, log_tail
from lakeshift.coordinator.clusters import SparkSubmitProfile
from lakeshift.coordinator.wrapper import ALREADY_CLAIMED


def _wrap(folder: Path, token: str, code: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "lakeshift.coordinator.wrapper",
            "--dir",
            str(folder),
            "--token",
            token,
            "--",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_wrapper_records_exit_and_refuses_a_second_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    code = f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(3)"
    first = _wrap(tmp_path, "tok1", code)
    assert first.returncode == 0
    assert json.loads((tmp_path / "tok1.exit").read_text())["code"] == 3
    assert json.loads((tmp_path / "tok1.pid").read_text())["pid"] > 0
    second = _wrap(tmp_path, "tok1", code)
    assert second.returncode == ALREADY_CLAIMED
    assert marker.read_text() == "x"  # the command ran once


def _sub() -> Submission:
    return Submission("tok", "orders", "copy", 0, 1, "jobs/bulk_copy.py", ["/s", "/t"])


@pytest.mark.parametrize(
    ("profile", "expect", "absent"),
    [
        (
            {"master": "spark://127.0.0.1:7077", "conf": {"spark.cores.max": "1"}},
            [
                "--master",
                "spark://127.0.0.1:7077",
                "--deploy-mode",
                "client",
                "--py-files",
                "--conf",
                "spark.cores.max=1",
            ],
            [],
        ),
        (
            {"master": "yarn", "submit_args": ["--queue", "etl"]},
            ["--deploy-mode", "cluster", "--py-files", "--queue", "etl"],
            ["--jars"],
        ),
        (
            {"master": "k8s://https://k:6443", "image": "lakeshift:1"},
            [
                "--deploy-mode",
                "cluster",
                "spark.kubernetes.container.image=lakeshift:1",
                "local:///opt/lakeshift/jobs/bulk_copy.py",
            ],
            ["--py-files", "--jars"],
        ),
    ],
)
def test_command_lines(tmp_path: Path, profile: dict, expect: list[str], absent: list[str]) -> None:
    backend = SparkSubmitBackend(
        "c",
        SparkSubmitProfile(backend="spark-submit", **profile),
        RunContext(run_id="r", state_dir=tmp_path),
    )
    cmd = backend.command(_sub())
    assert cmd[0].endswith("bin/spark-submit")
    for item in expect:
        assert item in cmd
    for item in absent:
        assert item not in cmd
    assert cmd[-2:] == ["/s", "/t"]
    assert "lakeshift:orders:copy:tok" in cmd


def test_code_zip_built_once_and_importable(tmp_path: Path) -> None:
    import zipfile

    ctx = RunContext(run_id="r", state_dir=tmp_path)
    z = ctx.code_zip()
    assert ctx.code_zip() == z
    names = zipfile.ZipFile(z).namelist()
    assert "lakeshift/coordinator/scheduler.py" in names
    assert "lakeshift/__init__.py" in names


def test_log_tail_headline_is_last_error_line(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(
        "WARNING: noise\nERROR first problem\nmore\nCaused by: Connection refused\nbye\n"
    )
    text = log_tail(log)
    assert text.splitlines()[0] == "Caused by: Connection refused"
    assert text.splitlines()[-1] == "bye"
