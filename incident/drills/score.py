"""Scoring: each expectation of a drill against the incidents and timelines the run produced.

Pure: the caller passes the incidents (with timelines), the drill's start and the project's
drill channels. Times are measured from the start of the fault that concerns the check (the
drill start when no fault names it), so "detected +2m" reads as two minutes after the trouble
began.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from incident.model import Drill, EventKind, Expectation, ExpectKind, Incident, Labels
from incident.notify.plan import DRILL_CHANNEL
from incident.timeutil import format_duration

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
LIVE_ONLY = (ExpectKind.ACKNOWLEDGED, ExpectKind.STEPS)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One expectation, scored."""

    expectation: str
    status: str  # passed | failed | skipped
    reason: str = ""
    measured: Mapping[str, float] = field(default_factory=dict)  # name → seconds
    incident_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What scoring needs to know besides the incidents."""

    start: datetime
    end: datetime
    live: bool
    stand_ins: frozenset[str]  # channels with a drill stand-in or listed in real_channels
    hints: Mapping[str, str] = field(default_factory=dict)  # check → why it may not have fired


def score(drill: Drill, incidents: Sequence[Incident], ctx: Context) -> list[Outcome]:
    """Every expectation of the drill, passed, failed (with why) or skipped."""
    return [_score(drill, e, incidents, ctx) for e in drill.expect]


def fault_start(drill: Drill, check: str | None) -> timedelta:
    """When the trouble for a check began: its first fault, else the first fault at all."""
    own = [i.start for i in drill.inject if check is not None and i.check == check]
    return min(own or [i.start for i in drill.inject] or [timedelta(0)])


def fault_end(drill: Drill, check: str | None) -> timedelta:
    """When the trouble for a check ended: its last fault's end, else the last fault's."""
    own = [i.end for i in drill.inject if check is not None and i.check == check]
    return max(own or [i.end for i in drill.inject] or [timedelta(0)])


def _matching(e: Expectation, incidents: Sequence[Incident]) -> list[Incident]:
    return [i for i in incidents if (e.check is None or i.check == e.check)
            and all(i.labels.get(k) == v for k, v in e.labels.items())]


def _late(what: str, took: timedelta, within: timedelta | None) -> str | None:
    if within is not None and took > within:
        return f"{what} after {format_duration(took)}, later than {format_duration(within)}"
    return None


def _score(drill: Drill, e: Expectation, incidents: Sequence[Incident], ctx: Context
           ) -> Outcome:
    name = e.describe()
    if e.kind in LIVE_ONLY and not ctx.live:
        return Outcome(expectation=name, status=SKIPPED, reason="scored in live drills only")
    found = _matching(e, incidents)
    origin = ctx.start + fault_start(drill, e.check)
    if e.kind is ExpectKind.NO_INCIDENT:
        if not found:
            return Outcome(expectation=name, status=PASSED)
        first = found[0]
        return Outcome(expectation=name, status=FAILED, incident_id=first.id,
                       reason=f"#{first.id} {first.fingerprint.split(':', 2)[-1]} opened "
                              f"+{format_duration(first.opened_at - ctx.start)}")
    if not found:
        what = f"{e.check}{Labels(e.labels) if e.labels else ''}" if e.check else "any check"
        if e.kind is not ExpectKind.INCIDENT:  # the incident expectation says why
            return Outcome(expectation=name, status=FAILED, reason=f"no incident for {what}")
        hint = ctx.hints.get(e.check or "", "")
        return Outcome(expectation=name, status=FAILED,
                       reason=f"no incident for {what} opened during the drill"
                              + (f" ({hint})" if hint else ""))
    first = min(found, key=lambda i: i.opened_at)
    if e.kind is ExpectKind.INCIDENT:
        return _incident(name, e, first, origin, ctx)
    if e.kind is ExpectKind.NOTIFIED:
        return _notified(name, e, found, origin, ctx)
    if e.kind is ExpectKind.RESOLVED:
        return _resolved(name, e, found, ctx, ctx.start + fault_end(drill, e.check))
    if e.kind is ExpectKind.ACKNOWLEDGED:
        return _acknowledged(name, e, first, ctx)
    return _steps(name, e, found, ctx)


def _incident(name: str, e: Expectation, first: Incident, origin: datetime, ctx: Context
              ) -> Outcome:
    measured = {"detect": (first.detected_at - origin).total_seconds(),
                "open": (first.opened_at - origin).total_seconds()}
    problems = [p for p in (
        _late("opened", first.opened_at - ctx.start, e.within),
        f"severity {first.severity.value}, expected {e.severity.value}"
        if e.severity is not None and first.severity is not e.severity else None,
        f"runbook {first.runbook or '(none)'}, expected {e.runbook}"
        if e.runbook is not None and first.runbook != e.runbook else None,
    ) if p]
    return Outcome(expectation=name, status=FAILED if problems else PASSED,
                   reason="; ".join(problems), measured=measured, incident_id=first.id)


def _notified(name: str, e: Expectation, found: Sequence[Incident], origin: datetime,
              ctx: Context) -> Outcome:
    assert e.channel is not None
    target = DRILL_CHANNEL + e.channel
    sent = sorted((ev.at, i.id) for i in found for ev in i.timeline
                  if ev.kind is EventKind.NOTIFIED and ev.data.get("channel") == target
                  and ev.data.get("ok"))
    if sent:
        at, incident_id = sent[0]
        late = _late("first delivered", at - ctx.start, e.within)
        return Outcome(expectation=name, status=FAILED if late else PASSED, reason=late or "",
                       measured={"notify": (at - origin).total_seconds()},
                       incident_id=incident_id)
    failures = [ev for i in found for ev in i.timeline if ev.kind is EventKind.NOTIFIED
                and ev.data.get("channel") == target]
    others = sorted({str(ev.data.get("channel", "")).removeprefix(DRILL_CHANNEL)
                     for i in found for ev in i.timeline if ev.kind is EventKind.NOTIFIED})
    if e.channel not in ctx.stand_ins:
        reason = (f"{e.channel} has no drill stand-in: add drills.channels.{e.channel} to "
                  f"incident.yaml, or list it in the drill's real_channels")
    elif failures:
        reason = (f"every delivery to {e.channel} failed ({len(failures)} attempts): "
                  f"{failures[-1].data.get('error')}")
    elif others:
        reason = f"the routes sent it to {', '.join(others)}, not {e.channel}"
    else:
        reason = f"nothing was sent to {e.channel} (no route leads there, or it was silenced)"
    return Outcome(expectation=name, status=FAILED, reason=reason, incident_id=found[0].id)


def _resolved(name: str, e: Expectation, found: Sequence[Incident], ctx: Context,
              recovered: datetime) -> Outcome:
    open_ = [i for i in found if i.resolved_at is None]
    if open_:
        return Outcome(expectation=name, status=FAILED, incident_id=open_[0].id,
                       reason=f"#{open_[0].id} was still open when the drill ended "
                              "(the check never cleared)")
    last = max(found, key=lambda i: i.resolved_at or i.opened_at)
    assert last.resolved_at is not None
    measured = {"resolve": (last.resolved_at - recovered).total_seconds(),
                "open_for": (last.resolved_at - last.opened_at).total_seconds()}
    late = _late("resolved", last.resolved_at - ctx.start, e.within)
    # Live, who resolved it is part of the score; in a replay it is always the check.
    who = f"resolved by {last.resolved_by}" if ctx.live and last.resolved_by else ""
    return Outcome(expectation=name, status=FAILED if late else PASSED,
                   reason="; ".join(p for p in (late, who) if p), measured=measured,
                   incident_id=last.id)


def _acknowledged(name: str, e: Expectation, first: Incident, ctx: Context) -> Outcome:
    if first.acknowledged_at is None:
        return Outcome(expectation=name, status=FAILED, incident_id=first.id,
                       reason=f"nobody acknowledged #{first.id}")
    late = _late("acknowledged", first.acknowledged_at - ctx.start, e.within)
    return Outcome(expectation=name, status=FAILED if late else PASSED, reason=late or "",
                   measured={"acknowledge": (first.acknowledged_at - first.opened_at
                                             ).total_seconds()},
                   incident_id=first.id)


def _steps(name: str, e: Expectation, found: Sequence[Incident], ctx: Context) -> Outcome:
    deadline = ctx.start + (e.within or (ctx.end - ctx.start))
    done = {(i.id, str(ev.data.get("step"))) for i in found for ev in i.timeline
            if ev.kind is EventKind.STEP and ev.data.get("state") == "done" and ev.at <= deadline}
    wanted = e.steps or 1
    if len(done) >= wanted:
        return Outcome(expectation=name, status=PASSED, measured={"steps": float(len(done))})
    return Outcome(expectation=name, status=FAILED, measured={"steps": float(len(done))},
                   reason=f"{len(done)} runbook steps done in time, expected {wanted}")
