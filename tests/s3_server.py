"""A real S3 server for tests and benchmarks: SeaweedFS (``weed mini``, Apache-2.0).

``scripts/services.sh install`` builds ``weed`` from its Go module once per machine (into
``$GOPATH/bin``, default ``~/go/bin``). :func:`start_seaweedfs` runs it in a temporary folder
with every port a free loopback one and telemetry off (it is on by default and would call out);
the credentials given in its environment become its admin identity. The ``s3_server`` fixture
serves one instance per test session.

Use in a test module::

    from tests.s3_server import s3_server  # noqa: F401

    def test_x(s3_server, monkeypatch):
        for key, value in s3_server.env().items():
            monkeypatch.setenv(key, value)
        s3_server.client().create_bucket(Bucket="b")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.services import free_port, serve_or_skip, stop_server

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class S3Server:
    """Connection facts of a running S3 server (same shape as the moto fixture's).

    Attributes:
        endpoint_url: ``http://127.0.0.1:<port>``.
        access_key: the admin access key the server was started with.
        secret_key: its secret (a throw-away test credential).
        region: region name clients sign for.
        root: the server's data folder.
    """

    endpoint_url: str
    access_key: str = "lakeshift-test"
    secret_key: str = "lakeshift-test-secret"  # a throw-away credential of the test server
    region: str = "us-east-1"
    root: str = ""

    def env(self) -> dict[str, str]:
        """Environment variables that point the AWS chain (boto3, pyarrow, S3A) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def boto_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.session.Session().client(...)``."""
        return {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
        }

    def client(self) -> Any:
        """A boto3 S3 client (path-style addressing)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", config=Config(s3={"addressing_style": "path"}), **self.boto_kwargs()
        )

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` if missing; returns the name."""
        c = self.client()
        with contextlib.suppress(c.exceptions.BucketAlreadyOwnedByYou):
            c.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` (paginated listing)."""
        out: list[str] = []
        for page in (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        ):
            out += [o["Key"] for o in page.get("Contents", [])]
        return out


def weed_binary() -> Path | None:
    """``weed`` from ``.services/bin``, ``$GOPATH/bin`` (default ``~/go/bin``) or ``PATH``."""
    candidates = [
        REPO / ".services" / "bin" / "weed",
        Path(os.environ.get("GOPATH", str(Path.home() / "go"))) / "bin" / "weed",
    ]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


@contextlib.contextmanager
def start_seaweedfs(timeout_s: float = 90.0) -> Iterator[S3Server]:
    """Start ``weed mini`` on free loopback ports in a temporary folder; yield its S3 endpoint."""
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("SeaweedFS binary `weed` not found (run scripts/services.sh)")
    root = Path(tempfile.mkdtemp(prefix="lakeshift-s3-"))
    server = S3Server(f"http://127.0.0.1:{free_port()}", root=str(root))
    port = int(server.endpoint_url.rsplit(":", 1)[1])
    ports = {
        flag: free_port()
        for flag in (
            "s3.port.grpc",
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "webdav.port",
            "admin.port",
            "admin.port.grpc",
        )
    }
    cmd = [
        str(binary),
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        f"-s3.port={port}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{flag}={value}" for flag, value in ports.items()),
    ]
    (root / "data").mkdir()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": server.access_key}
    env["AWS_SECRET_ACCESS_KEY"] = server.secret_key
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:  # S3 answers 403 to an anonymous listing once it is up
            if proc.poll() is not None:
                raise RuntimeError(f"weed exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(server.endpoint_url, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"SeaweedFS S3 not answering on {port}: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.3)
        yield server
    finally:
        stop_server(proc, root)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS) for the test session."""
    yield from serve_or_skip(start_seaweedfs)


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``s3_server`` with its endpoint and credentials in this test's environment."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server
