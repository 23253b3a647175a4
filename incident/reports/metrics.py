"""The numbers of postmortems and trend reports, as pure functions of incidents and a `now`.

Definitions (the same in every report and in --json):

- time to detect (TTD): opened_at − detected_at, the first breaching point to the incident.
  A manual incident (no check) has none: nothing detected it, someone opened it.
- time to acknowledge (TTA): the first acknowledgement on the timeline − opened_at. A reopened
  incident loses its acknowledged_at column, so the timeline is what remembers the first one.
- time to mitigate (TTM): the postmortem's mitigated_at − opened_at, else the first resolution.
- time to resolve (TTR): the final resolved_at − opened_at (reopened episodes included).
  Still open: None; `open_for` says how long so far.
- median: the usual one (mean of the two middle values); p90: nearest rank, ⌈0.9·n⌉-th smallest.
- weeks: Monday 00:00 to the next Monday 00:00 in the project's time zone, an incident counted
  in the week it opened in. The period's first and last weeks are cut at its ends and marked
  partial (unless a cut falls on a Monday 00:00); the last one includes the end itself.
- manual incidents (opened by hand, no check) are counted, under MANUAL where a check's name
  would be, but are no check's noise: flapping, noisiest and recurring leave them out.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from incident.model import DrillRun, EventKind, Incident

FLAP_WITHIN = timedelta(minutes=10)
MANUAL = "(manual)"  # in place of a check's name, for incidents opened by hand


def first_event(incident: Incident, kind: EventKind) -> datetime | None:
    """The time of the first timeline event of `kind`, if any."""
    return next((e.at for e in incident.timeline if e.kind is kind), None)


def time_to_detect(incident: Incident) -> timedelta | None:
    """opened_at − detected_at; None for a manual incident, which no series breached."""
    return None if incident.check is None else incident.opened_at - incident.detected_at


def time_to_acknowledge(incident: Incident) -> timedelta | None:
    """The first acknowledgement − opened_at; None if nobody acknowledged it."""
    acked = first_event(incident, EventKind.ACKNOWLEDGED) or incident.acknowledged_at
    return None if acked is None else acked - incident.opened_at


def time_to_resolve(incident: Incident) -> timedelta | None:
    """The final resolution − opened_at; None while it is open."""
    return None if incident.resolved_at is None else incident.resolved_at - incident.opened_at


def time_to_mitigate(incident: Incident, mitigated_at: datetime | None = None) -> timedelta | None:
    """`mitigated_at` (from the postmortem) − opened_at, else the first resolution − opened_at."""
    at = mitigated_at or first_event(incident, EventKind.RESOLVED) or incident.resolved_at
    return None if at is None else at - incident.opened_at


def open_for(incident: Incident, now: datetime) -> timedelta:
    """How long it has been (or was) open: to its resolution, or to `now`."""
    return (incident.resolved_at or now) - incident.opened_at


def median(values: Sequence[timedelta]) -> timedelta | None:
    """The median duration; None for no values."""
    if not values:
        return None
    return timedelta(seconds=statistics.median(v.total_seconds() for v in values))


def p90(values: Sequence[timedelta]) -> timedelta | None:
    """The 90th percentile by nearest rank (an observed value); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


@dataclass(frozen=True, slots=True, kw_only=True)
class Week:
    """One week [start, end) with its incidents' counts and response times (see the module's
    definition of weeks); `partial` when the period's start or end cuts it short."""

    start: datetime
    end: datetime
    partial: bool
    incidents: int
    resolved: int
    mtta_median: timedelta | None
    mtta_p90: timedelta | None
    mttr_median: timedelta | None
    mttr_p90: timedelta | None


def _monday(t: datetime, tz: ZoneInfo, weeks: int = 0) -> datetime:
    """Monday 00:00 in `tz` of the week `t` is in, `weeks` later, in UTC."""
    day = t.astimezone(tz).date()
    return _midnight(day - timedelta(days=day.weekday()) + timedelta(weeks=weeks), tz)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # From the local date, not by adding 7 days to an instant: a week with a DST change is
    # 167 or 169 hours long, and its Monday still starts at 00:00.
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def week_starts(since: datetime, now: datetime, timezone: str = "UTC") -> list[datetime]:
    """`since`, then every Monday 00:00 in `timezone` after it and before `now`, in UTC."""
    tz = ZoneInfo(timezone)
    starts = [since]
    while (monday := _monday(starts[-1], tz, weeks=1)) < now:
        starts.append(monday)
    return starts


