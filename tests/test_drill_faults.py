"""Drill faults with exact values: `apply` on a check's series, `apply_raw` on raw samples
(counters faulted in their rate, `drop` as a staleness marker), PromQL over a faulted copy of
a local source, and `fault_frame` touching only the columns an injection names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pytest

from incident.drills.faults import apply, apply_raw, is_counter
from incident.drills.source import fault_frame, faulted_storage
from incident.errors import DrillError
from incident.model import Fault, Injection, Labels
from incident.sources import frame
from incident.sources.local import StorageSource
from incident.sources.promql.storage import STALE_NAN, MemoryStorage, RawSeries, is_stale

if TYPE_CHECKING:
    import pandas as pd

NAN = float("nan")
T = np.arange(0.0, 100.0, 10.0)  # ten points, 10 s apart; the window [30, 70) holds 30..60
V = np.arange(10.0)  # 0, 1, …, 9
START, END = 30.0, 70.0
COUNTER = Labels({"__name__": "x_total", "job": "api"})
GAUGE = Labels({"__name__": "queue_depth", "job": "api"})


@pytest.mark.parametrize(("fault", "expected"), [
    (Fault(type="set", value=5), [0, 1, 2, 5, 5, 5, 5, 7, 8, 9]),
    (Fault(type="add", value=1.5), [0, 1, 2, 4.5, 5.5, 6.5, 7.5, 7, 8, 9]),
    (Fault(type="add", value=-3), [0, 1, 2, 0, 1, 2, 3, 7, 8, 9]),
    (Fault(type="multiply", by=2), [0, 1, 2, 6, 8, 10, 12, 7, 8, 9]),
    (Fault(type="multiply", by=0), [0, 1, 2, 0, 0, 0, 0, 7, 8, 9]),
    # ramp: real value + (target - real) × (t - start) / (end - start)
    (Fault(type="ramp", to=100), [0, 1, 2, 3, 4 + 96 * 0.25, 5 + 95 * 0.5, 6 + 94 * 0.75, 7, 8, 9]),
    (Fault(type="ramp", by=3), [0, 1, 2, 3, 4 + 8 * 0.25, 5 + 10 * 0.5, 6 + 12 * 0.75, 7, 8, 9]),
    (Fault(type="drop"), [0, 1, 2, NAN, NAN, NAN, NAN, 7, 8, 9]),
    (Fault(type="flatline"), [0, 1, 2, 2, 2, 2, 2, 7, 8, 9]),
])
def test_apply_gives_exact_values_inside_the_window_only(fault: Fault, expected: list[float]
                                                        ) -> None:
    """Each fault type changes exactly the points with start ≤ t < end, to the documented value."""
    got = apply(V, T, fault, START, END)
    np.testing.assert_allclose(got, expected, equal_nan=True)


@pytest.mark.parametrize("fault", [
    Fault(type="set", value=5), Fault(type="add", value=1), Fault(type="multiply", by=2),
    Fault(type="ramp", to=100), Fault(type="drop"), Fault(type="noise", stddev=1.0),
    Fault(type="flatline"),
])
def test_apply_leaves_its_input_untouched(fault: Fault) -> None:
    """`apply` is pure: the array it was given is the same afterwards."""
    values = V.copy()
    apply(values, T, fault, START, END)
    np.testing.assert_array_equal(values, V)


@pytest.mark.parametrize(("start", "end", "changed"), [
    (30.0, 70.0, [3, 4, 5, 6]),  # the point at `end` (t=70) is not in the window
    (30.0, 70.5, [3, 4, 5, 6, 7]),
    (29.5, 70.0, [3, 4, 5, 6]),
    (30.0, 30.0, []),  # an empty window changes nothing
    (200.0, 300.0, []),  # a window past the data changes nothing
    (-50.0, 1.0, [0]),
])
def test_window_is_closed_at_start_and_open_at_end(start: float, end: float, changed: list[int]
                                                  ) -> None:
    """Exactly the points with start ≤ t < end change."""
    got = apply(V, T, Fault(type="set", value=-1), start, end)
    assert [i for i in range(len(V)) if got[i] != V[i]] == changed


@pytest.mark.parametrize("fault", [
    Fault(type="add", value=1), Fault(type="multiply", by=2), Fault(type="ramp", to=100),
    Fault(type="ramp", by=3), Fault(type="noise", stddev=1.0),
])
def test_a_point_with_no_data_stays_without_data(fault: Fault) -> None:
    """NaN (no data) inside the window stays NaN for faults that act on the real value."""
    values = V.copy()
    values[4] = NAN
    got = apply(values, T, fault, START, END)
    assert np.isnan(got[4])
    assert np.isfinite(got[[3, 5, 6]]).all()


def test_noise_is_reproducible_for_one_seed_and_salt() -> None:
    """The same seed and salt give the same noise; only the window's points move."""
    fault = Fault(type="noise", stddev=2.0, seed=7)
    a = apply(V, T, fault, START, END, salt=3)
    b = apply(V, T, fault, START, END, salt=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[[0, 1, 2, 7, 8, 9]], V[[0, 1, 2, 7, 8, 9]])
    assert (a[3:7] != V[3:7]).all()


