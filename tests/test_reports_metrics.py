"""Report metrics on constructed incidents, with exact expected values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incident.model import DrillRun, EventKind, Incident, Severity, Status, TimelineEvent
from incident.reports import metrics, trends

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday


def m(minutes: float) -> datetime:
    """T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


def minutes_from_t0(t: datetime) -> float:
    """The other way round: a time as minutes from T0."""
    return (t - T0) / timedelta(minutes=1)


def ev(minutes: float, kind: EventKind) -> TimelineEvent:
    """A timeline event at T0 + minutes."""
    return TimelineEvent(at=m(minutes), kind=kind, actor="t", text=kind.value)


def incident(id: int = 1, *, detected: float = -4, opened: float = 0, acked: float | None = None,
             resolved: float | None = None, reopened: int = 0, fingerprint: str = "fp",
             check: str | None = "c", drill: bool = False, events: tuple[TimelineEvent, ...] = (),
             severity: Severity = Severity.HIGH, category: str = "api") -> Incident:
    """An incident with its times given in minutes from T0."""
    return Incident(
        id=id, fingerprint=fingerprint, check=check, title="t",
        status=Status.RESOLVED if resolved is not None else
        Status.ACKNOWLEDGED if acked is not None else Status.OPEN,
        severity=severity, labels={"category": category}, runbook=None,
        detected_at=m(detected), opened_at=m(opened),
        acknowledged_at=None if acked is None else m(acked),
        resolved_at=None if resolved is None else m(resolved), reopened=reopened, drill=drill,
        manual=check is None, timeline=events)


def test_times_of_a_plain_resolved_incident() -> None:
    """Detected 4m before opening, acked 3m after, resolved 50m after: 4m, 3m, 50m."""
    i = incident(acked=3, resolved=50, events=(ev(0, EventKind.OPENED), ev(3, EventKind.ACKNOWLEDGED),
                                               ev(50, EventKind.RESOLVED)))
    assert metrics.time_to_detect(i) == timedelta(minutes=4)
    assert metrics.time_to_acknowledge(i) == timedelta(minutes=3)
    assert metrics.time_to_resolve(i) == timedelta(minutes=50)
    assert metrics.time_to_mitigate(i) == timedelta(minutes=50)
    assert metrics.time_to_mitigate(i, m(20)) == timedelta(minutes=20)


def test_an_open_incident_has_no_tta_or_ttr_but_an_age() -> None:
    """Still open and never acknowledged: TTA and TTR are None; open_for counts to now."""
    i = incident(detected=-2.5)
    assert metrics.time_to_detect(i) == timedelta(minutes=2, seconds=30)
    assert metrics.time_to_acknowledge(i) is None
    assert metrics.time_to_resolve(i) is None
    assert metrics.time_to_mitigate(i) is None
    assert metrics.open_for(i, m(95)) == timedelta(minutes=95)


def test_a_reopened_incident_keeps_its_first_acknowledgement() -> None:
    """Acked at 5m, resolved at 20m, reopened at 30m (ack column reset), acked again at 35m,
    resolved at 60m: TTA is the first ack (5m), TTM the first resolution (20m), TTR the last (60m)."""
    i = incident(acked=35, resolved=60, reopened=1, events=(
        ev(0, EventKind.OPENED), ev(5, EventKind.ACKNOWLEDGED), ev(20, EventKind.RESOLVED),
        ev(30, EventKind.REOPENED), ev(35, EventKind.ACKNOWLEDGED), ev(60, EventKind.RESOLVED)))
    assert metrics.time_to_acknowledge(i) == timedelta(minutes=5)
    assert metrics.time_to_mitigate(i) == timedelta(minutes=20)
    assert metrics.time_to_resolve(i) == timedelta(minutes=60)
    assert metrics.episodes(i) == 2
    assert metrics.is_flapping(i)


