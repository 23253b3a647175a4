"""Cron expressions (`0 10 * * 2`, `*/15 9-18 * * mon-fri`, `@daily`) evaluated in a time zone.

Pure functions, DST-correct: a schedule is read in local wall-clock time; a local time that
does not exist (clocks jump forward) is skipped, and one that happens twice (clocks go back)
fires once, at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
            "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
            "@annually": "0 0 1 1 *"}
_NAMES = {
    3: {n: i + 1 for i, n in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])},
    4: {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed five-field cron expression."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month was '*'
    any_weekday: bool  # day of week was '*'
    text: str

    def day_matches(self, t: datetime) -> bool:
        """Vixie cron's rule: when both day fields are restricted, either may match."""
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return dom and dow
        return dom or dow


def parse(text: str) -> Cron:
    """A cron expression → Cron; ValueError naming the bad field otherwise."""
    expr = _ALIASES.get(text.strip(), text.strip())
    parts = expr.split()
    if len(parts) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month weekday), got {len(parts)} "
                         f"in {text!r}")
    sets = [_field(p, i) for i, p in enumerate(parts)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(minutes=sets[0], hours=sets[1], days=sets[2], months=sets[3], weekdays=weekdays,
                any_day=parts[2] == "*", any_weekday=parts[4] == "*", text=text.strip())


def _field(text: str, index: int) -> frozenset[int]:
    lo, hi = _RANGES[index]
    names = _NAMES.get(index, {})
    out: set[int] = set()
    for item in text.lower().split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = lo, hi
            elif "-" in base:
                a, b = base.split("-", 1)
                start, end = _value(a, names), _value(b, names)
            else:
                start = _value(base, names)
                end = hi if step_text else start
        except ValueError:
            raise ValueError(f"bad {_FIELDS[index]} field {text!r}") from None
        if step < 1 or not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise ValueError(f"{_FIELDS[index]} field {text!r} is outside {lo}-{hi}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


def _value(text: str, names: dict[str, int]) -> int:
    return names[text] if text in names else int(text)


def next_after(cron: Cron, after: datetime, tz: str = "UTC") -> datetime:
    """The first time strictly after `after` (aware) that the schedule fires, in aware UTC."""
    zone = ZoneInfo(tz)
    local = after.astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
    t = local + timedelta(minutes=1)
    limit = local + timedelta(days=366 * 5)
    while t < limit:
        if t.month not in cron.months:
            t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            continue
        if not cron.day_matches(t):
            t = t.replace(hour=0, minute=0) + timedelta(days=1)
            continue
        if t.hour not in cron.hours:
            t = t.replace(minute=0) + timedelta(hours=1)
            continue
        if t.minute not in cron.minutes:
            t += timedelta(minutes=1)
            continue
        aware = t.replace(tzinfo=zone, fold=0)
        # A wall time in a spring-forward gap does not exist: it round-trips to another time.
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == t and aware > after:
            return aware.astimezone(UTC)
        t += timedelta(minutes=1)
    raise ValueError(f"cron {cron.text!r} never fires")


def last_at_or_before(cron: Cron, at: datetime, tz: str, horizon: timedelta) -> datetime | None:
    """The latest firing in (at - horizon, at], or None."""
    t = next_after(cron, at - horizon, tz)
    found = None
    while t <= at:
        found = t
        t = next_after(cron, t, tz)
    return found
