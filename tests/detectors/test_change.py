"""The change detector: exact firing intervals against the same series `offset` ago, and causality."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from causality import assert_causal
from detector_frames import as_tuple, at, make_frame, nan, run_untouched
from hypothesis import given, settings
from hypothesis import strategies as st

from incident.detectors import change
from incident.model import ChangeParams, Direction, Labels

M = timedelta(minutes=1)
BASE = [10.0, 10, 10, 10, 10]


def params(offset: int = 5, percent: float | None = 20, delta: float | None = None,
           direction: Direction = Direction.BOTH, for_: int = 0) -> ChangeParams:
    """Change params with durations in minutes."""
    return ChangeParams(offset=offset * M, percent=percent, delta=delta, direction=direction,
                        for_=for_ * M)


CASES: list[tuple[str, list[float], ChangeParams, list[Any]]] = [
    ("step down", [*BASE, 10, 10, 7, 7, 7], params(), [("a", 7, 7, None, 7)]),
    ("step down, for 2m", [*BASE, 10, 10, 7, 7, 7], params(for_=2), [("a", 7, 9, None, 7)]),
    ("spike up then back", [*BASE, 10, 15, 10, 10, 10], params(), [("a", 6, 6, 7, 15)]),
    ("down only ignores a rise", [*BASE, 10, 15, 10, 10, 10], params(direction=Direction.DOWN), []),
    ("within percent", [*BASE, 11, 9, 11.9, 8.1, 10], params(), []),
    ("ramp crosses 20% at +21", [*BASE, 10, 11, 12, 12.1, 13], params(direction=Direction.UP),
     [("a", 8, 8, None, 13)]),
    ("delta alone", [*BASE, 10, 13, 14, 10, 10], params(percent=None, delta=3.5),
     [("a", 7, 7, 8, 14)]),
    ("percent and delta both needed", [1.0] * 5 + [2, 2, 30, 1, 1], params(delta=5),
     [("a", 7, 7, 8, 30)]),
    ("no reference before the frame", [50.0, 1, 1, 1, 1, 1], params(), [("a", 5, 5, None, 1)]),
    ("NaN now holds an episode", [*BASE, 7, nan, nan, 7, 10], params(), [("a", 5, 5, 9, 7)]),
    ("NaN reference holds too", [10, 10, nan, 10, 10, 7, 7, 7, 10, 10], params(),
     [("a", 5, 5, 8, 7)]),
    ("NaN resets a pending run", [*BASE, 7, nan, 7, 7, 7], params(for_=1), [("a", 7, 8, None, 7)]),
    ("constant series", [4.0] * 12, params(), []),
    ("zero reference: any change is infinite percent", [0.0] * 5 + [0, 1, 0, 0, 0], params(),
     [("a", 6, 6, 7, 1)]),
]


@pytest.mark.parametrize(("columns", "p", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_firing_intervals(columns: list[float], p: ChangeParams, expected: list[Any]) -> None:
    """Each synthetic series fires exactly over the expected interval."""
    frame = make_frame({"a": columns})
    got = [as_tuple(f) for f in run_untouched(change.detect, frame, p, at(len(columns) - 1))]
    assert got == expected


def test_seasonal_week_offset_on_an_hourly_grid() -> None:
    """A weekly pattern compared with 1w ago is quiet until one day drops 30%."""
    index = pd.date_range("2024-03-01", periods=24 * 21, freq="1h", tz="UTC")
    hours = np.arange(len(index))
    values = 100 + 50 * np.sin(2 * np.pi * hours / (24 * 7))
    values[24 * 16: 24 * 16 + 6] *= 0.7
    frame = pd.DataFrame({Labels({"s": "a"}): values}, index=index)
    p = ChangeParams(offset=timedelta(weeks=1), percent=20, direction=Direction.DOWN,
                     for_=timedelta(hours=1))
    got = change.detect(frame, p, index[-1].to_pydatetime())
    assert [(f.start, f.fired, f.end) for f in got] == [
        (index[24 * 16], index[24 * 16 + 1], index[24 * 16 + 6])]
    assert got[0].reason == "-30% vs 7d ago for 1h"


def test_reason_and_later_points_ignored() -> None:
    """The reason gives the change at the firing point; points after now are not read."""
    frame = make_frame({"a": [*BASE, 10, 10, 7.7, 7, 7]})
    got = change.detect(frame, params(), at(7))
    assert [(as_tuple(f), f.reason) for f in got] == [(("a", 7, 7, None, 7.7), "-23% vs 5m ago")]


def test_volume_guard_needs_events_on_both_sides() -> None:
    """A drop backed by too few events, now or at the reference, does not fire."""
    ratio = [*BASE, 10, 10, 7, 7, 7]
    total = [100.0] * 5 + [100, 100, 3, 100, 100]
    frame = make_frame({"a": ratio})
    totals = make_frame({"a": total}).set_axis([Labels({"s": "a", "__query__": "total"})], axis=1)
    both = pd.concat([frame, totals], axis=1)
    p = ChangeParams(offset=5 * M, percent=20, total="t", min_events=50)
    got = [as_tuple(f) for f in change.detect(both, p, at(9))]
    assert got == [("a", 8, 8, None, 7)]


@pytest.mark.parametrize("p", [ChangeParams(offset=5 * M), ChangeParams(offset=0 * M, percent=5)])
def test_inconsistent_params_raise(p: ChangeParams) -> None:
    """Params config should have rejected raise ValueError."""
    with pytest.raises(ValueError):
        change.detect(make_frame({"a": [1.0, 2.0]}), p, at(1))


LEVELS = st.sampled_from([nan, 0.0, 1.0, 1.0, 2.0, 5.0])


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 20), data=st.data(),
       direction=st.sampled_from(list(Direction)), for_=st.integers(0, 3))
def test_causal(n: int, data: st.DataObject, direction: Direction, for_: int) -> None:
    """Appending or rewriting future points never changes a past verdict."""
    frame = make_frame({"a": data.draw(st.lists(LEVELS, min_size=n, max_size=n)),
                        "b": data.draw(st.lists(LEVELS, min_size=n, max_size=n))})
    assert_causal(change.detect, frame, params(offset=3, direction=direction, for_=for_), data, LEVELS)
