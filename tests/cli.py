"""Run the real ``lakeshift`` command in a child process, as a user would.

In-process calls of :func:`lakeshift.cli.main` reuse the test session's Spark (whatever
``--metastore``, ``--master`` or jars the command line asks for); tests of those options, of
exit codes seen by a shell and of several commands sharing a metastore use this instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lakeshift(
    *args: str,
    env: Mapping[str, str] | None = None,
    expect: int | None = 0,
    timeout: float = 900,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m lakeshift.cli ARGS`` with this venv; assert the exit code (``None``: any)."""
    full_env = {**os.environ, "PYSPARK_PYTHON": sys.executable, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "lakeshift.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=str(cwd or REPO),
        check=False,
    )
    if expect is not None and proc.returncode != expect:
        raise AssertionError(
            f"lakeshift {' '.join(args)}: exit {proc.returncode}, expected {expect}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
        )
    return proc


def python(
    script: str | Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """Run a Python script with this venv; fail with its output when it exits non-zero."""
    full_env = {**os.environ, "PYSPARK_PYTHON": sys.executable, **(env or {})}
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=str(REPO),
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{script} {' '.join(args)}: exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}"
            f"\nstderr:\n{proc.stderr[-5000:]}"
        )
    return proc


def spark_submit(
    script: str | Path,
    *args: str,
    conf: Mapping[str, str],
    env: Mapping[str, str] | None = None,
    timeout: float = 900,
) -> subprocess.CompletedProcess[str]:
    """``spark-submit --conf K=V … SCRIPT ARGS`` with the pyspark install's spark-submit."""
    import pyspark

    exe = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    cmd = [str(exe)]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    full_env = {**os.environ, "PYSPARK_PYTHON": sys.executable, **(env or {})}
    full_env.pop("PYSPARK_GATEWAY_PORT", None)
    proc = subprocess.run(
        [*cmd, str(script), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=str(REPO),
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"spark-submit {script}: exit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}"
            f"\nstderr:\n{proc.stderr[-5000:]}"
        )
    return proc


def reader_output(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """The JSON line ``tests/integration/jobs/table_reader.py`` printed."""
    import json

    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("READER "))
    return dict(json.loads(line.removeprefix("READER ")))
