"""`incident report postmortem`: one incident's machine-built timeline, times, steps, plots and
the written part (root cause, impact, action items), as Markdown, self-contained HTML or JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from incident.errors import IncidentError
from incident.model import Check, EventKind, Incident, Labels, Project, ThresholdParams
from incident.reports import metrics
from incident.reports.render import render, seconds
from incident.runbooks import StepState, step_states, steps_of
from incident.store.records import ActionItem, Postmortem
from incident.timeutil import iso

if TYPE_CHECKING:
    from incident.sources import Source
    from incident.store import Store

BEFORE = timedelta(hours=1)  # plotted before the first breach
AFTER = timedelta(minutes=30)  # plotted after the resolution
MAX_POINTS = 400


@dataclass(frozen=True, slots=True, kw_only=True)
class Plot:
    """One involved check's series around the incident, as SVG, or why it could not be drawn.

    `incident` is the one whose series, window and first breach are drawn: the report's own for
    its check, another one open at the time for the others (and always, for a manual incident).
    """

    check: str
    incident: int
    svg: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PostmortemReport:
    """Everything a postmortem shows, computed once for every format."""

    incident: Incident
    postmortem: Postmortem
    action_items: tuple[ActionItem, ...]
    steps: tuple[StepState, ...]
    times: Mapping[str, timedelta | None]
    notifications_sent: int
    notifications_failed: int
    plots: tuple[Plot, ...]
    timezone: str
    now: datetime


def build(project: Project, store: Store, incident_id: int, now: datetime,
          sources: Mapping[str, Source], *, plots: bool = True) -> PostmortemReport:
    """Read the incident, its postmortem and action items, and draw its checks' series."""
    incident = store.get(incident_id)
    pm = store.postmortem(incident_id)
    steps = step_states(steps_of(project.runbooks.get(incident.runbook or ""), incident.timeline),
                        incident.timeline)
    # One outcome per (message, channel): a delivery that failed and then succeeded on a retry
    # counts as sent. Events without "ok" (silenced, maintenance) were never attempted.
    outcome: dict[tuple[str, str], bool] = {}
    for e in incident.timeline:
        if e.kind is EventKind.NOTIFIED and "ok" in e.data:
            message = e.data.get("key") or f"{e.data.get('event')}@{e.at.isoformat()}"
            key = (str(message), str(e.data.get("channel")))
            outcome[key] = outcome.get(key, False) or bool(e.data["ok"])
    times = {
        "detect": metrics.time_to_detect(incident),
        "acknowledge": metrics.time_to_acknowledge(incident),
        "mitigate": metrics.time_to_mitigate(incident, pm.mitigated_at),
        "resolve": metrics.time_to_resolve(incident),
        "open_for": metrics.open_for(incident, now),
    }
    drawn = tuple(_plots(project, store, incident, now, sources)) if plots else ()
    return PostmortemReport(
        incident=incident, postmortem=pm, action_items=tuple(store.action_items(
            incident_ids=[incident_id])), steps=tuple(steps), times=times,
        notifications_sent=sum(outcome.values()),
        notifications_failed=sum(not ok for ok in outcome.values()),
        plots=drawn, timezone=project.settings.timezone, now=now)


def _plots(project: Project, store: Store, incident: Incident, now: datetime,
           sources: Mapping[str, Source]) -> list[Plot]:
    """The incident's check first, then the checks of other incidents open in the same window."""
    start = incident.detected_at - BEFORE
    end = min(now, (incident.resolved_at or now) + AFTER)
    involved: dict[str, list[Incident]] = {}
    if incident.check:
        involved[incident.check] = [incident]
    for other in store.list(since=start - timedelta(days=1), limit=1000,
                            include_drills=incident.drill):
        if other.check and other.id != incident.id and other.opened_at <= end \
                and (other.resolved_at is None or other.resolved_at >= start):
            involved.setdefault(other.check, []).append(other)
    out = []
    for name, incidents in involved.items():
        try:
            check = project.check(name)
        except KeyError:
            continue  # the check was deleted since
        if not check.query or check.source not in sources:
            out.append(Plot(check=name, incident=incidents[0].id,
                            error="this check has no single query to plot"))
            continue
        out.append(_plot(check, sources[check.source], incidents, start, end, now, project))
    return out


