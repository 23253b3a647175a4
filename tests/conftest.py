"""Shared fixtures: the sample project in a temp dir, real servers, a CLI runner."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sampleproject import copy_sample
from sqlalchemy.engine import make_url

from incident.testing import PrometheusServer, missing_binary

IN_CI = os.environ.get("CI") == "true"


def require(binary: str) -> None:
    """Skip when a real component is missing on a developer's machine; fail in CI."""
    why = missing_binary(binary)
    if why is None:
        return
    if IN_CI:
        pytest.fail(f"{why}; in CI every component must be present")
    pytest.skip(why)


@pytest.fixture
def runner() -> CliRunner:
    """click's test runner (stderr kept apart from stdout)."""
    return CliRunner()


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample project with no data yet; env vars it needs are unset."""
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    monkeypatch.delenv("INCIDENT_PROJECT", raising=False)
    return copy_sample(tmp_path / "shop")


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[object]:
    """Start real Prometheus servers with backfilled history; all are stopped at teardown."""
    require("prometheus")
    require("promtool")
    servers: list[PrometheusServer] = []

    def start(history: Path | None = None) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prom{len(servers)}", history)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


# ---------------------------------------------------------------- PostgreSQL
# One throwaway server per session, shared by the store suite and the runner tests: initdb +
# pg_ctl as the `postgres` user when we run as root (see recipes.md); a fresh database per test.

PG_BINDIRS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bindir() -> Path | None:
    if os.environ.get("PG_BINDIR"):  # an explicit choice, not a hint: no fallback
        candidates = [Path(os.environ["PG_BINDIR"])]
    else:
        candidates = sorted(
            (p for pattern in PG_BINDIRS for p in Path("/").glob(pattern.lstrip("/"))),
            key=lambda p: p.as_posix(),
            reverse=True,
        )
        initdb = shutil.which("initdb")
        if initdb:
            candidates.append(Path(initdb).parent)
    return next(
        (c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()), None
    )


class PostgresServer:
    """A PostgreSQL server of our own on a free loopback port, in a temp directory."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        # initdb refuses to run as root; pytest's tmp_path is not traversable by another user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.base = Path(tempfile.mkdtemp(prefix="incident-pg-"))
        if self._as:
            shutil.chown(self.base, "postgres")
        self.data, self.port = self.base / "data", free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run([*self._as, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
                       check=check, capture_output=True, timeout=120)

    def init(self) -> None:
        """initdb: an empty cluster with trust authentication."""
        subprocess.run([*self._as, str(self.bindir / "initdb"), "-D", str(self.data),
                        "-U", "postgres", "--auth=trust", "--no-sync", "--encoding=UTF8",
                        "--locale=C.UTF-8"], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._ctl("-l", str(self.base / "log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base} -c fsync=off",
                  "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate` is a crash: no shutdown checkpoint)."""
        self._ctl("-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "fast") -> None:
        """Stop and start again on the same port: every open connection is cut."""
        self.stop(mode)
        self.start()

    def new_database(self) -> str:
        """The URL of a new, empty database on this server."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def remove(self) -> None:
        """Stop the server at once and delete its files."""
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server; skipped without the binaries, a failure in CI."""
    bindir = _pg_bindir()
    if bindir is None:
        message = "PostgreSQL binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        if IN_CI:
            pytest.fail(message)  # CI installs it: a missing server there is a broken build
        pytest.skip(message)
    server = PostgresServer(bindir)
    try:
        server.init()
        server.start()
    except subprocess.CalledProcessError as e:
        server.remove()
        pytest.fail(f"could not start PostgreSQL: {e.stderr.decode(errors='replace')}")
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def postgres_server(postgres: PostgresServer) -> str:
    """The URL of the session's PostgreSQL server (its `postgres` database)."""
    return postgres.url