def weekly(incidents: Iterable[Incident], since: datetime, now: datetime,
           timezone: str = "UTC") -> list[Week]:
    """Incidents bucketed by opened_at into the weeks of [since, now], with MTTA and MTTR."""
    out = []
    items = list(incidents)
    tz = ZoneInfo(timezone)
    starts = week_starts(since, now, timezone)
    for k, (start, end) in enumerate(pairwise([*starts, now])):
        last = k == len(starts) - 1
        inside = [i for i in items if start <= i.opened_at < end or (last and i.opened_at == end)]
        tta = [t for t in map(time_to_acknowledge, inside) if t is not None]
        ttr = [t for t in map(time_to_resolve, inside) if t is not None]
        whole = start == _monday(start, tz) and end == _monday(start, tz, weeks=1)
        out.append(Week(start=start, end=end, partial=not whole, incidents=len(inside),
                        resolved=len(ttr), mtta_median=median(tta), mtta_p90=p90(tta),
                        mttr_median=median(ttr), mttr_p90=p90(ttr)))
    return out


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change current/previous − 1; None when either is missing or previous is 0."""
    if current is None or previous is None or previous == 0:
        return None
    return current / previous - 1


def episodes(incident: Incident) -> int:
    """How many times it fired: the first opening plus every reopening."""
    return 1 + incident.reopened


def is_flapping(incident: Incident, within: timedelta = FLAP_WITHIN) -> bool:
    """Resolved within `within` of opening, or reopened: the check cries wolf."""
    ttr = time_to_resolve(incident)
    return incident.reopened > 0 or (ttr is not None and ttr <= within)


def count_by(incidents: Iterable[Incident], key: str) -> list[tuple[str, int]]:
    """Incidents per severity, check or label (`label:category`), most first then by name."""
    def value(i: Incident) -> str:
        if key.startswith("label:"):
            return i.labels.get(key[6:], "") or "-"
        if key == "check":
            return i.check or MANUAL
        return str(getattr(i, key).value if key == "severity" else getattr(i, key) or "-")

    counts = Counter(value(i) for i in incidents)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True, slots=True, kw_only=True)
class Recurring:
    """A fingerprint that fired more than once in the period: it needs a root-cause fix."""

    fingerprint: str
    check: str | None
    episodes: int
    incident_ids: tuple[int, ...]
    last_opened: datetime
    open_action_items: tuple[int, ...] = field(default=())


def recurring(incidents: Iterable[Incident], open_items: Mapping[int, Sequence[int]] | None = None,
              min_episodes: int = 2) -> list[Recurring]:
    """Checks' fingerprints with at least `min_episodes` episodes (reopenings count), most first.

    `open_items` maps an incident id to its open action items' ids. Manual incidents are left
    out: a root-cause fix is asked of a check that keeps firing, not of people reporting.
    """
    groups: dict[str, list[Incident]] = {}
    for i in incidents:
        if i.check is not None:
            groups.setdefault(i.fingerprint, []).append(i)
    out = []
    for fp, group in groups.items():
        n = sum(episodes(i) for i in group)
        if n < min_episodes:
            continue
        ids = tuple(sorted(i.id for i in group))
        items = tuple(sorted(x for i in ids for x in (open_items or {}).get(i, ())))
        out.append(Recurring(fingerprint=fp, check=group[0].check, episodes=n, incident_ids=ids,
                             last_opened=max(i.opened_at for i in group),
                             open_action_items=items))
    return sorted(out, key=lambda r: (-r.episodes, r.fingerprint))


def flapping(incidents: Iterable[Incident], within: timedelta = FLAP_WITHIN
             ) -> list[tuple[str, int]]:
    """Checks with flapping incidents (see is_flapping), most first; manual ones left out."""
    counts = Counter(i.check for i in incidents if i.check is not None and is_flapping(i, within))
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def noisiest(incidents: Iterable[Incident], top: int = 5) -> list[tuple[str, int]]:
    """Checks by episodes (incidents plus reopenings), the noisiest first; manual ones left out."""
    counts: Counter[str] = Counter()
    for i in incidents:
        if i.check is not None:
            counts[i.check] += episodes(i)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def drill_stats(runs: Iterable[DrillRun]) -> tuple[int, int]:
    """(drills scored, drills passed) from the journal; aborted and running ones are not scored."""
    scored = [r for r in runs if r.status in ("passed", "failed")]
    return len(scored), sum(r.status == "passed" for r in scored)
