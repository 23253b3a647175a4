"""Incident lifecycle against real SQLite and PostgreSQL: open, reopen, ack, resolve, timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident.errors import IncidentError, NotFound
from incident.model import EventKind, Incident, Severity, Status
from incident.store import Change, InvalidTransition, Store
from incident.store.schema import incidents

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=1)
MIN = timedelta(minutes=1)


def open_(
    store: Store,
    fingerprint: str = 'api-success-rate{service="cart"}',
    *,
    at: datetime = T0,
    **overrides: Any,
) -> tuple[Incident, Change]:
    """open_incident with defaults for everything a test does not care about."""
    args: dict[str, Any] = {
        "fingerprint": fingerprint,
        "check": "api-success-rate",
        "title": "API success rate below 99%",
        "severity": Severity.CRITICAL,
        "labels": {"service": "cart", "team": "platform"},
        "runbook": "api-errors",
        "detected_at": at - 5 * MIN,
        "at": at,
        "value": 0.95,
        "reopen_window": WINDOW,
        "actor": "cron",
    }
    return store.open_incident(**(args | overrides))


def test_open_creates_an_open_incident_with_an_opened_event(store: Store) -> None:
    """A new fingerprint opens an incident with every field stored and one OPENED event."""
    incident, change = open_(store)
    assert change is Change.OPENED
    assert incident.status is Status.OPEN
    assert (incident.check, incident.runbook, incident.severity) == (
        "api-success-rate",
        "api-errors",
        Severity.CRITICAL,
    )
    assert incident.labels == {"service": "cart", "team": "platform"}
    assert (incident.detected_at, incident.opened_at) == (T0 - 5 * MIN, T0)
    assert (incident.value, incident.reopened, incident.drill, incident.manual) == (
        0.95,
        0,
        False,
        False,
    )
    timeline = store.get(incident.id).timeline
    assert [(e.kind, e.at, e.actor) for e in timeline] == [(EventKind.OPENED, T0, "cron")]


def test_open_while_active_returns_existing_and_updates_the_value(store: Store) -> None:
    """A second firing of an active fingerprint updates its value and adds no event."""
    first, _ = open_(store)
    again, change = open_(store, at=T0 + MIN, value=0.9)
    assert change is Change.EXISTING
    assert again.id == first.id
    assert again.value == 0.9
    assert again.opened_at == T0
    assert len(store.get(first.id).timeline) == 1


def test_an_acknowledged_incident_is_still_the_active_one(store: Store) -> None:
    """Acknowledged counts as active: firing again returns it, not a new incident."""
    first, _ = open_(store)
    store.acknowledge(first.id, at=T0 + MIN, actor="alice")
    again, change = open_(store, at=T0 + 2 * MIN)
    assert (again.id, change, again.status) == (first.id, Change.EXISTING, Status.ACKNOWLEDGED)


@pytest.mark.parametrize(
    ("resolved_before", "expected"),
    [
        (timedelta(minutes=10), Change.REOPENED),
        (WINDOW, Change.REOPENED),  # the window's edge is inside it
        (WINDOW + timedelta(seconds=1), Change.OPENED),
        (timedelta(days=3), Change.OPENED),
    ],
)
def test_reopen_only_within_the_window(
    store: Store, resolved_before: timedelta, expected: Change
) -> None:
    """Firing again within reopen_window of resolving reopens; later, a new incident opens."""
    first, _ = open_(store, at=T0 - timedelta(days=4))
    store.acknowledge(first.id, at=T0 - timedelta(days=4), actor="alice")
    store.resolve(first.id, at=T0 - resolved_before, actor="cron", auto=True)
    again, change = open_(store, at=T0, value=0.5)
    assert change is expected
    assert again.status is Status.OPEN
    assert again.value == 0.5
    assert store.find_active(first.fingerprint) == again
    if expected is Change.REOPENED:
        assert again.id == first.id
        assert again.reopened == 1
        assert (again.resolved_at, again.resolved_by) == (None, None)
        assert (again.acknowledged_at, again.acknowledged_by) == (None, None)
        assert again.opened_at == first.opened_at
        assert store.get(first.id).timeline[-1].kind is EventKind.REOPENED
    else:
        assert again.id != first.id
        assert store.get(first.id).status is Status.RESOLVED


def test_reopen_looks_at_the_most_recently_resolved_incident(store: Store) -> None:
    """Of several resolved incidents of one fingerprint, the latest one is reopened."""
    old, _ = open_(store, at=T0 - timedelta(days=2))
    store.resolve(old.id, at=T0 - timedelta(days=2) + MIN, actor="cron")
    recent, change = open_(store, at=T0 - 30 * MIN)
    assert change is Change.OPENED
    store.resolve(recent.id, at=T0 - 10 * MIN, actor="cron")
    again, change = open_(store, at=T0)
    assert (again.id, change) == (recent.id, Change.REOPENED)
    again2 = store.resolve(again.id, at=T0 + MIN, actor="cron")[0]
    third, change = open_(store, at=T0 + 2 * MIN)
    assert (third.id, change, third.reopened) == (again2.id, Change.REOPENED, 2)


def test_resolve_changes_the_incident_only_once(store: Store) -> None:
    """Only the first resolve reports a change and writes a RESOLVED event."""
    incident, _ = open_(store)
    resolved, changed = store.resolve(incident.id, at=T0 + MIN, actor="cron", auto=True)
    assert changed is True
    assert (resolved.status, resolved.resolved_at, resolved.resolved_by) == (
        Status.RESOLVED,
        T0 + MIN,
        "cron",
    )
    again, changed = store.resolve(incident.id, at=T0 + 2 * MIN, actor="bob", text="done")
    assert changed is False
    assert again.resolved_at == T0 + MIN
    events = [e for e in store.get(incident.id).timeline if e.kind is EventKind.RESOLVED]
    assert [(e.text, e.data) for e in events] == [("resolved automatically", {"auto": True})]
    assert store.find_active(incident.fingerprint) is None


def test_acknowledge_moves_open_to_acknowledged_once(store: Store) -> None:
    """The first ack records who and when; a second reports no change and keeps the first."""
    incident, _ = open_(store)
    acked, changed = store.acknowledge(incident.id, at=T0 + MIN, actor="alice")
    assert changed is True
    assert (acked.status, acked.acknowledged_at, acked.acknowledged_by) == (
        Status.ACKNOWLEDGED,
        T0 + MIN,
        "alice",
    )
    again, changed = store.acknowledge(incident.id, at=T0 + 2 * MIN, actor="bob")
    assert (changed, again.acknowledged_by) == (False, "alice")
    kinds = [e.kind for e in store.get(incident.id).timeline]
    assert kinds == [EventKind.OPENED, EventKind.ACKNOWLEDGED]


def test_acknowledging_a_resolved_incident_is_refused(store: Store) -> None:
    """Acknowledging a resolved incident raises an IncidentError that says it is resolved."""
    incident, _ = open_(store)
    store.resolve(incident.id, at=T0 + MIN, actor="bob")
    with pytest.raises(InvalidTransition, match=rf"incident {incident.id} was resolved .* bob"):
        store.acknowledge(incident.id, at=T0 + 2 * MIN, actor="alice")
    assert issubclass(InvalidTransition, IncidentError)
    assert store.get(incident.id).acknowledged_at is None


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get(999),
        lambda s: s.resolve(999, at=T0, actor="x"),
        lambda s: s.acknowledge(999, at=T0, actor="x"),
        lambda s: s.add_event(999, at=T0, kind=EventKind.NOTE, actor="x", text="hi"),
    ],
    ids=["get", "resolve", "acknowledge", "add_event"],
)
def test_a_missing_incident_raises_not_found(store: Store, call: Any) -> None:
    """Every method that takes an incident id raises NotFound for an unknown id."""
    with pytest.raises(NotFound, match="no incident with id 999"):
        call(store)


def test_timeline_is_ordered_by_time_then_insertion(store: Store) -> None:
    """Events come back by time, ties in the order they were added, whatever the insert order."""
    incident, _ = open_(store)
    add = store.add_event
    add(incident.id, at=T0 + 3 * MIN, kind=EventKind.NOTE, actor="bob", text="third")
    add(
        incident.id,
        at=T0 + MIN,
        kind=EventKind.NOTIFIED,
        actor="notify",
        text="first",
        data={"channel": "oncall", "ok": True},
    )
    add(incident.id, at=T0 + MIN, kind=EventKind.STEP, actor="alice", text="second")
    timeline = store.get(incident.id).timeline
    assert [e.text for e in timeline] == [
        "API success rate below 99%",
        "first",
        "second",
        "third",
    ]
    assert timeline[1].data == {"channel": "oncall", "ok": True}


def test_add_event_returns_the_event_as_it_reads_back(store: Store) -> None:
    """add_event's result equals what get() shows, JSON-normalised data included."""
    incident, _ = open_(store)
    at = datetime(2024, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=8)))
    event = store.add_event(
        incident.id,
        at=at,
        kind=EventKind.ESCALATED,
        actor="notify",
        text="escalated",
        data={"after": timedelta(minutes=15), "at": at, "notify": ("managers",)},
    )
    assert event.data == {"after": 900.0, "at": "2024-03-01T12:00:00+00:00", "notify": ["managers"]}
    assert store.get(incident.id).timeline[-1] == event


