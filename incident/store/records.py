"""What the store hands out besides model.Incident: Change, SourceHealth, Lease, SchemaStatus."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from incident.errors import IncidentError
from incident.model import EventKind, Incident, Severity, Status, TimelineEvent

R = TypeVar("R")


class Change(enum.StrEnum):
    """What open_incident did: opened a new incident, reopened a resolved one, or found it open."""

    OPENED = "opened"
    REOPENED = "reopened"
    EXISTING = "existing"


class InvalidTransition(IncidentError):
    """The incident's status does not allow that action (acknowledging a resolved incident)."""

    exit_code = 2  # what was asked is the mistake, not the tool (1 is an unexpected failure)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceHealth:
    """How reading one source went lately; `consecutive_failures` is 0 while it works."""

    source: str
    consecutive_failures: int
    failing_since: datetime | None
    last_ok_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    checked_at: datetime

    @property
    def ok(self) -> bool:
        """The last read succeeded."""
        return self.consecutive_failures == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """One runner's claim on one check for one cycle; `done_at` is set once it was evaluated."""

    check: str
    cycle: datetime
    runner: str
    claimed_at: datetime
    done_at: datetime | None
    takeovers: int

    @property
    def done(self) -> bool:
        """The check was evaluated in this cycle."""
        return self.done_at is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaStatus:
    """Where a database's schema stands against this code's (what `incident db status` shows)."""

    url: str
    database_version: int | None  # None: an empty database, no schema yet
    code_version: int

    @property
    def state(self) -> str:
        """empty | current | older (run `incident db upgrade`) | newer (upgrade incident)."""
        if self.database_version is None:
            return "empty"
        if self.database_version == self.code_version:
            return "current"
        return "older" if self.database_version < self.code_version else "newer"


def incident_from_row(row: sa.Row, timeline: tuple[TimelineEvent, ...] = ()) -> Incident:
    """An Incident from a row of the incidents table."""
    m = row._mapping
    return Incident(
        id=m["id"],
        fingerprint=m["fingerprint"],
        check=m["check_name"],
        title=m["title"],
        status=Status(m["status"]),
        severity=Severity(m["severity"]),
        labels=dict(m["labels"]),
        runbook=m["runbook"],
        detected_at=m["detected_at"],
        opened_at=m["opened_at"],
        acknowledged_at=m["acknowledged_at"],
        acknowledged_by=m["acknowledged_by"],
        resolved_at=m["resolved_at"],
        resolved_by=m["resolved_by"],
        value=m["value"],
        reopened=m["reopened"],
        drill=bool(m["drill"]),
        manual=bool(m["manual"]),
        timeline=timeline,
    )


def event_from_row(row: sa.Row) -> TimelineEvent:
    """A TimelineEvent from a row of the incident_events table."""
    m = row._mapping
    return TimelineEvent(
        at=m["at"], kind=EventKind(m["kind"]), actor=m["actor"], text=m["text"], data=m["data"]
    )



# Since schema version 4: the written part of a postmortem and its action items.
POSTMORTEM_TEXT_FIELDS = ("summary", "impact", "root_cause", "trigger", "resolution", "detection",
                          "went_well", "went_badly", "lucky")
POSTMORTEM_NUMBER_FIELDS = ("customers_affected", "orders_affected", "revenue_at_risk")


@dataclass(frozen=True, slots=True, kw_only=True)
class Postmortem:
    """What people write about an incident afterwards; empty strings and None until edited."""

    incident_id: int
    summary: str = ""
    impact: str = ""
    customers_affected: int | None = None
    orders_affected: int | None = None
    revenue_at_risk: float | None = None
    root_cause: str = ""
    trigger: str = ""
    resolution: str = ""
    detection: str = ""
    went_well: str = ""
    went_badly: str = ""
    lucky: str = ""
    mitigated_at: datetime | None = None
    updated_at: datetime | None = None
    updated_by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionItem:
    """One follow-up from a postmortem: who does what by when; `status` is open or done."""

    id: int
    incident_id: int
    text: str
    owner: str
    due: date | None
    status: str
    created_at: datetime
    done_at: datetime | None = None

    def overdue(self, today: date) -> bool:
        """Still open after its due date."""
        return self.status == "open" and self.due is not None and self.due < today


def from_row(cls: type[R], row: sa.Row, columns: Mapping[str, str] | None = None,
             **values: Any) -> R:
    """A record dataclass from a row: each field from the column of its name (or the one
    `columns` names for it), unless its value is given."""
    m = row._mapping
    names = columns or {}
    return cls(**{f.name: values[f.name] if f.name in values else m[names.get(f.name, f.name)]
                  for f in fields(cls)})  # type: ignore[arg-type]
