"""When drills are due: each drill's cron schedule against its journal. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from incident.cron import last_at_or_before, next_after, parse
from incident.model import Drill, DrillRun

# How far back a missed schedule still counts as due (a drill skipped for a week is still due).
HORIZON = timedelta(days=35)


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillStatus:
    """One line of `incident drill list`."""

    drill: Drill
    last: DrillRun | None
    next_due: datetime | None
    due: bool


def status(drills: Mapping[str, Drill], runs: Sequence[DrillRun], now: datetime
           ) -> list[DrillStatus]:
    """Every drill with its last run and whether its schedule came due since then."""
    out = []
    for name, drill in sorted(drills.items()):
        last = next((r for r in runs if r.drill == name), None)  # runs come newest first
        due, next_due = False, None
        if drill.schedule:
            cron = parse(drill.schedule)
            slot = last_at_or_before(cron, now, drill.timezone, HORIZON)
            due = slot is not None and (last is None or last.started_at < slot)
            next_due = slot if due else next_after(cron, now, drill.timezone)
        out.append(DrillStatus(drill=drill, last=last, next_due=next_due, due=due))
    return out
