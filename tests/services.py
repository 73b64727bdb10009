"""Real database servers for tests and benchmarks: PostgreSQL and MariaDB from Debian packages.

Each server runs in its own temporary folder on a free loopback port and is stopped at the end.
The binaries are installed by ``scripts/services.sh``; when they are missing the fixtures skip
with the reason. As root, the servers run as the unprivileged ``postgres`` / ``mysql`` users
created by the Debian packages (PostgreSQL refuses to run as root).

Use in a test module::

    from tests.services import postgres_server  # noqa: F401

    def test_x(postgres_server): ...
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


@dataclass(frozen=True)
class DbServer:
    """Connection facts of a running test server."""

    kind: str  # "postgresql" or "mariadb"
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def jdbc_url(self) -> str:
        """A JDBC URL without credentials.

        MariaDB gets a ``jdbc:mysql:`` URL with ``permitMysqlScheme`` so that Spark picks its
        MySQL dialect (backtick quoting) while the MariaDB driver serves the connection; Spark has
        no dialect for ``jdbc:mariadb:`` and would quote identifiers with double quotes.
        """
        if self.kind == "mariadb":
            return f"jdbc:mysql://{self.host}:{self.port}/{self.database}?permitMysqlScheme"
        return f"jdbc:{self.kind}://{self.host}:{self.port}/{self.database}"

    def connect_mariadb(self, **kwargs: Any) -> Any:
        """A pymysql connection to this (MariaDB) server; ``kwargs`` go to ``pymysql.connect``."""
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            **kwargs,
        )

    @property
    def dsn(self) -> str:
        """A libpq (PostgreSQL) or URL-style (MariaDB) connection string with credentials."""
        if self.kind == "postgresql":
            return (
                f"host={self.host} port={self.port} dbname={self.database} "
                f"user={self.user} password={self.password}"
            )
        return f"mysql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def url(self) -> str:
        """A URL with credentials (``postgresql://…`` or ``mysql://…``)."""
        scheme = "postgresql" if self.kind == "postgresql" else "mysql"
        return f"{scheme}://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise RuntimeError(
        f"server did not listen on {port} within {timeout}s: {log.read_text()[-2000:]}"
    )


def stop_server(proc: subprocess.Popen[bytes], root: Path) -> None:
    """Terminate a server process (kill after 30 s) and remove its folder."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(root, ignore_errors=True)


def serve_or_skip(start: Callable[[], contextlib.AbstractContextManager[T]]) -> Iterator[T]:
    """Body of a session fixture: start a server, skip when its binaries are missing, stop it.

    With ``LAKESHIFT_REQUIRE_SERVICES=1`` (CI) a missing binary fails the tests instead: a
    service that could not be installed must not turn the suite silently green.
    """
    try:
        cm = start()
        server = cm.__enter__()
    except FileNotFoundError as exc:
        if os.environ.get("LAKESHIFT_REQUIRE_SERVICES") == "1":  # CI: a missing server fails
            pytest.fail(f"{exc} (LAKESHIFT_REQUIRE_SERVICES=1)")
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        cm.__exit__(None, None, None)


def _run_as(user: str | None) -> dict[str, object]:
    if user is None:
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _service_user(name: str) -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        return None
    return name


def _own(path: Path, user: str | None) -> None:
    if user is not None:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def start_postgres() -> Iterator[DbServer]:
    """Start a private PostgreSQL server; yields its :class:`DbServer`."""
    bindir = _pg_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL server binaries not found (run scripts/services.sh)")
    user = _service_user("postgres")
    root = Path(tempfile.mkdtemp(prefix="lakeshift-pg-"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    _own(data, user)
    pwfile = root / "pw"
    password = "lakeshift-test-pw"
    pwfile.write_text(password)
    _own(pwfile, user)
    as_user = _run_as(user)
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "lakeshift",
            "--pwfile",
            str(pwfile),
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--locale",
            "C.UTF-8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        **as_user,  # type: ignore[arg-type]
    )
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                str(data),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            **as_user,  # type: ignore[arg-type]
        )
    try:
        _wait_port(port, proc, 60, log)
        env = {**os.environ, "PGPASSWORD": password}
        for _ in range(50):  # the port opens slightly before the server accepts logins
            ok = subprocess.run(
                [
                    str(bindir / "psql"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "lakeshift",
                    "-d",
                    "postgres",
                    "-qc",
                    "CREATE DATABASE lakeshift",
                ],
                env=env,
                capture_output=True,
                check=False,
            )
            if ok.returncode == 0 or b"already exists" in ok.stderr:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"cannot create database: {ok.stderr.decode()[-500:]}")
        yield DbServer("postgresql", "127.0.0.1", port, "lakeshift", password, "lakeshift")
    finally:
        stop_server(proc, root)


@contextlib.contextmanager
def start_mariadb() -> Iterator[DbServer]:
    """Start a private MariaDB server; yields its :class:`DbServer`."""
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    install = shutil.which("mariadb-install-db")
    client = shutil.which("mariadb")
    if not (Path(mariadbd).exists() and install and client):
        raise FileNotFoundError("MariaDB server binaries not found (run scripts/services.sh)")
    user = _service_user("mysql")
    root = Path(tempfile.mkdtemp(prefix="lakeshift-maria-"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    _own(data, user)
    sock = root / "mysqld.sock"
    _own(root, user)
    as_user = _run_as(user)
    subprocess.run(
        [
            install,
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--no-defaults",
            f"--user={user or pwd.getpwuid(os.getuid()).pw_name}",
        ],
        check=True,
        capture_output=True,
        **as_user,  # type: ignore[arg-type]
    )
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                mariadbd,
                "--no-defaults",
                f"--datadir={data}",
                f"--port={port}",
                "--bind-address=127.0.0.1",
                f"--socket={sock}",
                f"--pid-file={root / 'pid'}",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-doublewrite=0",
                "--skip-log-bin",
                "--max-connections=200",
                "--innodb-buffer-pool-size=256M",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_bin",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            **as_user,  # type: ignore[arg-type]
        )
    password = "lakeshift-test-pw"
    try:
        _wait_port(port, proc, 60, log)
        sql = (
            "CREATE DATABASE IF NOT EXISTS lakeshift CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
            f"CREATE USER IF NOT EXISTS 'lakeshift'@'%' IDENTIFIED BY '{password}';"
            f"CREATE USER IF NOT EXISTS 'lakeshift'@'localhost' IDENTIFIED BY '{password}';"
            "GRANT ALL ON *.* TO 'lakeshift'@'%';GRANT ALL ON *.* TO 'lakeshift'@'localhost';"
            "FLUSH PRIVILEGES;"
        )
        subprocess.run(
            [client, "--no-defaults", f"--socket={sock}", "-uroot", "-e", sql],
            check=True,
            capture_output=True,
        )
        yield DbServer("mariadb", "127.0.0.1", port, "lakeshift", password, "lakeshift")
    finally:
        stop_server(proc, root)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[DbServer]:
    """A real PostgreSQL server for the test session (skips when not installed)."""
    yield from serve_or_skip(start_postgres)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[DbServer]:
    """A real MariaDB server for the test session (skips when not installed)."""
    yield from serve_or_skip(start_mariadb)
