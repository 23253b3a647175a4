"""The plan stage: which channels an incident event goes to, muted or not, as envelopes with keys.

Pure: the caller passes the incident, the settings, the silences and `now`. The event key makes
each envelope idempotent: opened, reopened:<n>, resolved:<n>, acknowledged:<n>, reminder:<k>,
escalated, update:<timeline event id> (n = the incident's reopen count). A reopened incident's
reminders and escalation count afresh from the reopen: reminder:<n>:<k>, escalated:<n>.
An acknowledgement or a resolution also goes to the channels this episode's escalation paged.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from incident.model import DRILL_PREFIX, Envelope, IfPaged, Incident, Runbook, Settings, Silence, Status
from incident.notify.message import render
from incident.notify.routing import active_window, attributes, channels, matching_routes
from incident.notify.silence import muting

# Drill incidents are routed like real ones onto these names; only the drill run that opened
# them claims and delivers them, to the project's drill stand-in for the channel.
DRILL_CHANNEL = DRILL_PREFIX
# Events people post or take themselves: a silence or a window never holds them back.
UNMUTED = ("update", "acknowledged")
# Events that tell everyone paged to take the incident that it was taken (or is over).
ANSWERS = ("acknowledged", "resolved")


@dataclass(frozen=True, slots=True)
class Plan:
    """The envelopes for one event, or why there are none."""

    envelopes: list[Envelope] = field(default_factory=list)
    muted_by: str | None = None  # "maintenance window nightly", "silence #3 (deploy)"


def event_key(incident: Incident, event: str, detail: str | int | None = None) -> str:
    """The idempotency key of an event of this incident."""
    if event in ("reopened", "resolved", "acknowledged"):
        return f"{event}:{incident.reopened}"
    if event == "severity":  # once per level reached, per episode
        return f"severity:{incident.severity.value}:{incident.reopened}"
    return event if detail is None else f"{event}:{detail}"


def opening_key(incident: Incident) -> str:
    """The key of the event that opened the incident's current episode."""
    return event_key(incident, "reopened") if incident.reopened else "opened"


def escalation_key(incident: Incident) -> str:
    """The key of the escalation of the incident's current episode."""
    return f"escalated:{incident.reopened}" if incident.reopened else "escalated"


def targets(settings: Settings, incident: Incident, event: str) -> list[str]:
    """The channels an event of this incident goes to according to the routes."""
    routes = matching_routes(settings.routes, attributes(incident.severity, incident.check,
                                                         incident.labels))
    if event == "escalated":
        return list(dict.fromkeys(c for r in routes if r.escalate for c in r.escalate.notify))
    return channels(routes)


def plan(settings: Settings, runbooks: Mapping[str, Runbook], incident: Incident, event: str,
         now: datetime, *, key: str | None = None, reason: str = "",
         silences: Sequence[Silence] = (), to: Sequence[str] | None = None) -> Plan:
    """Route, mute, render: the envelopes for one event (a drill's go to drill: channels).

    An answer (ANSWERS) also goes to each escalation channel, as an IfPaged: only if this
    episode's escalation was enqueued for it.
    """
    chosen = list(dict.fromkeys(to)) if to is not None else targets(settings, incident, event)
    paged = [c for c in targets(settings, incident, "escalated") if c not in chosen] \
        if to is None and event in ANSWERS else []
    if incident.drill:
        if incident.status is Status.RESOLVED and event != "resolved":
            return Plan()  # the drill is over: nobody would deliver it
        # Only a drill run delivers these (see DRILL_CHANNEL): a drill never pages for real.
        chosen = [DRILL_CHANNEL + c for c in chosen]
        paged = [DRILL_CHANNEL + c for c in paged]
    if not chosen and not paged:
        return Plan()
    if event not in UNMUTED:
        attrs = attributes(incident.severity, incident.check, incident.labels)
        window = active_window(settings.maintenance, attrs, now)
        if window is not None:
            return Plan(muted_by=f"maintenance window {window.name}")
        silence = muting(silences, attrs, now)
        if silence is not None:
            return Plan(muted_by=f"silence #{silence.id}"
                                 + (f" ({silence.comment})" if silence.comment else ""))
    message = render(incident, event, now=now, reason=reason,
                     runbook=runbooks.get(incident.runbook or ""),
                     templates=settings.delivery.templates)
    key = key or event_key(incident, event)
    common: dict[str, Any] = {"incident_id": incident.id, "event": event, "event_key": key,
                              "title": message.title, "body": message.body,
                              "severity": message.severity}
    return Plan(envelopes=[*(Envelope(channel=c, **common) for c in chosen),
                           *(IfPaged(channel=c, paged_by=escalation_key(incident), **common)
                             for c in paged)])


def due_repeats(settings: Settings, runbooks: Mapping[str, Runbook], incidents: Sequence[Incident],
                now: datetime, silences: Sequence[Silence] = (),
                reopened_at: Mapping[int, datetime] | None = None,
                held: Collection[int] = ()) -> list[Envelope]:
    """Openings, reminders and escalations owed now by unacknowledged incidents; stateless and
    idempotent (an opening is owed for the `held` incidents once no silence or window holds it).

    reminder:<k> with k whole `repeat`s since opened; `escalated` once `escalate.after` passed.
    A reopened incident counts both from its last reopen (`reopened_at`, by incident id), with
    keys of that episode: the acknowledgement went with the previous episode, so does its clock.
    """
    out: list[Envelope] = []
    for incident in incidents:
        if incident.status is not Status.OPEN:
            continue
        # An opening a silence or a window held back (`held`: no outbox row for it) is owed
        # once nothing holds it back: an incident still open when its silence ends pages then,
        # as Alertmanager does. Its key is the opening's own, so it goes out once.
        if incident.id in held:
            out += plan(settings, runbooks, incident, "reopened" if incident.reopened else "opened",
                        now, silences=silences,
                        reason="held back when it opened (silence or maintenance window)").envelopes
        start = (reopened_at or {}).get(incident.id, incident.opened_at)
        age, ep = now - start, f"{incident.reopened}:" if incident.reopened else ""
        routes = matching_routes(settings.routes, attributes(incident.severity, incident.check,
                                                             incident.labels))
        for route in routes:
            if route.repeat and age >= route.repeat:
                k = int(age / route.repeat)
                out += plan(settings, runbooks, incident, "reminder", now,
                            key=f"reminder:{ep}{k}",
                            silences=silences, to=route.notify).envelopes
            if route.escalate and age >= route.escalate.after:
                out += plan(settings, runbooks, incident, "escalated", now,
                            key=escalation_key(incident),
                            silences=silences, to=route.escalate.notify).envelopes
    return out
