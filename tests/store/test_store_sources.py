"""Source health bookkeeping: consecutive failures, last error, last success."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incident.store import SourceHealth, Store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_consecutive_failures_count_up_and_reset_on_success(store: Store) -> None:
    """Each failure adds one, a success resets to 0 and keeps the last error for display."""
    assert store.record_source("prom", ok=True, at=T0) == 0
    assert store.record_source("prom", ok=False, at=T0 + MIN, error="timeout") == 1
    assert store.record_source("prom", ok=False, at=T0 + 2 * MIN, error="refused") == 2
    [health] = store.source_health()
    assert health == SourceHealth(
        source="prom",
        consecutive_failures=2,
        failing_since=T0 + MIN,
        last_ok_at=T0,
        last_failure_at=T0 + 2 * MIN,
        last_error="refused",
        checked_at=T0 + 2 * MIN,
    )
    assert not health.ok
    assert store.record_source("prom", ok=True, at=T0 + 3 * MIN) == 0
    [health] = store.source_health()
    assert health.ok and health.failing_since is None
    assert (health.last_ok_at, health.last_error) == (T0 + 3 * MIN, "refused")


def test_failures_within_one_cycle_count_once(store: Store) -> None:
    """Runners sharing a store each fail the same cycle: the limit counts cycles, not runners."""
    cycle = T0
    for runner in range(3):  # three runners, seconds apart, in the 12:00 cycle
        at = T0 + timedelta(seconds=5 * runner)
        assert store.record_source("prom", ok=False, at=at, error="refused", cycle=cycle) == 1
    assert store.record_source("prom", ok=False, at=T0 + MIN, error="refused", cycle=T0 + MIN) == 2
    assert store.record_source("prom", ok=False, at=T0 + MIN, error="refused", cycle=T0 + MIN) == 2
    # A success in between starts over, even within the cycle.
    assert store.record_source("prom", ok=True, at=T0 + MIN, cycle=T0 + MIN) == 0
    assert store.record_source("prom", ok=False, at=T0 + MIN, error="refused", cycle=T0 + MIN) == 1
    [health] = store.source_health()
    assert (health.consecutive_failures, health.failing_since) == (1, T0 + MIN)


def test_a_slow_run_finishing_late_does_not_count_a_cycle_twice(store: Store) -> None:
    """A run that started last cycle and finishes after this cycle's first keeps the latest."""
    def fail(at: timedelta, cycle: timedelta) -> int:
        return store.record_source("prom", ok=False, at=T0 + at, error="timeout", cycle=T0 + cycle)

    assert fail(timedelta(seconds=5), timedelta(0)) == 1
    assert fail(MIN + timedelta(seconds=2), MIN) == 2
    assert fail(timedelta(seconds=50), timedelta(0)) == 2  # slow, from the 12:00 cycle
    assert fail(MIN + timedelta(seconds=30), MIN) == 2  # still the 12:01 cycle
    [health] = store.source_health()
    assert health.last_failure_at == T0 + MIN + timedelta(seconds=30)


def test_sources_are_counted_separately_and_listed_by_name(store: Store) -> None:
    """Failures of one source do not count for another; the list is sorted by name."""
    assert store.record_source("zeta", ok=False, at=T0, error="x") == 1
    assert store.record_source("alpha", ok=False, at=T0, error="y") == 1
    assert store.record_source("zeta", ok=False, at=T0 + MIN, error="x") == 2
    assert [(h.source, h.consecutive_failures) for h in store.source_health()] == [
        ("alpha", 1),
        ("zeta", 2),
    ]


def test_a_first_failure_has_no_last_success(store: Store) -> None:
    """A source that never worked has no last_ok_at and is failing since its first report."""
    store.record_source("local", ok=False, at=T0, error="no such file")
    [health] = store.source_health()
    assert (health.last_ok_at, health.failing_since) == (None, T0)


def test_a_long_error_is_truncated(store: Store) -> None:
    """An error message is bounded so one bad response cannot bloat the store."""
    store.record_source("prom", ok=False, at=T0, error="x" * 10_000)
    [health] = store.source_health()
    assert health.last_error is not None and len(health.last_error) == 2000