@pytest.mark.parametrize(("other_seed", "other_salt"), [(7, 4), (8, 3)])
def test_noise_differs_per_salt_and_per_seed(other_seed: int, other_salt: int) -> None:
    """Another salt (another series) or another seed gives different noise."""
    a = apply(V, T, Fault(type="noise", stddev=2.0, seed=7), START, END, salt=3)
    b = apply(V, T, Fault(type="noise", stddev=2.0, seed=other_seed), START, END, salt=other_salt)
    assert (a[3:7] != b[3:7]).all()


@pytest.mark.parametrize(("values", "held"), [
    ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 2.0),  # the last point before the window
    ([0, 1, NAN, 3, 4, 5, 6, 7, 8, 9], 1.0),  # …skipping a gap just before it
    ([NAN, NAN, NAN, NAN, 4, 5, 6, 7, 8, 9], 4.0),  # no data before: the first in the window
    ([NAN, NAN, NAN, NAN, NAN, NAN, NAN, 7, 8, 9], NAN),  # no data at all: still none
])
def test_flatline_holds_the_last_value_before_the_window(values: list[float], held: float
                                                         ) -> None:
    """flatline replaces the window with the last real value seen before it."""
    got = apply(np.array(values, dtype=float), T, Fault(type="flatline"), START, END)
    np.testing.assert_allclose(got[3:7], [held] * 4, equal_nan=True)
    np.testing.assert_allclose(got[7:], values[7:], equal_nan=True)


# ---------------------------------------------------------------- raw samples


@pytest.mark.parametrize(("name", "counter"), [
    ("http_requests_total", True), ("rpc_duration_seconds_count", True),
    ("rpc_duration_seconds_sum", True), ("rpc_duration_seconds_bucket", True),
    ("node_load5", False), ("total_things", False), ("up", False),
])
def test_counters_are_known_by_their_suffix(name: str, counter: bool) -> None:
    """Prometheus's naming convention decides which series are faulted in their rate."""
    assert is_counter(Labels({"__name__": name})) is counter


@pytest.mark.parametrize("k", [0.5, 3.0, 8.0])
def test_multiplied_counter_rate_is_k_times_inside_the_window(k: float) -> None:
    """multiply by k on a counter: k× the per-second rate between the window's samples."""
    counter = V * 10  # 1 per second
    t, v = apply_raw(COUNTER, T, counter, Fault(type="multiply", by=k), START, END)
    np.testing.assert_array_equal(t, T)
    rate = np.diff(v) / np.diff(t)
    inside = (t[:-1] >= START) & (t[1:] < END)  # intervals wholly inside [start, end)
    np.testing.assert_allclose(rate[inside], k)
    np.testing.assert_allclose(rate[t[:-1] >= END], 1.0)  # after it, the real rate again
    np.testing.assert_array_equal(v[:3], counter[:3])  # before it, untouched
    assert (np.diff(v) >= 0).all()  # monotonic: no false reset when the window ends


