"""The anomaly detector: exact episodes on synthetic series, seasonality, guards, causality."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from causality import assert_causal
from detector_frames import T0, as_tuple, at, make_frame, minute, nan, run_untouched
from hypothesis import given, settings
from hypothesis import strategies as st

from incident.detectors import _grid, anomaly
from incident.model import AnomalyParams, Direction, Labels

M = timedelta(minutes=1)
P = AnomalyParams(season="none", window=10 * M, memory=30 * M, smooth=3 * M, clear_after=5 * M)
NOISE = [0.1, -0.1, 0.2, -0.2, 0.0]


def series(n: int, change: Any = lambda i, v: v) -> list[float]:
    """10 plus a small repeating wiggle, with `change(i, v)` applied to each point."""
    return [change(i, 10 + NOISE[i % 5]) for i in range(n)]


CASES: list[tuple[str, list[float], list[Any]]] = [
    ("spike", series(60, lambda i, v: v + 5 if i == 40 else v), [("a", 40, 40, 45, 15.1)]),
    ("level shift is one episode", series(80, lambda i, v: v + 3 if i >= 40 else v),
     [("a", 40, 40, 47, 13.2)]),
    ("ramp", series(80, lambda i, v: v + 0.2 * (i - 40) if i >= 40 else v),
     [("a", 42, 42, 52, 11.6)]),
    ("dip", series(60, lambda i, v: v - 5 if i in (40, 41) else v), [("a", 40, 40, 46, 4.9)]),
    ("a repeat within memory is not news",
     series(80, lambda i, v: v + 5 if i in (30, 60) else v), [("a", 30, 30, 35, 15.1)]),
    ("anomalies closer than clear_after are one episode",
     series(60, lambda i, v: v + 5 if i == 30 else (v + 8 if i == 33 else v)),
     [("a", 30, 30, 38, 17.8)]),
    ("constant series", [3.0] * 60, []),
    ("constant series with a blip", [3.0] * 40 + [4.0] + [3.0] * 19, [("a", 40, 40, 45, 4.0)]),
    ("a gap is no anomaly", series(60, lambda i, v: nan if 20 <= i < 30 else v), []),
    ("no verdict during warm-up", series(40, lambda i, v: v + 5 if i == 5 else v), []),
    ("missing data never ends an episode",
     series(60, lambda i, v: v + 5 if i == 40 else (nan if 41 <= i < 50 else v)),
     [("a", 40, 40, 50, 15.1)]),
    ("still firing at now", series(43, lambda i, v: v + 5 if i == 40 else v),
     [("a", 40, 40, None, 15.1)]),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_firing_intervals(values: list[float], expected: list[Any]) -> None:
    """Each synthetic series gives exactly the expected episodes."""
    frame = make_frame({"a": values})
    got = [as_tuple(f) for f in run_untouched(anomaly.detect, frame, P, at(len(values) - 1))]
    assert [(*g[:4], round(g[4], 6)) for g in got] == expected


@pytest.mark.parametrize(("params", "expected"), [
    (P, [("a", 40, 40, 45)]),
    (AnomalyParams(season="none", window=10 * M, memory=30 * M, smooth=3 * M, clear_after=5 * M,
                   min_deviation=6), []),
    (AnomalyParams(season="none", window=10 * M, memory=30 * M, smooth=3 * M, clear_after=5 * M,
                   direction=Direction.DOWN), []),
    (AnomalyParams(season="none", window=10 * M, memory=30 * M, smooth=3 * M, clear_after=5 * M,
                   for_=2 * M), []),
])
def test_min_deviation_direction_and_for(params: AnomalyParams, expected: list[Any]) -> None:
    """A +5 spike passes the defaults but not min_deviation 6, direction down, or for 2m."""
    frame = make_frame({"a": series(60, lambda i, v: v + 5 if i == 40 else v)})
    assert [as_tuple(f)[:4] for f in anomaly.detect(frame, params, at(59))] == expected


def test_reasons() -> None:
    """The reason names the size in MADs and the baseline, or the step off a flat one."""
    spiky = make_frame({"a": series(60, lambda i, v: v + 5 if i == 40 else v)})
    flat = make_frame({"a": [3.0] * 40 + [4.0] + [3.0] * 19})
    assert [f.reason for f in anomaly.detect(spiky, P, at(59))] == ["34.4 MADs above the baseline"]
    assert [f.reason for f in anomaly.detect(flat, P, at(59))] == [
        "+1 off the baseline, which had been flat"]


def _daily(days: int) -> pd.DataFrame:
    """A one-minute daily sine wave with a wiggle, and a 20-minute drop at day 3's peak."""
    i = np.arange(days * 1440)
    v = 100 + 40 * np.sin(2 * np.pi * i / 1440) + np.resize([0.1, -0.1, 0.2, -0.2, 0, 0.15, -0.15], i.size)
    v[3 * 1440 + 360: 3 * 1440 + 380] -= 30  # 110 is normal at other hours, not at the peak
    return pd.DataFrame({Labels({"s": "a"}): v}, index=pd.date_range(T0, periods=i.size, freq="1min"))


@pytest.mark.parametrize(("season", "expected"), [
    ("1d", [(4680, 4680, 4701, "201.7 MADs below the 1d-seasonal baseline")]),
    ("auto", [(4680, 4680, 4701, "201.7 MADs below the 1d-seasonal baseline")]),
    ("none", [(4680, 4680, 4708, "18.8 MADs below the baseline")]),
])
def test_daily_season(season: str, expected: list[Any]) -> None:
    """Against the 1d-seasonal baseline the drop is huge; the daily swing itself never fires."""
    frame = _daily(4)
    p = AnomalyParams(season=season, window=timedelta(hours=1), memory=timedelta(hours=2),
                      smooth=5 * M, clear_after=15 * M, sensitivity=4)
    got = anomaly.detect(frame, p, frame.index[-1].to_pydatetime())
    assert [(minute(f.start), minute(f.fired), minute(f.end), f.reason) for f in got] == expected


