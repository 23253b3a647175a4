"""What the CLI's notification commands call: ack, resolve, status updates, route tests, the outbox view."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from incident.errors import UsageError
from incident.model import Attempt, EventKind, Incident, Project, Severity
from incident.notify.pipeline import OnChange, Pipeline
from incident.notify.routing import attributes, matching_routes

if TYPE_CHECKING:
    from incident.store import Store


def _pipeline(project: Project, store: Store) -> Pipeline:
    from incident.notify import Notifier

    return Pipeline(project, store, Notifier(project.settings, project.root))


def acknowledge(project: Project, store: Store, incident_id: int, *, actor: str, now: datetime
                ) -> tuple[Incident, bool, list[Attempt]]:
    """Acknowledge, enqueue the `acknowledged` notification with it, and deliver what is due."""
    return _announced(project, store, "acknowledged", now, actor, lambda on: store.acknowledge(
        incident_id, at=now, actor=actor, notifications=on))


def resolve(project: Project, store: Store, incident_id: int, *, actor: str, now: datetime,
            text: str = "") -> tuple[Incident, bool, list[Attempt]]:
    """Resolve by hand, enqueue the `resolved` notification with it (the note as its reason),
    and deliver what is due; a channel that fails is retried by the next `incident check`."""
    return _announced(project, store, "resolved", now, actor, lambda on: store.resolve(
        incident_id, at=now, actor=actor, text=text, notifications=on), reason=text)


def _announced(project: Project, store: Store, event: str, now: datetime, actor: str,
               change: Callable[[OnChange], tuple[Incident, bool]], reason: str = ""
               ) -> tuple[Incident, bool, list[Attempt]]:
    """A person's change with its notification in the same transaction, delivered at once."""
    pipeline = _pipeline(project, store)
    on = pipeline.on(event, now, reason)
    incident, changed = change(on)
    if not changed:
        return incident, False, []
    if on.muted_by is not None:  # done and recorded; the silence only keeps it from paging
        store.add_event(incident.id, at=now, kind=EventKind.NOTIFIED, actor=actor,
                        text=f"not sent: {on.muted_by}", data={"silenced_by": on.muted_by})
    return incident, True, pipeline.deliver(now, actor=actor)


def post_update(project: Project, store: Store, incident_id: int, text: str, *, actor: str,
                now: datetime, to: Sequence[str] = ()) -> tuple[Incident, list[Attempt]]:
    """A status update on the timeline, sent to the incident's channels, the stakeholders and `to`."""
    from incident.notify.plan import targets

    unknown = [c for c in to if c not in project.settings.channels]
    if unknown:
        raise UsageError(f"unknown channel {unknown[0]!r} (known: "
                         f"{', '.join(sorted(project.settings.channels)) or 'none'})")
    pipeline = _pipeline(project, store)
    incident = store.get(incident_id)
    channels = [*targets(project.settings, incident, "update"), *project.settings.stakeholders,
                *to]
    incident = store.post_update(incident_id, at=now, actor=actor, text=text,
                                 notifications=pipeline.on("update", now, text, to=channels))
    return incident, pipeline.deliver(now, actor=actor)


def route_test(project: Project, *, severity: str, check: str | None,
               labels: Mapping[str, str]) -> dict[str, Any]:
    """Which routes and channels a hypothetical incident reaches (like `amtool config routes test`)."""
    routes = project.settings.routes
    matched = matching_routes(routes, attributes(Severity(severity), check, labels))
    channels = project.settings.channels
    return {
        "attributes": attributes(Severity(severity), check, labels),
        "routes": [{"index": routes.index(r), "name": r.name or f"routes[{routes.index(r)}]",
                    "match": dict(r.match), "match_re": dict(r.match_re),
                    "notify": [{"channel": c, "url": channels[c].redacted if c in channels
                                else None} for c in r.notify],
                    "repeat": r.repeat.total_seconds() if r.repeat else None,
                    "escalate": {"after": r.escalate.after.total_seconds(),
                                 "notify": list(r.escalate.notify)} if r.escalate else None,
                    "continue": r.continue_} for r in matched],
        "channels": list(dict.fromkeys(c for r in matched for c in r.notify)),
    }
