"""Real databases for the store suite: a SQLite file per test, or a fresh database on the
session's PostgreSQL server (the `postgres` fixture in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from incident.store import Store


@pytest.fixture
def unused_port() -> int:
    """A loopback port with no server behind it."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'incident.db'}"
    server = request.getfixturevalue("postgres")
    url: str = server.new_database()
    return url


@pytest.fixture
def store(store_url: str, tmp_path: Path) -> Iterator[Store]:
    """A connected Store on an empty database of each backend."""
    s = Store.connect(store_url, root=tmp_path)
    try:
        yield s
    finally:
        s.close()
