"""`incident report trends`: incidents over a period, for the people who fix root causes.

Drills are counted apart (drills run, pass rate) and left out of every other number.

Weeks run Monday 00:00 to Monday 00:00 in the project's time zone, in the table and the chart
alike; the period's first and last weeks are cut at its ends and labelled partial. Week over
week compares the last two whole weeks, since a partial week's counts are not a week's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from incident.model import Incident, Project, Runbook
from incident.reports import metrics
from incident.reports.postmortem import item_json
from incident.reports.render import render, seconds
from incident.store.records import ActionItem
from incident.timeutil import format_duration, iso

if TYPE_CHECKING:
    from incident.store import Store

MAX_INCIDENTS = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class TrendsReport:
    """Everything the trends report shows, computed once for every format."""

    since: datetime
    now: datetime
    period: str
    timezone: str
    incidents: tuple[Incident, ...]  # drills excluded, with timelines
    by_severity: list[tuple[str, int]]
    by_category: list[tuple[str, int]]
    by_check: list[tuple[str, int]]
    weeks: list[metrics.Week]
    recurring: list[metrics.Recurring]
    flapping: list[tuple[str, int]]
    noisiest: list[tuple[str, int]]
    drills: tuple[int, int]
    overdue_runbooks: list[tuple[Runbook, date]]
    open_items: list[ActionItem]
    still_open: int
    plot: str

    @property
    def compared(self) -> tuple[metrics.Week, metrics.Week] | None:
        """The last two whole weeks, the one before and the last, if there are two."""
        whole = [w for w in self.weeks if not w.partial]
        return (whole[-2], whole[-1]) if len(whole) >= 2 else None

    @property
    def week_over_week(self) -> dict[str, float | None]:
        """Relative change of the last whole week against the one before (None: nothing to
        compare)."""
        if self.compared is None:
            return {"incidents": None, "mtta_median": None, "mttr_median": None}
        prev, last = self.compared
        return {"incidents": metrics.change(last.incidents, prev.incidents),
                "mtta_median": metrics.change(seconds(last.mtta_median), seconds(prev.mtta_median)),
                "mttr_median": metrics.change(seconds(last.mttr_median), seconds(prev.mttr_median))}


def build(project: Project, store: Store, since: timedelta, now: datetime, *,
          plot: bool = True) -> TrendsReport:
    """Read the period's incidents (with timelines) and action items and compute every number."""
    start = now - since
    listed = store.list(since=start, limit=MAX_INCIDENTS, include_drills=False)
    real = tuple(store.get(i.id) for i in reversed(listed))
    open_items = store.action_items(open_only=True)
    by_incident: dict[int, list[int]] = {}
    for item in open_items:
        by_incident.setdefault(item.incident_id, []).append(item.id)
    timezone = project.settings.timezone
    weeks = metrics.weekly(real, start, now, timezone)
    today = now.date()
    overdue = sorted(((rb, due) for rb in project.runbooks.values()
                      if (due := rb.review_due()) is not None and due < today),
                     key=lambda x: x[1])
    svg = ""
    if plot and real:
        from incident.reports import plots

        svg = plots.weekly_plot(weeks, [week_label(w, timezone, year=False) for w in weeks])
    return TrendsReport(
        since=start, now=now, period=format_duration(since), timezone=timezone, incidents=real,
        by_severity=metrics.count_by(real, "severity"),
        by_category=metrics.count_by(real, "label:category"),
        by_check=metrics.count_by(real, "check"), weeks=weeks,
        recurring=metrics.recurring(real, by_incident), flapping=metrics.flapping(real),
        noisiest=metrics.noisiest(real),
        drills=metrics.drill_stats(store.drill_runs(since=start, limit=MAX_INCIDENTS)),
        overdue_runbooks=overdue, open_items=open_items,
        still_open=sum(i.resolved_at is None for i in real), plot=svg)


def week_days(week: metrics.Week, timezone: str) -> tuple[date, date]:
    """A week's first and last day in `timezone` (its end is not in it)."""
    tz = ZoneInfo(timezone)
    return (week.start.astimezone(tz).date(),
            (week.end - timedelta(microseconds=1)).astimezone(tz).date())


def week_label(week: metrics.Week, timezone: str, *, year: bool = True) -> str:
    """2026-11-02 – 11-08, or 2026-11-23 – 11-24 (partial): the table's and the chart's label."""
    first, last = week_days(week, timezone)
    text = f"{first:%Y-%m-%d}" if year else f"{first:%m-%d}"
    if last > first:
        text += f" – {last:%Y-%m-%d}" if year and last.year != first.year else f" – {last:%m-%d}"
    return text + (" (partial)" if week.partial else "")


def render_report(report: TrendsReport, fmt: str, project: Project) -> str:
    """The trends report as Markdown or HTML, from the (overridable) templates."""
    return render(project.root, "trends", fmt, {
        "r": report, "tz": report.timezone, "today": report.now.date(),
        "title": f"Incident trends, last {report.period}", "pct": _pct,
        "week": lambda w: week_label(w, report.timezone),
    })


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:+.0%}"


def report_json(report: TrendsReport) -> dict[str, Any]:
    """The same numbers for scripts (durations in seconds, times in UTC)."""
    run, passed = report.drills
    return {
        "since": iso(report.since), "until": iso(report.now), "incidents": len(report.incidents),
        "still_open": report.still_open,
        "by_severity": dict(report.by_severity), "by_category": dict(report.by_category),
        "by_check": dict(report.by_check),
        "weeks": [{"start": iso(w.start), "end": iso(w.end), "partial": w.partial,
                   "incidents": w.incidents, "resolved": w.resolved,
                   "mtta_median": seconds(w.mtta_median), "mtta_p90": seconds(w.mtta_p90),
                   "mttr_median": seconds(w.mttr_median), "mttr_p90": seconds(w.mttr_p90)}
                  for w in report.weeks],
        "week_over_week": report.week_over_week,
        "recurring": [{"fingerprint": r.fingerprint, "check": r.check, "episodes": r.episodes,
                       "incidents": list(r.incident_ids), "last_opened": iso(r.last_opened),
                       "open_action_items": list(r.open_action_items)} for r in report.recurring],
        "flapping": dict(report.flapping), "noisiest": dict(report.noisiest),
        "drills": {"run": run, "passed": passed, "pass_rate": passed / run if run else None},
        "overdue_runbooks": [{"runbook": rb.name, "due": due.isoformat(), "owner": rb.owner}
                             for rb, due in report.overdue_runbooks],
        "open_action_items": [item_json(a, report.now.date()) for a in report.open_items],
    }
