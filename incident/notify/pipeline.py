"""Notification as one pipeline, composed here: plan (route, silence) → outbox → deliver → record.

The engine and the CLI enqueue through `on` (inside the store transaction that changed the
incident) and then call `deliver`. Reminders and escalations are computed from the store each
run (`schedule`), with keys that make them idempotent. The clock is always passed in.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime

from incident.model import Attempt, Envelope, Incident, Project, Silence, Status
from incident.notify.deliver import Notifier
from incident.notify.dispatch import deliver
from incident.notify.outbox import Outbox
from incident.notify.plan import due_repeats, opening_key, plan

ACTOR = "incident notify"


class OnChange:
    """The store's `notifications=` callback for one event; remembers why it sent nothing."""

    def __init__(self, pipeline: Pipeline, event: str, now: datetime, reason: str,
                 to: Sequence[str] | None = None) -> None:
        self._pipeline, self._event, self._now, self._reason, self._to = (
            pipeline, event, now, reason, to)
        self.muted_by: str | None = None

    def __call__(self, incident: Incident, detail: int | None = None) -> list[Envelope]:
        p = self._pipeline
        event = "reopened" if self._event == "opened" and incident.reopened else self._event
        key = f"update:{detail}" if detail is not None else None
        result = plan(p.project.settings, p.project.runbooks, incident, event, self._now,
                      key=key, reason=self._reason, silences=p.silences(self._now), to=self._to)
        self.muted_by = result.muted_by
        return result.envelopes


class Pipeline:
    """The notification stages for one project, one outbox and one sender."""

    def __init__(self, project: Project, outbox: Outbox, notifier: Notifier, *,
                 runner: str | None = None, concurrency: int = 8, drills: bool = False) -> None:
        self.project = project
        self.outbox = outbox
        self.notifier = notifier
        # Unique per instance: two engines in one process are two runners.
        self.runner = runner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.concurrency = concurrency
        self.drills = drills  # a drill run's pipeline: reminders for drill incidents only
        self._silences: tuple[datetime, list[Silence]] | None = None

    def silences(self, now: datetime) -> list[Silence]:
        """Silences in force at `now` (read once per `now`)."""
        if self._silences is None or self._silences[0] != now:
            self._silences = (now, self.outbox.silences(active_at=now))
        return self._silences[1]

    def on(self, event: str, now: datetime, reason: str = "", to: Sequence[str] | None = None
           ) -> OnChange:
        """The callback a store method calls with the changed incident: its envelopes."""
        return OnChange(self, event, now, reason, to)

    def schedule(self, now: datetime) -> list[Envelope]:
        """Enqueue the reminders and escalations owed at `now`; the new ones."""
        mine = [i for i in self.outbox.active() if i.drill == self.drills]
        reopened = self.outbox.reopened_at([i.id for i in mine if i.reopened])
        held = self.outbox.unannounced({i.id: opening_key(i) for i in mine
                                        if i.status is Status.OPEN})
        owed = due_repeats(self.project.settings, self.project.runbooks, mine, now,
                           self.silences(now), reopened, held)
        return self.outbox.enqueue(owed, at=now) if owed else []

    def deliver(self, now: datetime, *, actor: str = ACTOR) -> list[Attempt]:
        """Deliver everything due at `now`; every attempt made (also on the timelines)."""
        return deliver(self.outbox, self.notifier, self.project.settings.delivery, now,
                       runner=self.runner, actor=actor, concurrency=self.concurrency)


def outcomes(attempts: Sequence[Attempt]) -> dict[int, tuple[tuple[str, bool], ...]]:
    """Per incident, each (channel, delivered?) of this run: the last attempt per row wins."""
    last: dict[int, Attempt] = {}
    for a in attempts:
        last[a.item.id] = a
    out: dict[int, list[tuple[str, bool]]] = {}
    for a in last.values():
        out.setdefault(a.item.envelope.incident_id, []).append((a.item.envelope.channel, a.ok))
    return {k: tuple(v) for k, v in out.items()}
