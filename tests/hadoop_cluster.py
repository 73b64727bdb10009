"""Hadoop's own mini cluster for tests and benchmarks: HDFS and YARN on loopback.

``scripts/hadoop.sh`` resolves ``hadoop-client-minicluster`` 3.5.0 (the Hadoop line pyspark 4.2
ships) with Maven, compiles a small launcher once per machine (``scripts/hadoop/MiniCluster.java``)
and starts a NameNode, one DataNode, a ResourceManager and one NodeManager in a temporary folder.
``conf_dir`` is a client configuration (``HADOOP_CONF_DIR``) for ``spark-submit --master yarn``.

Use in a test module::

    from tests.hadoop_cluster import hadoop_cluster  # noqa: F401

    def test_x(hadoop_cluster):
        hadoop_cluster.fs          # "hdfs://127.0.0.1:PORT"
        hadoop_cluster.client()    # an hdfs_native.Client
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import serve_or_skip

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "hadoop.sh"


@dataclass(frozen=True)
class HadoopCluster:
    """A running mini cluster.

    Attributes:
        fs: the HDFS URI, ``hdfs://127.0.0.1:PORT``.
        webhdfs: the NameNode's HTTP address (WebHDFS).
        conf_dir: a client configuration folder (``HADOOP_CONF_DIR``).
        yarn: the ResourceManager's RPC address (``None`` without YARN).
        yarn_web: the ResourceManager's web/REST address.
        root: the cluster's folder (logs in ``cluster.log``; YARN container logs in
            ``yarn/logs``).
    """

    fs: str
    webhdfs: str
    conf_dir: str
    yarn: str | None
    yarn_web: str | None
    root: str

    def client(self) -> Any:
        """An ``hdfs_native.Client`` for this cluster."""
        from hdfs_native import Client

        return Client(self.fs)

    def env(self) -> dict[str, str]:
        """``HADOOP_CONF_DIR`` pointing at the client configuration."""
        return {"HADOOP_CONF_DIR": self.conf_dir}


def _tools_present() -> bool:
    return all(shutil.which(t) for t in ("java", "javac", "mvn"))


@contextlib.contextmanager
def start_hadoop(yarn: bool = True) -> Iterator[HadoopCluster]:
    """Start the mini cluster (HDFS, and YARN unless ``yarn=False``); stop it at the end."""
    if not _tools_present():
        raise FileNotFoundError("java, javac and mvn are needed for Hadoop's mini cluster")
    root = Path(tempfile.mkdtemp(prefix="lakeshift-hadoop-"))
    cmd = ["bash", str(SCRIPT), "start", str(root), *(["--yarn"] if yarn else [])]
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"mini cluster did not start: {out.stderr[-3000:]}")
        info = json.loads((root / "ready").read_text())
        yield HadoopCluster(
            fs=info["fs"],
            webhdfs=info["webhdfs"],
            conf_dir=info["conf_dir"],
            yarn=info.get("yarn"),
            yarn_web=info.get("yarn_web"),
            root=str(root),
        )
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(root)], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def hadoop_cluster() -> Iterator[HadoopCluster]:
    """HDFS + YARN for the whole test session (one NameNode, DataNode, RM and NodeManager)."""
    yield from serve_or_skip(start_hadoop)