def test_a_reopened_incident_acknowledged_only_after_reopening() -> None:
    """Unacknowledged first episode, acked at 35m after reopening: TTA 35m."""
    i = incident(acked=35, reopened=1, events=(
        ev(0, EventKind.OPENED), ev(20, EventKind.RESOLVED), ev(30, EventKind.REOPENED),
        ev(35, EventKind.ACKNOWLEDGED)))
    assert metrics.time_to_acknowledge(i) == timedelta(minutes=35)
    assert metrics.time_to_resolve(i) is None


@pytest.mark.parametrize(("minutes", "median", "p90"), [
    ([], None, None),
    ([7], 7, 7),
    ([1, 2], 1.5, 2),
    ([10, 1, 3, 2], 2.5, 10),
    (list(range(1, 11)), 5.5, 9),
    (list(range(1, 12)), 6, 10),
])
def test_median_and_nearest_rank_p90(minutes: list[float], median: float | None,
                                     p90: float | None) -> None:
    """Median averages the middle two; p90 is the ⌈0.9·n⌉-th smallest value."""
    values = [timedelta(minutes=x) for x in minutes]
    assert metrics.median(values) == (None if median is None else timedelta(minutes=median))
    assert metrics.p90(values) == (None if p90 is None else timedelta(minutes=p90))


def test_weekly_buckets_with_mtta_and_mttr() -> None:
    """Two whole weeks, Monday 00:00 to Monday 00:00; open incidents count but have no TTR."""
    since = T0 - timedelta(hours=10)  # Monday 2026-11-02 00:00 UTC
    now = since + timedelta(days=14)
    items = [
        incident(1, opened=0, acked=2, resolved=30),
        incident(2, opened=60, acked=64, resolved=100),
        incident(3, opened=8 * 1440, acked=8 * 1440 + 10),  # second week, still open
        incident(4, opened=9 * 1440, resolved=9 * 1440 + 20),
    ]
    weeks = metrics.weekly(items, since, now)
    assert [(w.start, w.end, w.partial) for w in weeks] == [
        (since, since + timedelta(days=7), False), (since + timedelta(days=7), now, False)]
    first, second = weeks
    assert (first.incidents, first.resolved) == (2, 2)
    assert first.mtta_median == timedelta(minutes=3) and first.mtta_p90 == timedelta(minutes=4)
    assert first.mttr_median == timedelta(minutes=35) and first.mttr_p90 == timedelta(minutes=40)
    assert (second.incidents, second.resolved) == (2, 1)
    assert second.mtta_median == timedelta(minutes=10)
    assert second.mttr_median == timedelta(minutes=20)
    assert metrics.change(second.incidents, first.incidents) == 0
    thursday = now - timedelta(days=11)
    assert metrics.week_starts(thursday, now) == [thursday, since + timedelta(days=7)]
    assert metrics.change(20, 40) == -0.5
    assert metrics.change(1, 0) is None


def test_weeks_start_on_monday_midnight_in_the_project_time_zone() -> None:
    """30 days to Tuesday 2026-11-24 18:00 in Shanghai (UTC+8): a partial first week from
    Sunday 18:00 to Monday 00:00 local (16:00 UTC), four whole weeks, a partial last one; the
    table's and the chart's labels are the same local days."""
    now = datetime(2026, 11, 24, 10, tzinfo=UTC)
    since = now - timedelta(days=30)  # Sunday 2026-10-25 18:00 in Shanghai
    monday = datetime(2026, 10, 25, 16, tzinfo=UTC)  # Monday 2026-10-26 00:00 in Shanghai
    items = [incident(1, opened=minutes_from_t0(since)),
             incident(2, opened=minutes_from_t0(monday - timedelta(seconds=1))),  # Sun 23:59:59
             incident(3, opened=minutes_from_t0(monday)),
             incident(4, opened=minutes_from_t0(now))]
    weeks = metrics.weekly(items, since, now, "Asia/Shanghai")
    starts = [since, *(monday + timedelta(days=7 * k) for k in range(5))]
    assert [w.start for w in weeks] == starts
    assert [w.end for w in weeks] == [*starts[1:], now]
    assert [w.partial for w in weeks] == [True, False, False, False, False, True]
    assert [w.incidents for w in weeks] == [2, 1, 0, 0, 0, 1]
    assert [trends.week_label(w, "Asia/Shanghai") for w in weeks] == [
        "2026-10-25 (partial)", "2026-10-26 – 11-01", "2026-11-02 – 11-08", "2026-11-09 – 11-15",
        "2026-11-16 – 11-22", "2026-11-23 – 11-24 (partial)"]
    assert [trends.week_label(w, "Asia/Shanghai", year=False) for w in weeks][::5] == [
        "10-25 (partial)", "11-23 – 11-24 (partial)"]
    # In UTC the same period is cut at other instants: the zone is not decoration.
    assert metrics.week_starts(since, now)[1] == datetime(2026, 10, 26, tzinfo=UTC)
    # New York leaves summer time on Sunday 2026-11-01: that week is 169 hours long.
    ny = metrics.week_starts(since, now, "America/New_York")
    assert ny[1:3] == [datetime(2026, 10, 26, 4, tzinfo=UTC), datetime(2026, 11, 2, 5, tzinfo=UTC)]