def test_multiplied_counter_reads_exactly() -> None:
    """The counter under ×3 for the intervals starting at t=30…60, and carried on after it."""
    _, v = apply_raw(COUNTER, T, V * 10, Fault(type="multiply", by=3), START, END)
    np.testing.assert_array_equal(v, [0, 10, 20, 30, 60, 90, 120, 150, 160, 170])


def test_counter_reset_inside_the_window_is_an_increase_not_a_drop() -> None:
    """A real reset inside the window counts the value after it as the increase, ×k."""
    counter = np.array([0, 10, 20, 30, 40, 5, 15, 25, 35, 45], dtype=float)  # reset at t=50
    _, v = apply_raw(COUNTER, T, counter, Fault(type="multiply", by=3), START, END)
    np.testing.assert_array_equal(v, [0, 10, 20, 30, 60, 75, 105, 135, 145, 155])
    assert (np.diff(v) >= 0).all()


def test_counter_set_to_a_rate() -> None:
    """set on a counter sets its per-second rate: 0 holds it still inside the window."""
    _, v = apply_raw(COUNTER, T, V * 10, Fault(type="set", value=0), START, END)
    np.testing.assert_array_equal(v, [0, 10, 20, 30, 30, 30, 30, 30, 40, 50])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_noisy_counter_stays_monotonic(seed: int) -> None:
    """Noise far larger than the rate never makes a counter go down (no false reset)."""
    _, v = apply_raw(COUNTER, T, V * 10, Fault(type="noise", stddev=50.0, seed=seed), START, END)
    assert (np.diff(v) >= 0).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_counter_with_a_stale_marker_keeps_it_and_the_samples_after_it() -> None:
    """A staleness marker in a faulted counter stays a marker; samples after it stay numbers."""
    counter = V * 10
    counter[8] = STALE_NAN  # the target missed a scrape at t=80, then came back
    _, v = apply_raw(COUNTER, T, counter, Fault(type="multiply", by=3), START, END)
    np.testing.assert_array_equal(is_stale(v), [i == 8 for i in range(10)])
    assert np.isfinite(v[9]) and v[9] >= v[7]


def test_gauge_is_faulted_in_its_values() -> None:
    """A gauge gets the same values `apply` gives, on the same timestamps."""
    t, v = apply_raw(GAUGE, T, V, Fault(type="multiply", by=3), START, END)
    np.testing.assert_array_equal(t, T)
    np.testing.assert_array_equal(v, [0, 1, 2, 9, 12, 15, 18, 7, 8, 9])


@pytest.mark.parametrize("labels", [COUNTER, GAUGE])
def test_drop_leaves_one_stale_marker_and_nothing_else_in_the_window(labels: Labels) -> None:
    """drop: a stale marker at the first dropped point, no other sample before `end`."""
    t, v = apply_raw(labels, T, V * 10, Fault(type="drop"), START, END)
    np.testing.assert_array_equal(t, [0, 10, 20, 30, 70, 80, 90])
    np.testing.assert_array_equal(is_stale(v), [False, False, False, True, False, False, False])
    np.testing.assert_array_equal(v[[0, 1, 2, 4, 5, 6]], [0, 10, 20, 70, 80, 90])


@pytest.mark.parametrize("labels", [COUNTER, GAUGE])
def test_raw_window_outside_the_samples_changes_nothing(labels: Labels) -> None:
    """A window with no sample in it returns the very same arrays."""
    t, v = apply_raw(labels, T, V, Fault(type="multiply", by=5), 500.0, 600.0)
    assert t is T and v is V


# ---------------------------------------------------------------- a faulted local source

DRILL_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
_T0 = DRILL_START.timestamp() - 3600
_GRID = _T0 + np.arange(0.0, 3 * 3600, 15.0)  # scraped every 15 s from an hour before


def _storage() -> MemoryStorage:
    return MemoryStorage([
        RawSeries(labels=Labels({"__name__": "x_total", "job": "a"}), t=_GRID, v=_GRID - _T0),
        RawSeries(labels=Labels({"__name__": "x_total", "job": "b"}), t=_GRID, v=2 * (_GRID - _T0)),
    ])


