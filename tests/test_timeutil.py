"""Durations and times as users type them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incident.timeutil import align, format_duration, parse_duration, parse_time

NOW = datetime(2026, 11, 24, 10, 30, 45, tzinfo=UTC)


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("5m", 300), ("1h30m", 5400), ("7d", 604800), ("1w", 604800),
    ("0.5s", 0.5), ("250ms", 0.25), ("2h", 7200),
])
def test_durations_parse(text: str, seconds: float) -> None:
    """Prometheus-style durations, including compound ones."""
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "5 minutes", "m5", "1h 30m", "-5m", "5x"])
def test_bad_durations_are_rejected(text: str) -> None:
    """Anything else is a ValueError that shows the expected form."""
    with pytest.raises(ValueError, match=r"expected e\.g\. 90s"):
        parse_duration(text)


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(minutes=5), "5m"), (timedelta(hours=1, minutes=30), "1h30m"),
    (timedelta(days=2), "2d"), (timedelta(seconds=45), "45s"), (timedelta(0), "0s"),
    (timedelta(minutes=-3), "-3m"),
])
def test_durations_format_shortest(delta: timedelta, text: str) -> None:
    """Durations print in their shortest readable form."""
    assert format_duration(delta) == text


@pytest.mark.parametrize(("text", "expected"), [
    ("now", NOW),
    ("-2h", NOW - timedelta(hours=2)),
    ("+30m", NOW + timedelta(minutes=30)),
    ("2026-11-24T02:00:00Z", datetime(2026, 11, 24, 2, tzinfo=UTC)),
    ("2026-11-24T10:00:00+08:00", datetime(2026, 11, 24, 2, tzinfo=UTC)),
    ("1764000000", datetime.fromtimestamp(1764000000, tz=UTC)),
])
def test_times_parse(text: str, expected: datetime) -> None:
    """RFC 3339, Unix seconds, now and relative times all become aware UTC."""
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("2026-11-24T10:00:00", "has no time zone"),
    ("tomorrow", "not a time"),
])
def test_bad_times_are_rejected(text: str, message: str) -> None:
    """Naive or unreadable times are refused with a hint."""
    with pytest.raises(ValueError, match=message):
        parse_time(text, NOW)


def test_align_rounds_down_to_the_step_since_the_epoch() -> None:
    """Two runs within one step see the same grid end."""
    assert align(NOW, timedelta(minutes=1)) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert align(NOW, timedelta(minutes=5)) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert align(NOW, timedelta(hours=1)) == datetime(2026, 11, 24, 10, tzinfo=UTC)