def test_list_filters_and_orders_newest_first(store: Store) -> None:
    """list() filters by status, check, since and drill, newest first, up to the limit."""
    a, _ = open_(store, "a", at=T0, check="latency")
    b, _ = open_(store, "b", at=T0 + MIN, check="errors")
    c, _ = open_(store, "c", at=T0 + 2 * MIN, check="latency", drill=True)
    d, _ = open_(store, "d", at=T0 + 3 * MIN, check="errors", manual=True)
    store.acknowledge(b.id, at=T0 + 5 * MIN, actor="alice")
    store.resolve(a.id, at=T0 + 5 * MIN, actor="cron")

    def ids(**kw: Any) -> list[int]:
        return [i.id for i in store.list(**kw)]

    assert ids() == [d.id, c.id, b.id, a.id]
    assert ids(statuses=[Status.RESOLVED]) == [a.id]
    assert ids(statuses={Status.OPEN, Status.ACKNOWLEDGED}) == [d.id, c.id, b.id]
    assert ids(statuses=[]) == []
    assert ids(check="latency") == [c.id, a.id]
    assert ids(since=T0 + MIN) == [d.id, c.id, b.id]
    assert ids(include_drills=False) == [d.id, b.id, a.id]
    assert ids(limit=2) == [d.id, c.id]
    assert ids(check="errors", statuses=[Status.OPEN]) == [d.id]
    assert all(i.timeline == () for i in store.list())
    assert store.list(check="errors")[0].manual is True


