"""Schema versions: status without side effects, in-place upgrades that keep data, refusals."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from incident.errors import StoreError
from incident.model import EventKind, Severity
from incident.store import SCHEMA_VERSION, Store, schema

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _execute(url: str, *statements: sa.Executable | str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(sa.text(statement) if isinstance(statement, str) else statement)
    finally:
        engine.dispose()


def make_version_1(url: str, root: Path) -> int:
    """A store as version 1 left it (no leases table), holding one incident; its id."""
    with Store.connect(url, root=root) as store:
        incident, _ = store.open_incident(
            fingerprint="db-latency", check="db-latency", title="DB slow",
            severity=Severity.CRITICAL, labels={"team": "dba"}, runbook=None, detected_at=T0,
            at=T0, value=2.5, reopen_window=timedelta(hours=1), actor="cron")
        store.add_event(incident.id, at=T0 + timedelta(minutes=1), kind=EventKind.NOTE,
                        actor="ana", text="looking")
        store.record_source("prom", ok=False, at=T0, error="timeout")
    # Versions 2 to 5 only added tables (leases; outbox and silences; postmortems and action
    # items; the drill journal): dropping them gives exactly a version 1 database.
    _execute(url, sa.text("DROP TABLE incident_leases"), sa.text("DROP TABLE incident_outbox"),
             sa.text("DROP TABLE incident_silences"), sa.text("DROP TABLE incident_action_items"),
             sa.text("DROP TABLE incident_postmortems"), sa.text("DROP TABLE drill_runs"),
             sa.update(schema.meta).values(value="1"))
    return incident.id


def test_status_of_an_empty_database_creates_nothing(store_url: str, tmp_path: Path) -> None:
    """`db status` on an empty database says so and leaves it empty."""
    for _ in range(2):
        status = Store.status(store_url, root=tmp_path)
        assert (status.database_version, status.code_version, status.state) == (
            None, SCHEMA_VERSION, "empty")


@pytest.mark.parametrize(
    ("stored", "state"),
    [(SCHEMA_VERSION, "current"), (1, "older"), (SCHEMA_VERSION + 1, "newer")],
)
def test_status_compares_the_two_versions(
    store_url: str, tmp_path: Path, stored: int, state: str
) -> None:
    """`db status` reports the stored version against the code's without refusing either."""
    Store.connect(store_url, root=tmp_path).close()
    _execute(store_url, sa.update(schema.meta).values(value=str(stored)))
    status = Store.status(store_url, root=tmp_path)
    assert (status.database_version, status.state) == (stored, state)


def test_a_version_1_store_is_upgraded_in_place_with_its_data(
    store_url: str, tmp_path: Path
) -> None:
    """A version 1 database is refused until upgraded; the upgrade keeps every row."""
    incident_id = make_version_1(store_url, tmp_path)
    with pytest.raises(StoreError, match=r"version 1 is older .* run `incident db upgrade`"):
        Store.connect(store_url, root=tmp_path)

    assert Store.upgrade(store_url, root=tmp_path) == (1, SCHEMA_VERSION)
    assert Store.upgrade(store_url, root=tmp_path) == (SCHEMA_VERSION, SCHEMA_VERSION)
    with Store.connect(store_url, root=tmp_path) as store:
        kept = store.get(incident_id)
        assert (kept.fingerprint, kept.value, kept.labels) == ("db-latency", 2.5, {"team": "dba"})
        assert [e.kind for e in kept.timeline] == [EventKind.OPENED, EventKind.NOTE]
        assert store.source_health()[0].last_error == "timeout"
        assert store.claim_lease("db-latency", T0, runner="a", at=T0, ttl=timedelta(minutes=2))
        assert [lease.runner for lease in store.leases()] == ["a"]


def test_upgrading_an_empty_database_creates_the_schema(store_url: str, tmp_path: Path) -> None:
    """`db upgrade` on an empty database creates the current schema."""
    assert Store.upgrade(store_url, root=tmp_path) == (None, SCHEMA_VERSION)
    assert Store.status(store_url, root=tmp_path).state == "current"


def test_a_newer_store_is_not_upgraded(store_url: str, tmp_path: Path) -> None:
    """`db upgrade` refuses a database written by a newer incident, naming both versions."""
    Store.connect(store_url, root=tmp_path).close()
    _execute(store_url, sa.update(schema.meta).values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(StoreError) as info:
        Store.upgrade(store_url, root=tmp_path)
    assert f"version {SCHEMA_VERSION + 1} is newer than this incident's schema version " \
           f"{SCHEMA_VERSION}" in str(info.value)


def test_concurrent_upgrades_migrate_once(store_url: str, tmp_path: Path) -> None:
    """Eight upgrades at once: one migrates 1 → 2, the others find it done; data kept."""
    incident_id = make_version_1(store_url, tmp_path)
    barrier = threading.Barrier(8)
    results: list[tuple[int | None, int] | BaseException] = []

    def upgrade() -> None:
        barrier.wait(timeout=60)
        try:
            results.append(Store.upgrade(store_url, root=tmp_path))
        except BaseException as e:
            results.append(e)

    threads = [threading.Thread(target=upgrade) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(results, key=str) == sorted(
        [(1, SCHEMA_VERSION)] + [(SCHEMA_VERSION, SCHEMA_VERSION)] * 7, key=str)
    with Store.connect(store_url, root=tmp_path) as store:
        assert store.get(incident_id).title == "DB slow"


def test_every_version_has_a_migration() -> None:
    """MIGRATIONS covers every step from version 1 to SCHEMA_VERSION."""
    assert sorted(schema.MIGRATIONS) == list(range(2, SCHEMA_VERSION + 1))


def test_status_of_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    """`db status` before the first run leaves no empty database file (or directory) behind."""
    status = Store.status("sqlite:///.incident/incident.db", root=tmp_path)
    assert status.state == "empty" and not (tmp_path / ".incident").exists()