def test_weekly_season_on_an_hourly_grid() -> None:
    """A Wednesday at weekend level is caught against 1w; without a season weekends page."""
    i = np.arange(24 * 7 * 4)
    v = 100 + 30 * (i % (24 * 7) >= 24 * 5) + np.resize([*NOISE, 0.15, -0.15], i.size)
    v[24 * 7 * 3 + 48: 24 * 7 * 3 + 54] += 30
    index = pd.date_range(T0, periods=i.size, freq="1h")
    frame = pd.DataFrame({Labels({"s": "a"}): v}, index=index)
    hour = timedelta(hours=1)

    def run(season: str) -> list[float]:
        p = AnomalyParams(season=season, window=timedelta(days=1), memory=timedelta(days=2),
                          smooth=3 * hour, clear_after=3 * hour)
        return [(f.fired - T0) / hour for f in anomaly.detect(frame, p, index[-1].to_pydatetime())]

    assert run("1w") == [552]
    assert len(run("none")) == 7


def test_volume_guard_blocks_thin_points() -> None:
    """A conversion dip over 3 sessions does not fire; the same dip over 500 does."""
    ratio = series(60, lambda i, v: v / 100 - (0.05 if i == 40 else 0))
    frame = make_frame({"a": ratio})
    for sessions, expected in ((3.0, []), (500.0, [40.0])):
        totals = make_frame({"a": [sessions] * 60}).set_axis(
            [Labels({"s": "a", "__query__": "total"})], axis=1)
        p = AnomalyParams(season="none", window=10 * M, memory=30 * M, smooth=3 * M,
                          clear_after=5 * M, total="t", min_events=100, significance=0.01)
        got = anomaly.detect(pd.concat([frame, totals], axis=1), p, at(59))
        assert [minute(f.fired) for f in got] == expected


def test_many_series_in_one_pass() -> None:
    """Series are independent: a spike in one column fires only that column."""
    frame = make_frame({str(k): series(60, lambda i, v, k=k: v + 5 if i == 20 + k else v)
                        for k in range(30)})
    got = anomaly.detect(frame, P, at(59))
    assert [(f.labels.get("s"), minute(f.fired)) for f in got] == [(str(k), 20 + k) for k in range(30)]


def test_infinite_points_are_an_anomaly_and_never_the_baseline() -> None:
    """A quantile in the +Inf bucket for six minutes is one episode, and hides no later spike."""
    values = series(120, lambda i, v: math.inf if 40 <= i < 46 else v + 5 if i == 80 else v)
    p = replace(P, memory=60 * M)
    got = anomaly.detect(make_frame({"a": values}), p, at(119))
    assert [as_tuple(f) for f in got] == [("a", 40, 40, 50, math.inf), ("a", 80, 80, 85, 15.1)]
    assert got[0].reason == "at +Inf, beyond the baseline and any bucket"
    down = anomaly.detect(make_frame({"a": values}), replace(p, direction=Direction.DOWN), at(119))
    assert down == []


def test_blocks_of_series_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Series are read a block at a time; with blocks of one series the firings are the same."""
    frame = make_frame({str(k): series(60, lambda i, v, k=k: v + 5 if i == 20 + k % 7 else v)
                        for k in range(20)})
    whole = anomaly.detect(frame, P, at(59))
    monkeypatch.setattr(_grid, "BLOCK_POINTS", 1)
    assert anomaly.detect(frame, P, at(59)) == whole
    assert len(whole) == 20


@pytest.mark.parametrize("rows", [0, 1, 5, 40])
@pytest.mark.parametrize(("size", "min_periods"), [(1, 1), (6, 3), (6, 6), (60, 1), (60, 30)])
@pytest.mark.parametrize("how", ["median", "max"])
def test_rolling_matches_pandas(rows: int, size: int, min_periods: int, how: str) -> None:
    """bottleneck's rolling statistics give pandas' values: NaN and ±Inf skipped, long windows."""
    rng = np.random.default_rng(rows * 100 + size)
    a = rng.normal(size=(rows, 4))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[rng.random(a.shape) < 0.1] = np.inf  # skipped like NaN, as pandas does
    a[rng.random(a.shape) < 0.05] = -np.inf
    a[:, 3] = np.nan  # a series with no data at all
    roll = pd.DataFrame(a).rolling(size, min_periods=min_periods)
    expected = getattr(roll, how)().to_numpy()
    np.testing.assert_array_equal(anomaly._rolling(a, size, min_periods, how), expected)


LEVELS = st.sampled_from([nan, 0.0, 1.0, 1.0, 1.2, 2.0, 9.0])
SMALL = [
    AnomalyParams(season="none", window=4 * M, memory=6 * M, smooth=2 * M, clear_after=3 * M),
    AnomalyParams(season="auto", window=3 * M, memory=5 * M, smooth=1 * M, clear_after=1 * M,
                  for_=1 * M, sensitivity=1.0),
]


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 30), data=st.data(), which=st.sampled_from([0, 1]))
def test_causal(n: int, data: st.DataObject, which: int) -> None:
    """Appending or rewriting future points never changes a past verdict."""
    frame = make_frame({"a": data.draw(st.lists(LEVELS, min_size=n, max_size=n)),
                        "b": data.draw(st.lists(LEVELS, min_size=n, max_size=n))})
    assert_causal(anomaly.detect, frame, SMALL[which], data, LEVELS)