def test_an_incident_opened_exactly_at_now_is_in_the_last_week() -> None:
    """The last bucket includes `now` itself; the first starts at `since` inclusive."""
    now = T0 + timedelta(days=7)
    weeks = metrics.weekly([incident(1, opened=0), incident(2, opened=7 * 1440)], T0, now)
    assert [(w.incidents, w.partial) for w in weeks] == [(1, True), (1, True)]


def test_recurring_flapping_noisiest_and_drills() -> None:
    """Fingerprints firing twice recur (with their open action items); short ones flap."""
    items = [
        incident(1, fingerprint="a", check="ca", resolved=5),  # flaps: resolved in 5m
        incident(2, opened=600, fingerprint="a", check="ca", resolved=700),
        incident(3, fingerprint="b", check="cb", reopened=2, resolved=300),  # 3 episodes
        incident(4, fingerprint="c", check="cc", resolved=90),
    ]
    rec = metrics.recurring(items, {2: [11, 12]})
    assert [(r.fingerprint, r.episodes, r.incident_ids, r.open_action_items) for r in rec] == [
        ("b", 3, (3,), ()), ("a", 2, (1, 2), (11, 12))]
    assert metrics.flapping(items) == [("ca", 1), ("cb", 1)]
    assert metrics.noisiest(items, top=2) == [("cb", 3), ("ca", 2)]
    assert metrics.count_by(items, "check") == [("ca", 2), ("cb", 1), ("cc", 1)]
    assert metrics.count_by(items, "severity") == [("high", 4)]
    assert metrics.count_by(items, "label:category") == [("api", 4)]
    runs = [DrillRun(id=n, drill="d", mode="replay", status=status, started_at=T0,
                     finished_at=T0, sim_start=T0, sim_end=T0, actor="cron")
            for n, status in enumerate(("passed", "failed", "aborted", "running", "passed"))]
    assert metrics.drill_stats(runs) == (3, 2)


def test_manual_incidents_are_counted_but_not_as_a_check() -> None:
    """Opened by hand (no check): listed as (manual) by check, never flapping, noisy or
    recurring, and with no time to detect (nothing breached)."""
    items = [
        incident(1, check="ca", resolved=60),
        incident(2, opened=600, check="ca", resolved=700),
        incident(3, detected=0, fingerprint="manual:1", check=None, resolved=2),  # would flap
        incident(4, detected=0, fingerprint="manual:2", check=None, reopened=1),  # would recur
        incident(5, detected=0, fingerprint="manual:2", check=None),
    ]
    assert metrics.count_by(items, "check") == [("(manual)", 3), ("ca", 2)]
    assert metrics.flapping(items) == []
    assert metrics.noisiest(items) == [("ca", 2)]
    assert [(r.fingerprint, r.check) for r in metrics.recurring(items)] == [("fp", "ca")]
    assert metrics.time_to_detect(items[2]) is None
    assert metrics.time_to_detect(items[0]) == timedelta(minutes=4)
