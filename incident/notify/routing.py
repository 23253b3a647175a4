"""Which routes, and so which channels, an incident reaches; and whether a window mutes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from incident.model import Maintenance, Route, Severity


def attributes(severity: Severity, check: str | None, labels: Mapping[str, str]
               ) -> dict[str, str]:
    """What routes and silences match on: every label, plus severity and check."""
    return {**labels, "severity": severity.value, "check": check or ""}


def matching_routes(routes: Sequence[Route], attrs: Mapping[str, str]) -> list[Route]:
    """The routes an incident takes: the first match, and the next ones while they say `continue`."""
    out = []
    for route in routes:
        if route.matches(attrs):
            out.append(route)
            if not route.continue_:
                break
    return out


def channels(routes: Sequence[Route]) -> list[str]:
    """The channels of the given routes, in order, each once."""
    return list(dict.fromkeys(c for r in routes for c in r.notify))


def active_window(windows: Sequence[Maintenance], attrs: Mapping[str, str], now: datetime
                  ) -> Maintenance | None:
    """The maintenance window covering `now` for an incident with these attributes, if any."""
    from incident.cron import last_at_or_before, parse

    for w in windows:
        probe = Route(match=w.match, match_re=w.match_re)
        if not probe.matches(attrs):
            continue
        start = last_at_or_before(parse(w.schedule), now, w.timezone,
                                  w.duration + timedelta(minutes=1))
        if start is not None and now < start + w.duration:
            return w
    return None
