"""A Hive metastore service (thrift) for tests: the metastore server that pyspark ships.

pyspark's jars include Hive's metastore (2.3.10) and Derby, so ``HiveMetaStore`` runs as a
stand-alone service with an embedded Derby database in a temporary folder. Many Spark jobs may
use it at once (an embedded Derby metastore serves one JVM at a time), as on a real cluster.

Use in a test module::

    from tests.metastore import metastore_service  # noqa: F401

    def test_x(metastore_service):
        metastore_service.uri   # "thrift://127.0.0.1:PORT"
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import _wait_port, free_port, serve_or_skip, stop_server

SITE = """<?xml version="1.0"?>
<configuration>
  <property><name>javax.jdo.option.ConnectionURL</name>
    <value>jdbc:derby:;databaseName={db};create=true</value></property>
  <property><name>hive.metastore.warehouse.dir</name><value>{warehouse}</value></property>
  <property><name>datanucleus.schema.autoCreateAll</name><value>true</value></property>
  <property><name>hive.metastore.schema.verification</name><value>false</value></property>
  <property><name>hive.async.log.enabled</name><value>false</value></property>
</configuration>
"""


@dataclass(frozen=True)
class MetastoreService:
    """A running metastore service.

    Attributes:
        uri: ``thrift://127.0.0.1:PORT``.
        root: its folder (Derby database, warehouse, log).
    """

    uri: str
    root: str


@contextlib.contextmanager
def start_metastore() -> Iterator[MetastoreService]:
    """Start ``org.apache.hadoop.hive.metastore.HiveMetaStore`` on a free loopback port."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    if shutil.which("java") is None or not any(jars.glob("hive-metastore-*.jar")):
        raise FileNotFoundError("java or pyspark's hive-metastore jar not found")
    root = Path(tempfile.mkdtemp(prefix="lakeshift-hms-"))
    (root / "hive-site.xml").write_text(
        SITE.format(db=root / "metastore_db", warehouse=root / "warehouse")
    )
    port = free_port()
    log = root / "metastore.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "java",
                "-Xmx384m",
                "-XX:+UseSerialGC",
                f"-Dderby.system.home={root}",
                "-Dhive.metastore.host=127.0.0.1",
                "-cp",
                f"{root}{os.pathsep}{jars}/*",
                "org.apache.hadoop.hive.metastore.HiveMetaStore",
                "-p",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
            start_new_session=True,
        )
    try:
        _wait_port(port, proc, 180, log)
        yield MetastoreService(f"thrift://127.0.0.1:{port}", str(root))
    finally:
        stop_server(proc, root)


@pytest.fixture(scope="session")
def metastore_service() -> Iterator[MetastoreService]:
    """A Hive metastore service for the test session."""
    yield from serve_or_skip(start_metastore)
