"""How incidents and runs look on a terminal and in --json (JSON times are always UTC)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from incident.app import local_time
from incident.engine import RunReport, State
from incident.model import Check, DrillRun, Incident, Labels, Project, Runbook, TimelineEvent
from incident.runbooks import HistoryEntry, StepState
from incident.timeutil import format_duration, iso

if TYPE_CHECKING:
    from incident.drills.coverage import Coverage
    from incident.drills.schedule import DrillStatus


def incident_json(incident: Incident) -> dict[str, Any]:
    """An incident as a JSON-ready dict."""
    out: dict[str, Any] = {
        "id": incident.id, "fingerprint": incident.fingerprint, "check": incident.check,
        "title": incident.title, "status": incident.status.value,
        "severity": incident.severity.value, "labels": dict(incident.labels),
        "runbook": incident.runbook, "value": incident.value,
        "detected_at": iso(incident.detected_at), "opened_at": iso(incident.opened_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "resolved_at": iso(incident.resolved_at), "resolved_by": incident.resolved_by,
        "reopened": incident.reopened, "drill": incident.drill, "manual": incident.manual,
    }
    if incident.timeline:
        out["timeline"] = [event_json(e) for e in incident.timeline]
    return out


def event_json(event: TimelineEvent) -> dict[str, Any]:
    """A timeline event as a JSON-ready dict."""
    return {"at": iso(event.at), "kind": event.kind.value, "actor": event.actor,
            "text": event.text, "data": dict(event.data)}


def incident_line(incident: Incident, project: Project) -> str:
    """One line of `incident list`."""
    flags = " [drill]" if incident.drill else ""
    return (f"#{incident.id:<5} {incident.status.value:<12} {incident.severity.value:<8} "
            f"{local_time(incident.opened_at, project):<24} {incident.title}{flags}")


def incident_text(incident: Incident, project: Project, steps: Sequence[StepState] = ()) -> str:
    """The full `incident show` view: facts, runbook steps with their state, timeline."""
    lines = [f"#{incident.id} {incident.title}",
             f"  status      {incident.status.value}" + (
                 f" (reopened {incident.reopened}×)" if incident.reopened else ""),
             f"  severity    {incident.severity.value}",
             f"  fingerprint {incident.fingerprint}"]
    if incident.labels:
        lines.append("  labels      " + ", ".join(f"{k}={v}" for k, v in incident.labels.items()))
    if incident.value is not None:
        lines.append(f"  value       {incident.value:.6g}")
    lines.append(f"  detected    {local_time(incident.detected_at, project)}")
    lines.append(f"  opened      {local_time(incident.opened_at, project)}"
                 f"  (time to detect {format_duration(incident.opened_at - incident.detected_at)})")
    if incident.acknowledged_at:
        lines.append(f"  acknowledged {local_time(incident.acknowledged_at, project)} "
                     f"by {incident.acknowledged_by}")
    if incident.resolved_at:
        lines.append(f"  resolved    {local_time(incident.resolved_at, project)} "
                     f"by {incident.resolved_by} (after "
                     f"{format_duration(incident.resolved_at - incident.opened_at)})")
    if incident.runbook:
        runbook = project.runbooks.get(incident.runbook)
        title = f"{runbook.title} " if runbook else ""
        lines.append(f"  runbook     {title}(runbooks/{incident.runbook}.md)")
    if steps:
        lines += ["", "Runbook steps"]
        for st in steps:
            mark = {"done": "[x]", "skipped": "[-]"}.get(st.state, "[ ]")
            indent = "  " * st.step.number.count(".")
            who = f"  ({st.state} by {st.actor}" + (f": {st.note}" if st.note else "") + ")" \
                if st.state != "pending" else ""
            lines.append(f"  {indent}{mark} {st.step.number}. {st.step.text}{who}")
        lines.append(f"  mark one: incident step {incident.id} N --done | --skip [--note TEXT]")
    if incident.timeline:
        lines.append("")
        lines.append("Timeline")
        for e in incident.timeline:
            lines.append(f"  {local_time(e.at, project)}  {e.kind.value:<12} {e.actor}: {e.text}")
    return "\n".join(lines)


def report_json(report: RunReport) -> dict[str, Any]:
    """A check run as a JSON-ready dict."""
    return {
        "at": iso(report.at), "dry_run": report.dry_run,
        "checks": [{
            "check": r.check, "source": r.source, "series": r.series, "error": r.error,
            "firing": [f.fingerprint for f in r.findings if f.state is State.FIRING],
            "no_data": [f.fingerprint for f in r.findings if f.state is State.NO_DATA],
            "actions": [_action_json(a) for a in r.actions],
        } for r in report.results],
        "source_actions": [_action_json(a) for a in report.source_actions],
    }


def _action_json(a: Any) -> dict[str, Any]:
    return {"action": a.kind, "fingerprint": a.fingerprint, "incident": a.incident_id,
            "reason": a.reason,
            "notified": [{"channel": c, "ok": ok} for c, ok in a.notified]}


def report_text(report: RunReport, project: Project) -> str:
    """A check run for people: one line per check, one more per change."""
    lines = [f"{local_time(report.at, project)}  {len(report.results)} checks"
             + ("  (dry run: nothing written or sent)" if report.dry_run else "")]
    for r in report.results:
        firing = [f for f in r.findings if f.state is State.FIRING]
        if r.error:
            status, detail = "ERROR", r.error
        elif firing:
            status = "FIRING"
            detail = "; ".join(
                ", ".join(f"{k}={v}" for k, v in f.labels.items()) + (" " if len(f.labels) else "")
                + f.reason for f in firing)
        else:
            status = "ok"
            nodata = sum(f.state is State.NO_DATA for f in r.findings)
            detail = f"{r.series} series" + (f", {nodata} without data" if nodata else "")
        lines.append(f"  {status:<7} {r.check:<28} {detail}")
        for a in r.actions:
            lines.append("          " + _action_text(a))
    for a in report.source_actions:
        lines.append("          " + _action_text(a))
    return "\n".join(lines)


def _action_text(a: Any) -> str:
    ref = f"#{a.incident_id} " if a.incident_id else ""
    sent = ", ".join(f"{c} {'✓' if ok else '✗ (will show on the timeline)'}"
                     for c, ok in a.notified)
    return f"→ {a.kind} {ref}{a.fingerprint}" + (f"; notified {sent}" if sent else "")


def check_json(check: Check) -> dict[str, Any]:
    """A check's definition as a JSON-ready dict."""
    params = {k.rstrip("_"): _plain(v) for k in check.detector.__slots__
              if (v := getattr(check.detector, k)) is not None}
    return {"name": check.name, "description": check.description, "source": check.source,
            "query": check.query, "every": format_duration(check.every),
            "lookback": format_duration(check.lookback),
            "detector": {"type": check.detector_type, **params},
            "severity": check.severity.value, "labels": dict(check.labels),
            "runbook": check.runbook, "group_by": list(check.group_by),
            "no_data": check.no_data.value,
            "defined_at": str(check.position) if check.position else None}


