"""Postmortem fields and action items in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from incident.errors import NotFound
from incident.model import Severity
from incident.store import Store

T = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _open(store: Store, fp: str = "fp") -> int:
    incident, _ = store.open_incident(
        fingerprint=fp, check="c", title="t", severity=Severity.HIGH, labels={}, runbook=None,
        detected_at=T, at=T, value=1.0, reopen_window=timedelta(0), actor="test")
    return incident.id


def test_postmortem_is_empty_until_edited_then_keeps_unedited_fields(store: Store) -> None:
    """Edits set only the fields given; numbers and mitigated_at round-trip exactly."""
    i = _open(store)
    assert store.postmortem(i).summary == "" and store.postmortem(i).updated_at is None
    store.update_postmortem(i, at=T, actor="ana", summary="alipay down", orders_affected=120)
    pm = store.update_postmortem(i, at=T + timedelta(hours=1), actor="bob", root_cause="cert",
                                 revenue_at_risk=4200.5, mitigated_at=T + timedelta(minutes=20))
    assert (pm.summary, pm.root_cause, pm.orders_affected, pm.revenue_at_risk) == (
        "alipay down", "cert", 120, 4200.5)
    assert pm.mitigated_at == T + timedelta(minutes=20)
    assert (pm.updated_by, pm.updated_at) == ("bob", T + timedelta(hours=1))
    assert store.postmortem(i) == pm


def test_postmortem_of_a_missing_incident_or_unknown_field_is_refused(store: Store) -> None:
    """NotFound for no incident; ValueError for a field that does not exist."""
    with pytest.raises(NotFound):
        store.postmortem(99)
    with pytest.raises(NotFound):
        store.update_postmortem(99, at=T, actor="a", summary="x")
    with pytest.raises(ValueError, match="colour"):
        store.update_postmortem(_open(store), at=T, actor="a", colour="red")


def test_action_items_add_done_and_list_across_incidents(store: Store) -> None:
    """Items list by due date (undated last); done ones drop out of the open list; overdue flags."""
    a, b = _open(store, "a"), _open(store, "b")
    late = store.add_action_item(a, text="failover", owner="bob", due=date(2026, 11, 1), at=T)
    undated = store.add_action_item(b, text="dashboards", owner="", due=None, at=T)
    soon = store.add_action_item(b, text="alert on expiry", owner="ana", due=date(2026, 12, 1), at=T)
    assert [x.id for x in store.action_items(open_only=True)] == [late.id, soon.id, undated.id]
    assert [x.id for x in store.action_items(incident_ids=[b])] == [soon.id, undated.id]
    assert late.overdue(date(2026, 11, 24)) and not soon.overdue(date(2026, 11, 24))
    done, changed = store.finish_action_item(late.id, at=T + timedelta(days=1))
    assert changed and done.status == "done" and done.done_at == T + timedelta(days=1)
    assert not done.overdue(date(2026, 11, 24))
    assert store.finish_action_item(late.id, at=T)[1] is False
    assert [x.id for x in store.action_items(open_only=True)] == [soon.id, undated.id]
    with pytest.raises(NotFound):
        store.finish_action_item(999, at=T)
    with pytest.raises(NotFound):
        store.add_action_item(999, text="x", owner="", due=None, at=T)
