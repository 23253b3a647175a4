"""What a notification says, from Jinja2 templates: the first line is the title, the rest the body."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from incident.model import Incident, Runbook
from incident.timeutil import format_duration, iso

TEMPLATES = Path(__file__).parent / "templates"
FIRST_STEPS = 3  # enough to start on from a phone, before opening the runbook
EVENTS = ("opened", "reopened", "reminder", "escalated", "severity", "acknowledged", "resolved",
          "update")


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A rendered notification."""

    event: str
    title: str
    body: str
    severity: str


def render(incident: Incident, event: str, *, now: datetime, reason: str = "",
           runbook: Runbook | None = None, templates: Path | None = None) -> Message:
    """The message for one incident event: what, since when, value, runbook, what to run."""
    from incident.templating import render as render_template

    verb = {"opened": "OPENED", "reopened": "REOPENED", "severity": "MORE URGENT"}.get(
        event, event.upper())
    context: dict[str, Any] = {
        "incident": incident, "event": event, "verb": verb, "reason": reason,
        "tag": "[DRILL] " if incident.drill else "",
        "runbook": runbook,
        "first_steps": [s for s in (runbook.steps if runbook else ()) if "." not in s.number
                        ][:FIRST_STEPS],
        "detected": _when(incident.detected_at), "opened": _when(incident.opened_at),
        "acknowledged": _when(incident.acknowledged_at), "resolved": _when(incident.resolved_at),
        "open_for": format_duration((incident.resolved_at or now) - incident.opened_at),
    }
    text = render_template(TEMPLATES, f"{event}.txt.j2", context, override=templates)
    return _split(text, event, incident.severity.value)


def digest(messages: list[Message], *, templates: Path | None = None) -> Message:
    """Several messages for one channel as one: a summary line, then one line per incident."""
    from incident.templating import render as render_template

    counts: dict[str, int] = {}
    for m in messages:
        counts[m.event] = counts.get(m.event, 0) + 1
    summary = f"{len(messages)} incident notifications: " + ", ".join(
        f"{n} {event}" for event, n in counts.items())
    drill = all(m.title.startswith("[DRILL]") for m in messages)
    text = render_template(TEMPLATES, "digest.txt.j2",
                           {"summary": summary, "messages": messages,
                            "tag": "[DRILL] " if drill else ""}, override=templates)
    worst = min((m.severity for m in messages),
                key=lambda s: ("critical", "high", "medium", "low").index(s))
    return _split(text, "digest", worst)


def _when(t: datetime | None) -> str:
    """A time for a message: UTC to the second (people do not read microseconds)."""
    return iso(t.replace(microsecond=0)) or "" if t else ""


def _split(text: str, event: str, severity: str) -> Message:
    title, _, body = text.strip("\n").partition("\n")
    return Message(event=event, title=title.strip(), body=body.strip("\n"), severity=severity)
