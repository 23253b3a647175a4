"""Shared fixtures: the sample project in a temp dir, real servers, a CLI runner."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident.testing import PrometheusServer, missing_binary

REPO = Path(__file__).resolve().parent.parent
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


def copy_sample(dest: Path) -> Path:
    """The repository's sample project (config, checks, runbooks) copied under `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "incident.yaml", dest / "incident.yaml")
    for part in ("checks", "runbooks"):
        shutil.copytree(REPO / part, dest / part)
    return dest


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
