"""Opening a store: paths, schema creation and versions, and failures as clear StoreErrors."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from incident.errors import StoreError
from incident.store import SCHEMA_VERSION, Store, schema

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def test_relative_sqlite_path_is_under_the_project_root(tmp_path: Path) -> None:
    """The default URL creates .incident/incident.db under root, with its parent directory."""
    with Store.connect("sqlite:///.incident/incident.db", root=tmp_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.url == f"sqlite:///{tmp_path}/.incident/incident.db"
    assert (tmp_path / ".incident" / "incident.db").is_file()


def test_sqlite_store_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    """The SQLite file is in WAL mode, so readers and the writer do not block each other."""
    Store.connect("sqlite:///s.db", root=tmp_path).close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


def test_reconnecting_keeps_the_data(store_url: str, tmp_path: Path) -> None:
    """A second connect finds the schema and data the first one left."""
    with Store.connect(store_url, root=tmp_path) as store:
        store.record_source("prom", ok=False, at=T0)
    with Store.connect(store_url, root=tmp_path) as store:
        assert [h.source for h in store.source_health()] == ["prom"]
        assert store.schema_version == SCHEMA_VERSION


def _set_version(url: str, version: int) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(schema.meta).values(value=str(version)))
    finally:
        engine.dispose()


def test_a_newer_schema_is_refused_naming_both_versions(store_url: str, tmp_path: Path) -> None:
    """A database written by a newer incident is refused with both version numbers."""
    Store.connect(store_url, root=tmp_path).close()
    _set_version(store_url, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError) as info:
        Store.connect(store_url, root=tmp_path)
    message = str(info.value)
    assert f"database schema version {SCHEMA_VERSION + 1} is newer" in message
    assert f"this incident's schema version {SCHEMA_VERSION}" in message
    assert "\n" not in message


def test_an_older_schema_needs_an_explicit_upgrade(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older schema is refused unless upgrade=True, which runs the migrations in order."""
    Store.connect(store_url, root=tmp_path).close()
    _set_version(store_url, SCHEMA_VERSION - 1)
    with pytest.raises(StoreError, match=r"older .* run `incident db upgrade`"):
        Store.connect(store_url, root=tmp_path)
    ran: list[int] = []
    monkeypatch.setitem(schema.MIGRATIONS, SCHEMA_VERSION, lambda conn: ran.append(1))
    with Store.connect(store_url, root=tmp_path, upgrade=True) as store:
        assert store.schema_version == SCHEMA_VERSION
    assert ran == [1]
    Store.connect(store_url, root=tmp_path).close()  # upgraded: no longer refused


def test_foreign_tables_without_a_version_are_refused(tmp_path: Path) -> None:
    """A database holding our table names but no schema version is not silently adopted."""
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE incidents (id INTEGER PRIMARY KEY, what TEXT)")
    conn.close()
    with pytest.raises(StoreError, match="incident tables but no schema version"):
        Store.connect("sqlite:///other.db", root=tmp_path)


def test_unreachable_postgres_is_a_store_error_without_the_password(unused_port: int) -> None:
    """A server that refuses connections gives a one-line StoreError with the password hidden."""
    url = f"postgresql+psycopg://alice:s3cret-pw@127.0.0.1:{unused_port}/incidents"
    with pytest.raises(StoreError) as info:
        Store.connect(url, root=Path("/"))
    message = str(info.value)
    assert message.startswith(
        f"incident store {make_url(url).render_as_string(hide_password=True)}:"
        " cannot open the database:"
    )
    assert "alice:***@" in message and "s3cret-pw" not in message
    assert "refused" in message.lower() and "\n" not in message
    assert info.value.__cause__ is not None  # the driver's error stays available for -v


def test_a_sqlite_path_that_cannot_be_created_is_a_store_error(tmp_path: Path) -> None:
    """A store directory that cannot be created (a file is in the way) is a StoreError."""
    (tmp_path / "blocker").write_text("")
    with pytest.raises(StoreError, match="cannot create its directory"):
        Store.connect("sqlite:///blocker/incident.db", root=tmp_path)


def test_a_sqlite_path_that_is_a_directory_is_a_store_error(tmp_path: Path) -> None:
    """A database path that is a directory gives SQLite's reason in a StoreError."""
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open the database: unable to open database file"):
        Store.connect("sqlite:///dir.db", root=tmp_path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "not a database URL"),
        ("postgresql+nosuchdriver://u:pw@host/db", r"u:\*\*\*@host/db: unknown database or driver"),
    ],
)
def test_a_bad_url_is_a_store_error(tmp_path: Path, url: str, expected: str) -> None:
    """A malformed URL or an unknown driver is a StoreError that never shows the password."""
    with pytest.raises(StoreError, match=expected) as info:
        Store.connect(url, root=tmp_path)
    assert ":pw@" not in str(info.value)
