"""Durations (`90s`, `5m`, `1h30m`, `7d`) and times (RFC 3339, Unix seconds, `-2h`, `now`)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> timedelta:
    """`90s`, `5m`, `1h30m`, `7d`, `1w` → timedelta; ValueError with the expected form otherwise."""
    text = text.strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 90s, 5m, 1h30m, 7d)")
    return timedelta(seconds=total)


def format_duration(delta: timedelta) -> str:
    """The shortest readable form: 5m, 1h30m, 2d, 45s; negative durations get a minus sign."""
    seconds = delta.total_seconds()
    if seconds < 0:
        return "-" + format_duration(-delta)
    if seconds == 0:
        return "0s"
    parts = []
    rest = round(seconds) if seconds >= 60 else seconds  # nobody reads 22m51.9863s
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if rest >= size:
            n = int(rest // size)
            parts.append(f"{n}{unit}")
            rest -= n * size
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


def parse_time(text: str, now: datetime) -> datetime:
    """RFC 3339, Unix seconds, `now`, or a duration relative to `now` (`-2h`, `+30m`) → aware UTC."""
    text = text.strip()
    if text == "now":
        return now
    if text[:1] in "+-" and text[1:2].isdigit() and not re.fullmatch(r"[+-]\d+(\.\d+)?", text):
        delta = parse_duration(text[1:])
        return now - delta if text[0] == "-" else now + delta
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return datetime.fromtimestamp(float(text), tz=UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (expected RFC 3339 like 2026-11-24T10:00:00Z, "
            "Unix seconds, now, or relative like -2h)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"time {text!r} has no time zone (add Z or +08:00)")
    return parsed.astimezone(UTC)


def align(t: datetime, step: timedelta) -> datetime:
    """`t` rounded down to a whole multiple of `step` since the Unix epoch.

    Every run aligns its grid this way, so two runs in the same step (or a backtest)
    see exactly the same points.
    """
    size = step.total_seconds()
    return datetime.fromtimestamp((t.timestamp() // size) * size, tz=UTC)


def utcnow() -> datetime:
    """The wall clock, aware UTC. Only the CLI calls this; everything below takes `now`."""
    return datetime.now(UTC)


def iso(t: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, or None."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")