def _plain(value: Any) -> Any:
    """Durations, enums, tuples and nested params as JSON values."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "__slots__") and not isinstance(value, str | int | float | bool):
        return {k.rstrip("_"): _plain(getattr(value, k)) for k in value.__slots__
                if getattr(value, k) is not None}
    return value


def query_text(data: dict[str, Any]) -> str:
    """A query result in the `promtool query` style: one `labels => value @[t]` line each."""
    kind, result = data["resultType"], data["result"]
    if kind in ("scalar", "string"):
        return f"{kind} => {result[1]} @[{result[0]}]"
    lines = []
    for item in result:
        metric = Labels(item["metric"])
        if "value" in item:
            lines.append(f"{metric} => {item['value'][1]} @[{item['value'][0]}]")
        else:
            points = "\n".join(f"  {v} @[{t}]" for t, v in item["values"])
            lines.append(f"{metric} =>\n{points}")
    return "\n".join(lines) or "(no data)"


def runbook_row(runbook: Runbook, today: date, used: int) -> dict[str, Any]:
    """One runbook for `runbook list`: owner, review state and how often it was used."""
    due = runbook.review_due()
    return {"name": runbook.name, "title": runbook.title, "owner": runbook.owner,
            "severity": runbook.severity.value if runbook.severity else None,
            "checks": list(runbook.checks), "tags": list(runbook.tags),
            "steps": len(runbook.steps),
            "reviewed": runbook.reviewed.isoformat() if runbook.reviewed else None,
            "review_due": due.isoformat() if due else None,
            "overdue": bool(due and due < today), "incidents": used}


def runbook_text(runbook: Runbook, history: Sequence[HistoryEntry], today: date,
                 project: Project) -> str:
    """A runbook for a terminal: title, facts, the body with steps, then its history."""
    due = runbook.review_due()
    lines = [runbook.title, "=" * len(runbook.title)]
    facts = [("owner", runbook.owner or "-"),
             ("severity", runbook.severity.value if runbook.severity else "-"),
             ("checks", ", ".join(runbook.checks) or "-"),
             ("tags", ", ".join(runbook.tags) or "-"),
             ("reviewed", (f"{runbook.reviewed}" if runbook.reviewed else "never")
              + (f", next due {due}" + (" (OVERDUE)" if due < today else "") if due else ""))]
    lines += [f"{k:>9}: {v}" for k, v in facts]
    lines += ["", _terminal_markdown(runbook.body).rstrip(), "", "History", "-------"]
    if not history:
        lines.append("No incident has used this runbook yet.")
    for h in history:
        i = h.incident
        took = format_duration(h.time_to_resolve) if h.time_to_resolve else "still open"
        drill = " [drill]" if i.drill else ""
        lines.append(f"#{i.id} {local_time(i.opened_at, project)}  {i.title}{drill}  "
                     f"resolved in {took}")
        lines += [f"    learned: {t}" for t in h.learned]
        lines += [f"    note: {t}" for t in h.notes]
        lines += [f"    skipped step {t}" for t in h.skipped]
    return "\n".join(lines)


def _terminal_markdown(body: str) -> str:
    """Markdown made easy to read on a terminal: headings underlined, fences dropped."""
    out = []
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not line.startswith(" "):
            text = stripped.lstrip("#").strip()
            out += ["", text.upper() if stripped.startswith("# ") else text,
                    "-" * len(text)]
        elif stripped.startswith(("```", "~~~")):
            continue
        else:
            out.append(line)
    return "\n".join(out).strip("\n")


def drill_rows(statuses: Sequence[DrillStatus], project: Project) -> list[dict[str, Any]]:
    """`incident drill list --json`: each drill's schedule, last run and next due time."""
    return [{"drill": s.drill.name, "schedule": s.drill.schedule, "timezone": s.drill.timezone,
             "last_run": s.last.id if s.last else None,
             "last_result": s.last.status if s.last else None,
             "last_at": local_time(s.last.started_at, project) if s.last else None,
             "due": s.due, "next_due": local_time(s.next_due, project) if s.next_due else None,
             "description": s.drill.description} for s in statuses]