def _plot(check: Check, source: Source, incidents: list[Incident], start: datetime,
          end: datetime, now: datetime, project: Project) -> Plot:
    from incident.reports import plots

    first = incidents[0]
    step = max(check.every, (end - start) / MAX_POINTS)
    try:
        frame = source.query_range(check.query, start, end, step)
    except IncidentError as exc:
        return Plot(check=check.name, incident=first.id, error=f"could not read the series: {exc}")
    if frame.empty or frame.shape[1] == 0:
        return Plot(check=check.name, incident=first.id,
                    error="the source has no data for this period")
    mine = [c for c in frame.columns if any(_belongs(c, i) for i in incidents)]
    return Plot(check=check.name, incident=first.id, svg=plots.series_plot(
        frame, title=f"{check.name}: {check.description or check.query.strip()}", highlight=mine,
        thresholds=_thresholds(check), window=(first.opened_at, first.resolved_at or now),
        detected_at=first.detected_at, timezone=project.settings.timezone))


def _belongs(column: object, incident: Incident) -> bool:
    """A series belongs to an incident when its labels are among the incident's."""
    return isinstance(column, Labels) and all(
        incident.labels.get(k) == v for k, v in column.items() if k != "__name__")


def _thresholds(check: Check) -> list[tuple[float, str]]:
    p = check.detector
    if not isinstance(p, ThresholdParams):
        return []
    out = [(level, "threshold") for level in (p.above, p.below) if level is not None]
    return out + ([(p.clear, "clear")] if p.clear is not None else [])


def render_report(report: PostmortemReport, fmt: str, project: Project) -> str:
    """The postmortem as Markdown or HTML, from the (overridable) templates."""
    i = report.incident
    return render(project.root, "postmortem", fmt, {
        "r": report, "incident": i, "pm": report.postmortem, "runbook":
        project.runbooks.get(i.runbook or ""), "tz": report.timezone,
        "title": f"Postmortem #{i.id}: {i.title}" + (" [DRILL]" if i.drill else ""),
        "today": report.now.date(),
    })


def report_json(report: PostmortemReport) -> dict[str, Any]:
    """The same numbers for scripts (durations in seconds, times in UTC)."""
    pm = asdict(report.postmortem)
    pm["mitigated_at"], pm["updated_at"] = iso(pm["mitigated_at"]), iso(pm["updated_at"])
    return {
        "incident": incident_json(report.incident),
        "timeline": [{"at": iso(e.at), "kind": e.kind.value, "actor": e.actor, "text": e.text}
                     for e in report.incident.timeline],
        "postmortem": pm,
        "seconds_to": {k: seconds(v) for k, v in report.times.items()},
        "notifications": {"sent": report.notifications_sent, "failed": report.notifications_failed},
        "steps": [{"number": s.step.number, "text": s.step.text, "state": s.state, "by": s.actor,
                   "note": s.note} for s in report.steps],
        "action_items": [item_json(a, report.now.date()) for a in report.action_items],
        "plots": [{"check": p.check, "incident": p.incident, "drawn": bool(p.svg), "error": p.error}
                  for p in report.plots],
    }


def item_json(item: ActionItem, today: date) -> dict[str, Any]:
    """An action item for --json, with its overdue flag."""
    return {"id": item.id, "incident": item.incident_id, "text": item.text, "owner": item.owner,
            "due": item.due.isoformat() if item.due else None, "status": item.status,
            "overdue": item.overdue(today), "created_at": iso(item.created_at),
            "done_at": iso(item.done_at)}


def incident_json(i: Incident) -> dict[str, Any]:
    """The incident's facts for --json (the timeline is listed apart)."""
    return {"id": i.id, "fingerprint": i.fingerprint, "check": i.check, "title": i.title,
            "status": i.status.value, "severity": i.severity.value, "labels": dict(i.labels),
            "runbook": i.runbook, "drill": i.drill, "reopened": i.reopened,
            "detected_at": iso(i.detected_at), "opened_at": iso(i.opened_at),
            "acknowledged_at": iso(i.acknowledged_at), "resolved_at": iso(i.resolved_at)}
