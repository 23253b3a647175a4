"""`incident drill generate CHECK`: a starter scenario whose fault breaches the check's detector.

Pure: check + routes → YAML text. The numbers are a start to edit: a fault that clearly
crosses the detector's level, held long enough for its `for`, and expectations sized from it.
"""

from __future__ import annotations

from datetime import timedelta

from incident.model import (
    AbsentParams,
    AnomalyParams,
    BurnRateParams,
    ChangeParams,
    Check,
    Direction,
    Settings,
    ThresholdParams,
)
from incident.timeutil import format_duration

LEAD = timedelta(minutes=2)  # quiet time before the fault: the steady state is seen first
SETTLE = timedelta(minutes=10)  # after the fault, time for the check to clear and resolve


def _fault(check: Check) -> tuple[str, str, timedelta]:
    """(target line, fault mapping, how long the breach must last) for the check's detector."""
    p = check.detector
    target = f"check: {check.name}"
    if isinstance(p, ThresholdParams):
        if p.above is not None:
            level = p.above * 2 if p.above > 0 else p.above + 1
        else:
            assert p.below is not None
            level = p.below / 2 if p.below > 0 else p.below - 1
        return target, f"{{type: set, value: {level:g}}}", p.for_
    if isinstance(p, AbsentParams):
        return target, "{type: drop}", p.for_
    if isinstance(p, ChangeParams):
        if p.percent is not None:
            factor = 1 + 2 * p.percent / 100 if p.direction is Direction.UP else \
                max(1 - 2 * p.percent / 100, 0.05)
            return target, f"{{type: multiply, by: {factor:g}}}", p.for_
        sign = -1 if p.direction is Direction.DOWN else 1
        return target, f"{{type: add, value: {sign * 2 * (p.delta or 1):g}}}", p.for_
    if isinstance(p, AnomalyParams):
        factor = 0.2 if p.direction is Direction.DOWN else 5
        return target, f"{{type: multiply, by: {factor:g}}}", max(p.for_, timedelta(minutes=10))
    assert isinstance(p, BurnRateParams)
    if check.query:
        bad = min(1.0, 30 * (1 - p.objective))
        return target, f"{{type: set, value: {1 - bad:g}}}", timedelta(minutes=45)
    # good/total queries: lay the fault over the raw series `good` counts, cutting it by
    # thirty times the error budget.
    selector = _first_selector(p.good or p.total or "")
    factor = max(1 - 30 * (1 - p.objective), 0.0)
    return (f"metric: '{selector}'", f"{{type: multiply, by: {factor:g}}}",
            timedelta(minutes=45))


def _first_selector(query: str) -> str:
    from incident.sources.promql.ast import selectors
    from incident.sources.promql.parser import parse

    found = selectors(parse(query))
    if not found:
        return query
    sel = found[0]
    matchers = ",".join(f'{m.name}{m.op.value}"{m.value}"' for m in sel.matchers
                        if m.name != "__name__")
    return f"{sel.name or ''}{{{matchers}}}" if matchers else sel.name or query


def scenario(check: Check, settings: Settings) -> str:
    """A starter drill for one check, as YAML text."""
    from incident.notify.routing import attributes, channels, matching_routes

    target, fault, hold = _fault(check)
    breach = max(hold + 3 * check.every, timedelta(minutes=5))
    fault_end = LEAD + breach + timedelta(minutes=5)
    duration = fault_end + SETTLE
    routed = channels(matching_routes(settings.routes, attributes(
        check.severity, check.name, check.labels)))
    d = format_duration
    lines = [
        f"# A starter drill for {check.name}, written by `incident drill generate`: edit the",
        "# fault and the times to what you want to rehearse, then `incident drill run`.",
        f"name: {check.name}-drill",
        f"description: {check.name} breaches its {check.detector_type} detector and recovers",
        'schedule: "0 10 * * 2"',
        f"duration: {d(duration)}",
        "inject:",
        f"  - {target}",
        f"    from: {d(LEAD)}",
        f"    to: {d(fault_end)}",
        f"    fault: {fault}",
        "expect:",
        f"  - incident: {{check: {check.name}, within: {d(LEAD + breach)}, "
        f"severity: {check.severity.value}"
        + (f", runbook: {check.runbook}" if check.runbook else "") + "}",
    ]
    if routed:
        lines.append(f"  - notified: {{channel: {routed[0]}, check: {check.name}, "
                     f"within: {d(LEAD + breach + check.every)}}}")
    lines.append(f"  - resolved: {{check: {check.name}, within: {d(duration)}}}")
    return "\n".join(lines) + "\n"