def test_active_lists_open_and_acknowledged_incidents(store: Store) -> None:
    """active() returns open and acknowledged incidents, optionally of one check."""
    a, _ = open_(store, "a", check="latency")
    b, _ = open_(store, "b", at=T0 + MIN, check="errors")
    c, _ = open_(store, "c", at=T0 + 2 * MIN, check="latency")
    store.acknowledge(a.id, at=T0 + 3 * MIN, actor="alice")
    store.resolve(c.id, at=T0 + 3 * MIN, actor="cron")
    assert [i.id for i in store.active()] == [b.id, a.id]
    assert [i.id for i in store.active("latency")] == [a.id]
    assert store.active("nothing") == []


def test_the_database_itself_refuses_a_second_active_incident(store: Store) -> None:
    """The unique active_key rejects a second active row for a fingerprint, whatever the code."""
    incident, _ = open_(store)
    engine = store._db.engine  # the same database, written behind the Store's back
    row = {
        "fingerprint": incident.fingerprint,
        "active_key": incident.fingerprint,
        "title": "dup",
        "status": "open",
        "severity": "low",
        "labels": {},
        "detected_at": T0,
        "opened_at": T0,
        "updated_at": T0,
    }
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(incidents).values(**row))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        # A resolved row must not keep its active_key (the CHECK constraint).
        conn.execute(sa.insert(incidents).values(**row | {"active_key": "x", "status": "resolved"}))


def test_datetimes_come_back_as_aware_utc(store: Store) -> None:
    """Times given in any zone are stored as the same instant and read back in UTC."""
    shanghai = datetime(2024, 3, 1, 20, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    new_york = datetime(2024, 3, 1, 7, 1, tzinfo=timezone(timedelta(hours=-5)))
    incident, _ = open_(store, at=shanghai, detected_at=new_york - timedelta(hours=1))
    got = store.get(incident.id)
    assert got.opened_at == shanghai
    assert got.opened_at.tzinfo is UTC
    assert got.opened_at.hour == 12 and got.opened_at.microsecond == 123456
    assert got.detected_at == datetime(2024, 3, 1, 11, 1, tzinfo=UTC)
    assert got.timeline[0].at.tzinfo is UTC
    resolved, _ = store.resolve(incident.id, at=new_york, actor="cron")
    assert resolved.resolved_at == new_york and resolved.resolved_at.tzinfo is UTC


def test_naive_datetimes_are_refused(store: Store) -> None:
    """A naive datetime is a ValueError: the store will not guess its zone."""
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        open_(store, at=datetime(2024, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="since must be timezone-aware"):
        store.list(since=datetime(2024, 3, 1))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    at=st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.builds(
            timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
        ),
    ),
)
def test_any_aware_datetime_round_trips_exactly(store: Store, at: datetime) -> None:
    """Any aware datetime reads back as the same instant, to the microsecond, in UTC."""
    incident, _ = open_(store, fingerprint=at.isoformat(), at=at, detected_at=at)
    event = store.add_event(incident.id, at=at, kind=EventKind.NOTE, actor="h", text="t")
    got = store.get(incident.id)
    assert got.opened_at == at and got.opened_at.tzinfo is UTC
    assert got.timeline[-1].at == event.at == at


def test_labels_and_text_round_trip_unicode(store: Store) -> None:
    """Labels and timeline text keep non-ASCII characters and quotes."""
    labels = {"region": "上海", "path": '/cart?"x"'}
    incident, _ = open_(store, labels=labels, title="Zahlungsfehler über 5 %")
    got = store.get(incident.id)
    assert got.labels == labels
    assert got.timeline[0].text == "Zahlungsfehler über 5 %"