def _rate(storage: MemoryStorage) -> dict[str, np.ndarray]:
    data = StorageSource("local", storage).query_range(
        "rate(x_total[5m])", DRILL_START, DRILL_START + timedelta(hours=1), timedelta(minutes=1))
    return {column.get("job"): data[column].to_numpy() for column in data.columns}


def _minutes(a: int, b: int) -> slice:
    return slice(a, b + 1)


def test_promql_rate_over_a_faulted_storage_is_k_times_in_the_window() -> None:
    """rate(x_total[5m]) on the faulted copy is 4× from a full 5m inside the window, 1× after."""
    inj = Injection(metric='x_total{job="a"}', start=timedelta(minutes=10),
                    end=timedelta(minutes=40), fault=Fault(type="multiply", by=4))
    rate = _rate(faulted_storage(_storage(), [inj], DRILL_START))
    np.testing.assert_allclose(rate["a"][_minutes(0, 9)], 1.0)
    np.testing.assert_allclose(rate["a"][_minutes(15, 39)], 4.0)
    np.testing.assert_allclose(rate["a"][_minutes(45, 60)], 1.0)  # no false reset at the end
    np.testing.assert_allclose(rate["b"], 2.0)  # another series of the metric: untouched


def test_faulted_storage_leaves_the_original_untouched() -> None:
    """The real storage's samples and its rate are the same after a faulted copy is made."""
    original = _storage()
    before = [(s.t.copy(), s.v.copy()) for s in original.series]
    inj = Injection(metric="x_total", start=timedelta(minutes=10), end=timedelta(minutes=40),
                    fault=Fault(type="drop"))
    copy = faulted_storage(original, [inj], DRILL_START)
    assert len(copy.series[0].t) < len(original.series[0].t)
    for s, (t, v) in zip(original.series, before, strict=True):
        np.testing.assert_array_equal(s.t, t)
        np.testing.assert_array_equal(s.v, v)
    rate = _rate(original)
    np.testing.assert_allclose(rate["a"], 1.0)
    np.testing.assert_allclose(rate["b"], 2.0)


def test_faulted_storage_with_a_metric_that_matches_nothing_is_a_drill_error() -> None:
    """A raw fault on a series the source does not have says so instead of doing nothing."""
    inj = Injection(metric='x_total{job="nope"}', start=timedelta(minutes=1),
                    end=timedelta(minutes=2), fault=Fault(type="drop"))
    with pytest.raises(DrillError, match=r'metric x_total\{job="nope"\} matches no series'):
        faulted_storage(_storage(), [inj], DRILL_START)


# ---------------------------------------------------------------- a check's evaluated series

API = Labels({"service": "api"})
WEB = Labels({"service": "web"})
API_GOOD = Labels({"service": "api", "__query__": "good"})


def _frame() -> pd.DataFrame:
    grid = DRILL_START.timestamp() + np.arange(0.0, 600.0, 60.0)  # ten minutes
    ones = np.ones(len(grid))
    return frame(grid, [(API, ones), (WEB, ones), (API_GOOD, ones)])


@pytest.mark.parametrize(("labels", "faulted"), [
    ({"service": "api"}, {API}),
    ({}, {API, WEB}),  # no labels: every series of the check, still not its inputs
    ({"service": "nope"}, set()),
])
def test_fault_frame_only_touches_matching_check_columns(labels: dict[str, str],
                                                         faulted: set[Labels]) -> None:
    """Columns matching the injection's labels change in the window; `__query__` inputs never."""
    data = _frame()
    inj = Injection(check="c", labels=labels, start=timedelta(minutes=2),
                    end=timedelta(minutes=5), fault=Fault(type="set", value=0.5))
    out = fault_frame(data, [inj], DRILL_START)
    for column in out.columns:
        expected = [1, 1, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1] if column in faulted else [1.0] * 10
        np.testing.assert_array_equal(out[column].to_numpy(), expected, err_msg=str(column))
    np.testing.assert_array_equal(data.to_numpy(), 1.0)  # the input frame is untouched
