"""A scorecard for people: a plain-text table for the terminal, Markdown and JSON on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incident.timeutil import format_duration

if TYPE_CHECKING:
    from incident.drills.run import Scorecard

MARKS = {"passed": "PASS", "failed": "FAIL", "skipped": "skip"}
MEASURES = (("detect", "detected"), ("open", "opened"), ("notify", "notified"),
            ("resolve", "resolved"), ("acknowledge", "acknowledged"), ("open_for", "open for"),
            ("steps", "steps done"))


def measured(values: dict[str, float]) -> str:
    """`detected +2m, opened +7m`: each time after the fault began."""
    parts = []
    for key, label in MEASURES:
        if key in values:
            v = values[key]
            text = f"{v:g}" if key == "steps" else (
                ("+" if key in ("detect", "open", "notify") else "")
                + format_duration(_seconds(v)))
            if key == "resolve":
                text = format_duration(_seconds(v)) + " after the fault ended"
            parts.append(f"{label} {text}")
    return ", ".join(parts)


def _seconds(v: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=v)


def text(card: Scorecard, when: str) -> str:
    """The scorecard as the terminal shows it."""
    head = (f"drill {card.drill} #{card.run_id} ({card.mode}, {when}, "
            f"{format_duration(card.end - card.start)}): {card.status.upper()}"
            f" in {card.elapsed:.1f}s")
    lines = [head]
    if card.roles:
        lines.append("  roles: " + ", ".join(f"{r} {who}" for r, who in card.roles.items()))
    if card.outcomes:
        lines.append("  (times after the check's fault began; incidents after the drill began)")
    for reason in card.aborted_because:
        lines.append(f"  aborted: steady state not met: {reason}")
    width = max((len(o.expectation) for o in card.outcomes), default=0)
    for o in card.outcomes:
        detail = "; ".join(p for p in (measured(dict(o.measured)), o.reason) if p)
        lines.append(f"  {MARKS[o.status]}  {o.expectation.ljust(width)}  {detail}".rstrip())
    for d in card.deviated:
        lines.append(f"  deviated: {d}")
    if card.incidents:
        lines.append("  incidents: " + "; ".join(
            f"#{i['id']} {i['fingerprint']} +{i['opened']}"
            + (f"–+{i['resolved']}" if i["resolved"] else "") for i in card.incidents))
    return "\n".join(lines)


def markdown(card: Scorecard, when: str) -> str:
    """The scorecard as a Markdown page (saved under reports/drills/)."""
    out = [f"# Drill {card.drill} #{card.run_id}: {card.status.upper()}", "",
           f"- mode: {card.mode}", f"- scenario clock: {when}",
           f"- duration: {format_duration(card.end - card.start)}",
           f"- run took: {card.elapsed:.1f}s"]
    out += [f"- {role}: {who}" for role, who in card.roles.items()] + [""]
    if card.outcomes:
        out += ["Measured times are after the check's fault began; incident times after the "
                "drill began.", ""]
    if card.aborted_because:
        out += ["## Aborted: steady state not met", ""]
        out += [f"- {_md(r)}" for r in card.aborted_because] + [""]
    if card.outcomes:
        out += ["## Expectations", "", "| result | expectation | measured | why |",
                "|---|---|---|---|"]
        out += [f"| {MARKS[o.status]} | {_md(o.expectation)} | {measured(dict(o.measured))} "
                f"| {_md(o.reason)} |" for o in card.outcomes] + [""]
    if card.deviated:
        out += ["## Deviations", ""] + [f"- {_md(d)}" for d in card.deviated] + [""]
    if card.incidents:
        out += ["## Drill incidents", "", "| # | fingerprint | severity | runbook | opened |"
                " resolved |", "|---|---|---|---|---|---|"]
        out += [f"| {i['id']} | {_md(i['fingerprint'])} | {i['severity']} | "
                f"{_md(i['runbook'] or '')} | +{i['opened']} | "
                f"{'+' + i['resolved'] if i['resolved'] else 'open at the end (restored)'} |"
                for i in card.incidents] + [""]
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def save(card: Scorecard, when: str, reports: Path) -> Path:
    """Write reports/drills/NAME-RUN.md and .json; the Markdown path."""
    folder = reports / "drills"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{card.drill}-{card.run_id}"
    stem.with_suffix(".json").write_text(json.dumps(card.as_dict(), indent=2) + "\n",
                                         encoding="utf-8")
    path = stem.with_suffix(".md")
    path.write_text(markdown(card, when), encoding="utf-8")
    return path
