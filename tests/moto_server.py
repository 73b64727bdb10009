"""A real S3 (and EMR, …) API server for tests: moto's server mode on a free loopback port.

The server runs as a subprocess (``moto_server`` from the ``moto[server]`` dev dependency) for the
whole test session and is stopped at the end. It accepts any credentials; the fixture hands out
fixed fake ones. When moto's server is not installed the fixture skips with the reason.

Use in a test module::

    from tests.moto_server import moto_s3  # noqa: F401

    def test_x(moto_s3, monkeypatch):
        for key, value in moto_s3.env().items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", **moto_s3.boto_kwargs()).create_bucket(Bucket="b")
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class MotoServer:
    """Connection facts of a running moto server.

    Attributes:
        endpoint_url: ``http://127.0.0.1:<port>``.
        access_key: fake access key id.
        secret_key: fake secret key.
        region: region name.
    """

    endpoint_url: str
    access_key: str = "testing"
    secret_key: str = "testing"  # a fake credential moto accepts
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        """Environment variables that point the AWS chain (boto3, pyarrow) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def boto_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(...)``."""
        return {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _moto_binary() -> str | None:
    beside = Path(sys.executable).parent / "moto_server"
    if beside.exists():
        return str(beside)
    return shutil.which("moto_server")


@contextlib.contextmanager
def run_moto(timeout_s: float = 30.0) -> Iterator[MotoServer]:
    """Start moto's server on a free loopback port, yield it, stop it."""
    binary = _moto_binary()
    if binary is None:
        raise FileNotFoundError("moto_server not found; install the dev extra moto[server]")
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    server = MotoServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with code {proc.returncode}")
            try:
                with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server not answering on port {port}") from None
                time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoServer]:
    """A moto server for the session (skips when moto's server mode is not installed)."""
    if _moto_binary() is None:
        pytest.skip("moto_server not installed (dev extra moto[server])")
    with run_moto() as server:
        yield server
