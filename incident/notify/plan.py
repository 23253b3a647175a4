"""The plan stage: which channels an incident event goes to, muted or not, as envelopes with keys.

Pure: the caller passes the incident, the settings, the silences and `now`. The event key makes
each envelope idempotent: opened, reopened:<n>, resolved:<n>, acknowledged:<n>, reminder:<k>,
escalated, update:<timeline event id> (n = the incident's reopen count). A reopened incident's
reminders and escalation count afresh from the reopen: reminder:<n>:<k>, escalated:<n>.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from incident.model import DRILL_PREFIX, Envelope, Incident, Runbook, Settings, Silence, Status
from incident.notify.message import render
from incident.notify.routing import active_window, attributes, channels, matching_routes
from incident.notify.silence import muting

# Drill incidents are routed like real ones onto these names; only the drill run that opened
# them claims and delivers them, to the project's drill stand-in for the channel.
DRILL_CHANNEL = DRILL_PREFIX
# Events people post or take themselves: a silence or a window never holds them back.
UNMUTED = ("update", "acknowledged")


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
    """Route, mute, render: the envelopes for one event (a drill's go to drill: channels)."""
    chosen = list(dict.fromkeys(to)) if to is not None else targets(settings, incident, event)
    if incident.drill:
        if incident.status is Status.RESOLVED and event != "resolved":
            return Plan()  # the drill is over: nobody would deliver it
        # Only a drill run delivers these (see DRILL_CHANNEL): a drill never pages for real.
        chosen = [DRILL_CHANNEL + c for c in chosen]
    if not chosen:
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
    return Plan(envelopes=[Envelope(incident_id=incident.id, event=event, event_key=key,
                                    channel=c, title=message.title, body=message.body,
                                    severity=message.severity) for c in chosen])


def due_repeats(settings: Settings, runbooks: Mapping[str, Runbook], incidents: Sequence[Incident],
                now: datetime, silences: Sequence[Silence] = (),
                reopened_at: Mapping[int, datetime] | None = None) -> list[Envelope]:
    """Reminders and escalations owed now by unacknowledged incidents; stateless and idempotent.

    reminder:<k> with k whole `repeat`s since opened; `escalated` once `escalate.after` passed.
    A reopened incident counts both from its last reopen (`reopened_at`, by incident id), with
    keys of that episode: the acknowledgement went with the previous episode, so does its clock.
    """
    out: list[Envelope] = []
    for incident in incidents:
        if incident.status is not Status.OPEN:
            continue
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
                            key=f"escalated:{incident.reopened}" if ep else "escalated",
                            silences=silences, to=route.escalate.notify).envelopes
    return out
