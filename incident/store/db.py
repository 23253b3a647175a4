"""Engines and transactions: URL resolution, SQLite settings, and errors turned into StoreError.

Every public Store method runs through `Database.run`, so every one is a single transaction
and no raw SQLAlchemy exception escapes the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from incident.errors import StoreError

T = TypeVar("T")

# Long enough for 20 cron processes queueing on one SQLite file; short enough to notice a
# process that holds the lock forever.
BUSY_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10
# Lost races (unique active_key, PostgreSQL serialisation failures) are retried this often.
RETRIES = 5
# PostgreSQL SQLSTATEs for which a retry of the whole transaction is the documented remedy.
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


class Conflict(Exception):
    """Raised inside a transaction that lost a race; `Database.run` retries it from scratch."""


def resolve_url(url: str, root: Path) -> URL:
    """The parsed URL, a relative SQLite path made relative to the project root."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as e:
        # Do not echo the URL: unparseable, we cannot tell where its password is.
        raise StoreError(
            "the store setting is not a database URL (expected e.g."
            " sqlite:///.incident/incident.db or postgresql+psycopg://user@host/dbname)"
        ) from e
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not parsed.database.startswith("file:") and not path.is_absolute():
            parsed = parsed.set(database=str(root / path))
    return parsed


def safe(url: URL) -> str:
    """The URL as it may be printed: password hidden."""
    return url.render_as_string(hide_password=True)


def create_engine(url: URL) -> Engine:
    """An engine with the settings this store relies on; no connection is made yet."""
    backend = url.get_backend_name()
    connect_args: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if backend == "sqlite":
        connect_args["timeout"] = BUSY_TIMEOUT_S
        if url.database not in (None, "", ":memory:") and not url.database.startswith("file:"):
            try:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(
                    f"incident store {safe(url)}: cannot create its directory: {e}"
                ) from e
    elif backend == "postgresql" and url.get_driver_name() in ("psycopg", "psycopg2"):
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
    if backend == "postgresql":
        # A pooled connection dies with a server restart; test it before each transaction so
        # a long-lived Store reconnects instead of failing once per dead connection.
        options["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(url, connect_args=connect_args, **options)
    except exc.NoSuchModuleError as e:
        raise StoreError(f"incident store {safe(url)}: unknown database or driver: {e}") from e
    except ImportError as e:
        hint = " (pip install 'incident[postgres]')" if backend == "postgresql" else ""
        raise StoreError(
            f"incident store {safe(url)}: its database driver is not installed{hint}: {e}"
        ) from e
    except exc.ArgumentError as e:
        raise StoreError(f"incident store {safe(url)}: {e}") from e
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below); pysqlite's implicit BEGIN is always DEFERRED.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
            # WAL: readers never block the writer and the writer never blocks readers.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Connection) -> None:
        # A DEFERRED transaction that reads and then writes cannot wait for the lock: SQLite
        # fails it at once with SQLITE_BUSY because its snapshot went stale. IMMEDIATE takes
        # the write lock up front, so concurrent writers queue on busy_timeout instead.
        write = conn.get_execution_options().get("incident_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """An engine plus the one way this package talks to it: `run(action, fn, write=...)`."""

    def __init__(self, url: URL, engine: Engine) -> None:
        self.url = url
        self.engine = engine
        self.safe_url = safe(url)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Connection]:
        """One transaction, committed when the block ends, rolled back if it raises."""
        with self.engine.connect() as conn:
            if write:
                conn.execution_options(incident_write=True)
            with conn.begin():
                yield conn

    def run(self, action: str, fn: Callable[[Connection], T], *, write: bool) -> T:
        """`fn` in one transaction, retried after lost races; database errors as StoreError."""
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            try:
                with self.transaction(write=write) as conn:
                    return fn(conn)
            except exc.IntegrityError as e:
                # A unique key lost to a concurrent writer: the retry sees the winner's row.
                if last:
                    raise self.error(action, e) from e
            except Conflict as e:
                if last:
                    raise StoreError(f"incident store {self.safe_url}: cannot {action}: {e}") from e
            except exc.DBAPIError as e:
                if last or getattr(e.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                    raise self.error(action, e) from e
            except exc.SQLAlchemyError as e:
                raise self.error(action, e) from e
        raise AssertionError("unreachable")  # pragma: no cover

    def error(self, action: str, e: Exception) -> StoreError:
        """A one-line StoreError for a database failure, without the password."""
        orig = getattr(e, "orig", None) or e
        lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
        reason = "; ".join(lines) or type(orig).__name__
        if "database is locked" in reason:
            reason += f" (another process held the write lock for more than {BUSY_TIMEOUT_S} s)"
        if self.url.password:
            reason = reason.replace(str(self.url.password), "***")
        return StoreError(f"incident store {self.safe_url}: cannot {action}: {reason}")

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
