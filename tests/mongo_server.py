"""A MongoDB wire-protocol server for tests: FerretDB v1 with its embedded SQLite backend.

``scripts/services.sh install`` builds FerretDB (a Go module) into ``.services/bin/``. The
fixture starts it on a free loopback port with the SQLite backend in a temporary folder, with
telemetry and the debug listener off, and skips with the reason when the binary is missing.

Use in a test module::

    from tests.mongo_server import ferretdb_server  # noqa: F401

    def test_x(ferretdb_server): ...  # ferretdb_server.uri == "mongodb://127.0.0.1:PORT/"
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

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class MongoServer:
    """A running MongoDB-compatible server."""

    host: str
    port: int
    kind: str = "ferretdb"

    @property
    def uri(self) -> str:
        """``mongodb://host:port/`` (no credentials: FerretDB's SQLite backend has none)."""
        return f"mongodb://{self.host}:{self.port}/"


def ferretdb_binary() -> Path | None:
    """The FerretDB binary from ``.services/bin``, ``$GOPATH/bin`` / ``~/go/bin`` or ``PATH``."""
    candidates = [
        REPO / ".services" / "bin" / "ferretdb",
        Path(os.environ.get("GOPATH", str(Path.home() / "go"))) / "bin" / "ferretdb",
    ]
    found = shutil.which("ferretdb")
    if found:
        candidates.append(Path(found))
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


@contextlib.contextmanager
def start_ferretdb() -> Iterator[MongoServer]:
    """Start FerretDB (SQLite backend) in a temporary folder; yields its :class:`MongoServer`."""
    binary = ferretdb_binary()
    if binary is None:
        raise FileNotFoundError("FerretDB binary not found (run scripts/services.sh install)")
    root = Path(tempfile.mkdtemp(prefix="lakeshift-ferret-"))
    (root / "data").mkdir()
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(binary),
                "--handler=sqlite",
                f"--sqlite-url=file:{root / 'data'}/",
                f"--listen-addr=127.0.0.1:{port}",
                f"--state-dir={root}",
                "--telemetry=disable",
                "--debug-addr=-",
                "--log-level=ERROR",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_port(port, proc, 60, log)
        yield MongoServer("127.0.0.1", port)
    finally:
        stop_server(proc, root)


@pytest.fixture(scope="session")
def ferretdb_server() -> Iterator[MongoServer]:
    """A real FerretDB server for the test session (skips when the binary is missing)."""
    yield from serve_or_skip(start_ferretdb)
