"""The outbox the notification pipeline needs; `incident.store.Store` implements it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from incident.model import Attempt, Envelope, Incident, OutboxItem, Silence


class Outbox(Protocol):
    """Durable, idempotent, claimable notifications (and the silences that mute them)."""

    def enqueue(self, envelopes: Sequence[Envelope], *, at: datetime) -> list[Envelope]:
        """Write envelopes (an IfPaged only when its condition holds); the ones that were new."""
        ...

    def claim_due(self, *, now: datetime, runner: str, lease: timedelta, limit: int = ...
                  ) -> list[OutboxItem]:
        """Rows due at `now`, claimed for `runner` alone."""
        ...

    def release(self, ids: Iterable[int], *, runner: str) -> None:
        """Give claimed rows back untried."""
        ...

    def record_attempts(self, attempts: Sequence[Attempt], *, runner: str, actor: str) -> None:
        """Record attempts on the outbox and the timelines."""
        ...

    def sent_messages(self, channel: str, *, since: datetime, until: datetime) -> int:
        """Messages sent to a channel since a time."""
        ...

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        """Silences, those in force at `active_at` when given."""
        ...

    def active(self, check: str | None = None) -> list[Incident]:
        """Open and acknowledged incidents."""
        ...

    def reopened_at(self, incident_ids: Sequence[int]) -> dict[int, datetime]:
        """When each of these incidents last reopened (those never reopened are left out)."""
        ...

    def unannounced(self, openings: Mapping[int, str]) -> set[int]:
        """Of these incidents (id → the event key of their opening), those with no outbox row
        for it: a silence or a window held the opening back."""
        ...
