"""Faults on a real PostgreSQL: a restart, a server that is down, a connection cut mid-write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from incident.errors import StoreError
from incident.model import Severity
from incident.store import Store
from incident.store.schema import incidents

pytestmark = pytest.mark.postgres

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _open(store: Store, fingerprint: str) -> int:
    incident, _ = store.open_incident(
        fingerprint=fingerprint, check=fingerprint, title=fingerprint, severity=Severity.HIGH,
        labels={}, runbook=None, detected_at=T0, at=T0, value=1.0,
        reopen_window=timedelta(hours=1), actor="cron")
    return incident.id


def test_a_store_outlives_a_server_restart(postgres: Any, tmp_path: Path) -> None:
    """A Store whose pooled connections died with a restart reconnects on its next call."""
    url = postgres.new_database()
    with Store.connect(url, root=tmp_path) as store:
        first = _open(store, "a")
        postgres.restart()
        second = _open(store, "b")
        assert [i.id for i in store.active()] == [second, first]


def test_a_server_that_is_down_is_a_store_error_then_converges(
    postgres: Any, tmp_path: Path
) -> None:
    """While the server is stopped every call is a one-line StoreError; after a start, all works."""
    url = postgres.new_database()
    with Store.connect(url, root=tmp_path) as store:
        _open(store, "a")
        postgres.stop()
        try:
            with pytest.raises(StoreError) as info:
                _open(store, "b")
            assert "cannot open an incident for 'b'" in str(info.value)
            assert "\n" not in str(info.value)
            assert info.value.exit_code == 4
        finally:
            postgres.start()
        _open(store, "b")
        assert sorted(i.fingerprint for i in store.active()) == ["a", "b"]


def test_a_connection_cut_mid_transaction_writes_nothing(postgres: Any, tmp_path: Path) -> None:
    """An incident inserted in a transaction whose connection dies before commit is not kept."""
    url = postgres.new_database()
    with Store.connect(url, root=tmp_path) as store:

        def half(conn: sa.Connection) -> None:
            conn.execute(sa.insert(incidents).values(
                fingerprint="x", active_key="x", title="x", status="open", severity="high",
                labels={}, detected_at=T0, opened_at=T0, updated_at=T0))
            conn.execute(sa.select(sa.func.pg_terminate_backend(sa.func.pg_backend_pid())))

        with pytest.raises(StoreError, match="cannot write half an incident"):
            store._db.run("write half an incident", half, write=True)
        assert store.list() == []
        _open(store, "x")  # the next run converges
        assert [i.fingerprint for i in store.active()] == ["x"]
