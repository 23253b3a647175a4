"""A manual incident (`incident open`): stored, routed and notified like a detected one.

It sits beside `app`, above the engine and the notification pipeline it composes: the incident,
its runbook snapshot and its `opened` notifications in the outbox, then delivery in the same
command. A delivery that fails stays in the outbox, and the next `incident check` retries it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from incident.model import Attempt, EventKind, Incident, Project, Severity

if TYPE_CHECKING:
    from incident.store import Store


def open_manual(project: Project, store: Store, *, title: str, severity: Severity,
                labels: Mapping[str, str], runbook: str | None, actor: str, now: datetime
                ) -> tuple[Incident, list[Attempt]]:
    """Open an incident by hand, page its routes' channels now; the incident and the attempts."""
    from incident.engine import attach_runbook
    from incident.notify import Notifier
    from incident.notify.pipeline import Pipeline

    pipeline = Pipeline(project, store, Notifier(project.settings, project.root))
    on = pipeline.on("opened", now)
    # A fingerprint of its own: a manual incident never merges with, or reopens, another.
    incident, _ = store.open_incident(
        fingerprint=f"manual:{uuid.uuid4().hex[:12]}", check=None, title=title,
        severity=severity, labels=dict(labels), runbook=runbook, detected_at=now, at=now,
        value=None, reopen_window=timedelta(0), actor=actor, manual=True, notifications=on)
    attach_runbook(store, incident, project, now, actor)
    if on.muted_by is not None:  # still opened and recorded; it just does not page
        store.add_event(incident.id, at=now, kind=EventKind.NOTIFIED, actor=actor,
                        text=f"not sent: {on.muted_by}", data={"silenced_by": on.muted_by})
    return incident, pipeline.deliver(now, actor=actor)


def delivery_text(incident: Incident, attempts: list[Attempt]) -> str:
    """One line for people: which channels got this incident's page, which will be retried."""
    last = {a.item.id: a for a in attempts if a.item.envelope.incident_id == incident.id}

    def one(a: Attempt) -> str:
        if a.ok:
            return f"{a.item.envelope.channel} ✓"
        then = "retried by the next incident check" if a.retry_at else "gave up"
        return f"{a.item.envelope.channel} ✗ ({then})"

    return "notified " + ", ".join(one(a) for a in last.values()) if last else ""