def drill_list_text(rows: Sequence[dict[str, Any]]) -> str:
    """`incident drill list`: one line a drill."""
    if not rows:
        return "no drills: add drills/NAME.yaml (incident drill generate CHECK)"
    lines = [f"{'DRILL':<22} {'SCHEDULE':<14} {'LAST RUN':<27} {'RESULT':<8} NEXT DUE"]
    for d in rows:
        last = f"#{d['last_run']} {d['last_at']}" if d["last_run"] else "never"
        nxt = "due now" if d["due"] else d["next_due"] or "-"
        lines.append(f"{d['drill']:<22} {d['schedule'] or '-':<14} {last:<27} "
                     f"{d['last_result'] or '-':<8} {nxt}")
    return "\n".join(lines)


def drill_run_json(run: DrillRun) -> dict[str, Any]:
    """One journal row for scripts."""
    return {"run": run.id, "mode": run.mode, "status": run.status, "actor": run.actor,
            "started_at": iso(run.started_at), "scorecard": dict(run.scorecard)}


def drill_history_text(name: str, runs: Sequence[DrillRun], project: Project) -> str:
    """`incident drill history NAME`: each run, with why it failed or was aborted."""
    if not runs:
        return f"{name} has never run: incident drill run {name}"
    lines = []
    for r in runs:
        expectations = r.scorecard.get("expectations", [])
        passed = sum(e["status"] == "passed" for e in expectations)
        lines.append(f"#{r.id:<4} {local_time(r.started_at, project)}  {r.mode:<6} "
                     f"{r.status:<8} {passed}/{len(expectations)} expectations  by {r.actor}")
        lines += [f"        aborted: {why}" for why in r.scorecard.get("aborted_because", [])]
        lines += [f"        FAIL {e['expectation']}: {e['reason']}" for e in expectations
                  if e["status"] == "failed"]
    return "\n".join(lines)


def coverage_json(cov: Coverage) -> dict[str, Any]:
    """`incident drill coverage --json`."""
    return {"checks": {k: list(v) for k, v in cov.checks.items()},
            "runbooks": {k: list(v) for k, v in cov.runbooks.items()},
            "uncovered_checks": cov.uncovered_checks,
            "unrehearsed_runbooks": cov.unrehearsed_runbooks}


def coverage_text(cov: Coverage) -> str:
    """`incident drill coverage`: every check and runbook with the drills that reach it."""
    lines = [f"{kind:<8} {name:<28} {', '.join(drills) or 'NOT EXERCISED'}"
             for kind, table in (("check", cov.checks), ("runbook", cov.runbooks))
             for name, drills in table.items()]
    lines.append(f"{len(cov.checks) - len(cov.uncovered_checks)}/{len(cov.checks)} checks and "
                 f"{len(cov.runbooks) - len(cov.unrehearsed_runbooks)}/{len(cov.runbooks)} "
                 "runbooks exercised by a drill")
    return "\n".join(lines)
