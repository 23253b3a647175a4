"""What a notification says: the title and body on-call needs at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from incident.model import Incident, Runbook
from incident.timeutil import iso

FIRST_STEPS = 3  # enough to start on from a phone, before opening the runbook


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A rendered notification."""

    event: str  # opened | reopened | resolved
    title: str
    body: str
    severity: str


def render(incident: Incident, event: str, *, now: datetime, reason: str = "",
           runbook: Runbook | None = None) -> Message:
    """The message for one incident event: what, since when, value, runbook, what to run."""
    tag = "[DRILL] " if incident.drill else ""
    verb = {"opened": "OPENED", "reopened": "REOPENED", "resolved": "RESOLVED"}.get(event, event)
    title = f"{tag}[{incident.severity.value.upper()}] {verb} #{incident.id}: {incident.title}"
    lines = [f"{incident.title}"]
    if reason:
        lines.append(f"Why: {reason}")
    if incident.value is not None:
        lines.append(f"Value: {incident.value:.6g}")
    lines.append(f"Detected: {iso(incident.detected_at)}  Opened: {iso(incident.opened_at)}")
    if event == "resolved" and incident.resolved_at is not None:
        took = incident.resolved_at - incident.opened_at
        lines.append(f"Resolved: {iso(incident.resolved_at)} by {incident.resolved_by} "
                     f"after {int(took.total_seconds() // 60)}m")
    if runbook is not None:
        lines.append(f"Runbook: {runbook.title} (runbooks/{runbook.name}.md)")
        if event != "resolved":
            lines += [f"  {s.number}. {s.text}" for s in runbook.steps[:FIRST_STEPS]
                      if "." not in s.number]
    elif incident.runbook:
        lines.append(f"Runbook: runbooks/{incident.runbook}.md")
    if event != "resolved":
        lines.append(f"Work it: incident show {incident.id}  |  incident ack {incident.id}")
    return Message(event=event, title=title, body="\n".join(lines),
                   severity=incident.severity.value)
