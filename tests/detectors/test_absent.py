"""The absent detector: per-series gaps, the whole query going dark, and which one wins."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from detector_frames import as_tuple, at, clipped, make_frame, nan, run_untouched
from hypothesis import given, settings
from hypothesis import strategies as st

from incident.detectors import absent
from incident.model import AbsentParams, Labels

M = timedelta(minutes=1)
FOR2 = AbsentParams(for_=2 * M)
x = nan  # shorter in the tables below

# (case id, columns, rows when there are no columns, params, now in minutes or None for
#  the last row, expected (series or "", start, fired, end, value) in minutes)
CASES: list[tuple[str, dict[str, list[float]], int, AbsentParams, float | None, list[Any]]] = [
    (
        "series disappears",
        {"a": [1, 1, x, x, x, x], "b": [1, 1, 1, 1, 1, 1]},
        0,
        FOR2,
        None,
        [("a", 2, 4, None, 1)],
    ),
    (
        "series returns",
        {"a": [1, 3, x, x, x, 2, 2], "b": [1] * 7},
        0,
        FOR2,
        None,
        [("a", 2, 4, 5, 3)],
    ),
    ("gap shorter than for", {"a": [1, x, 2, x, x, 2], "b": [1] * 6}, 0, FOR2, None, []),
    (
        "for 0 fires on the first missing point",
        {"a": [1, x, 1], "b": [1, 1, 1]},
        0,
        AbsentParams(for_=timedelta(0)),
        None,
        [("a", 1, 1, 2, 1)],
    ),
    (
        "two gaps, two episodes",
        {"a": [1, x, x, x, 1, x, x, x], "b": [1] * 8},
        0,
        FOR2,
        None,
        [("a", 1, 3, 4, 1), ("a", 5, 7, None, 1)],
    ),
    (
        "a series never seen is not reported on its own",
        {"a": [x] * 5, "b": [1] * 5},
        0,
        FOR2,
        None,
        [],
    ),
    (
        "whole query empty from the start",
        {"a": [x] * 5, "b": [x] * 5},
        0,
        FOR2,
        None,
        [("", 0, 2, None, None)],
    ),
    (
        "whole query dark, then one series returns",
        {"a": [1, 1, x, x, x, 1, 1], "b": [2, 2, x, x, x, x, x]},
        0,
        FOR2,
        None,
        # both gaps start at 2; the whole query fires at 4 and takes both series' place; when
        # a returns at 5, b is still missing and its gap (from 2) is already long enough.
        [("", 2, 4, 5, None), ("b", 2, 5, None, 2)],
    ),
    (
        "a series episode ends where the whole query fires",
        {"a": [1, 1, x, x, x, x, 1], "b": [2, 2, 2, x, x, x, x]},
        0,
        FOR2,
        None,
        [("a", 2, 4, 5, 1), ("", 3, 5, 6, None), ("b", 3, 6, None, 2)],
    ),
    (
        "dark shorter than for reports no whole-query firing",
        {"a": [1, x, x, 1, 1], "b": [1, x, 1, 1, 1]},
        0,
        FOR2,
        None,
        [],
    ),
    (
        "several series at once, sorted by fired then labels",
        {"c": [1, x, x, x, 1], "a": [1, 1, x, x, x], "b": [1, x, x, x, x], "d": [1] * 5},
        0,
        FOR2,
        None,
        [("b", 1, 3, None, 1), ("c", 1, 3, 4, 1), ("a", 2, 4, None, 1)],
    ),
    (
        "points after now are ignored",
        {"a": [1, x, x, x, 1, 1], "b": [1] * 6},
        0,
        FOR2,
        3,
        [("a", 1, 3, None, 1)],
    ),
    ("not yet fired at now", {"a": [1, x, x, x, 1, 1], "b": [1] * 6}, 0, FOR2, 2, []),
    ("zero columns: the whole query is absent", {}, 5, FOR2, None, [("", 0, 2, None, None)]),
    ("zero columns and zero rows", {}, 0, FOR2, 0, []),
    ("zero rows", {"a": []}, 0, FOR2, 0, []),
]


@pytest.mark.parametrize(
    ("columns", "rows", "params", "now", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_firing_intervals(
    columns: dict[str, list[float]],
    rows: int,
    params: AbsentParams,
    now: float | None,
    expected: list,
) -> None:
    """Each synthetic frame yields exactly the expected episodes, in order, frame untouched."""
    frame = make_frame(columns, rows=rows if not columns else None)
    when = at(now if now is not None else len(frame) - 1)
    firings = run_untouched(absent.detect, frame, params, when)
    assert [as_tuple(f) for f in firings] == expected


def test_whole_query_firing_has_empty_labels_and_reason() -> None:
    """The whole-query firing carries Labels() and says the query returned nothing."""
    [f] = absent.detect(make_frame({}, rows=11), AbsentParams(for_=10 * M), at(10))
    assert f.labels == Labels()
    assert math.isnan(f.value)
    assert f.reason == "query returned no data for 10m"


def test_series_reason() -> None:
    """A per-series firing says for how long the series has had no data."""
    frame = make_frame({"a": [1, x, x, x], "b": [1, 1, 1, 1]})
    [f] = absent.detect(frame, AbsentParams(for_=90 * timedelta(seconds=1)), at(3))
    assert f.reason == "no data for 2m"


# ------------------------------------------------------------------ properties


def reference(frame: pd.DataFrame, params: AbsentParams) -> set[tuple[Any, ...]]:
    """A plain per-point reading of the semantics, for comparison."""
    times = list(frame.index)
    values = frame.to_numpy()
    out: set[tuple[Any, ...]] = set()

    def m(i: int | None) -> float | None:
        return None if i is None else (times[i] - at(0)) / M

    whole = []
    dark_from: int | None = None
    episode: tuple[Any, ...] | None = None
    for i in range(len(times)):
        if np.isnan(values[i]).all():
            dark_from = i if dark_from is None else dark_from
            firing = times[i] - times[dark_from] >= params.for_
        else:
            dark_from, firing = None, False
        if firing and episode is None:
            episode = (dark_from, i)
        if not firing and episode is not None:
            out.add(("", m(episode[0]), m(episode[1]), m(i), None))
            episode = None
        whole.append(firing)
    if episode is not None:
        out.add(("", m(episode[0]), m(episode[1]), None, None))

    for c, label in enumerate(frame.columns):
        last: int | None = None
        gap: int | None = None
        episode = None
        for i in range(len(times)):
            v = values[i, c]
            if not np.isnan(v):
                last, gap = i, None
            elif last is not None and gap is None:
                gap = i
            active = gap is not None and times[i] - times[gap] >= params.for_ and not whole[i]
            if active and episode is None:
                episode = (gap, i, values[last, c])
            if not active and episode is not None:
                out.add((label.get("s"), m(episode[0]), m(episode[1]), m(i), episode[2]))
                episode = None
        if episode is not None:
            out.add((label.get("s"), m(episode[0]), m(episode[1]), None, episode[2]))
    return out


CELLS = st.sampled_from([nan, nan, nan, 1.0, 2.0])


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """A small minute-grid frame of 0–3 series, mostly missing."""
    n = draw(st.integers(1, 25))
    cols = draw(st.integers(0, 3))
    columns = {str(c): draw(st.lists(CELLS, min_size=n, max_size=n)) for c in range(cols)}
    return make_frame(columns, rows=n)


PARAMS = st.builds(AbsentParams, for_=st.integers(0, 4).map(lambda k: k * M))


@settings(max_examples=300, deadline=None)
@given(frame=frames(), params=PARAMS)
def test_matches_reference(frame: pd.DataFrame, params: AbsentParams) -> None:
    """The vectorised detector agrees with the per-point reading on any frame."""
    got = run_untouched(absent.detect, frame, params, at(len(frame) - 1))
    assert {as_tuple(f) for f in got} == reference(frame, params)


@settings(max_examples=300, deadline=None)
@given(frame=frames(), params=PARAMS, data=st.data())
def test_causal(frame: pd.DataFrame, params: AbsentParams, data: st.DataObject) -> None:
    """Verdicts up to t never change when points after t are dropped or rewritten."""
    n = len(frame)
    t = at(data.draw(st.integers(0, n - 1), label="t"))
    full = absent.detect(frame, params, at(n - 1))
    assert clipped(full, t) == clipped(absent.detect(frame, params, t), t)
    future = frame.copy()
    later = int((future.index > t).sum())
    if later and frame.shape[1]:
        cells = data.draw(
            st.lists(CELLS, min_size=later * frame.shape[1], max_size=later * frame.shape[1]),
            label="future",
        )
        future.iloc[n - later :] = np.asarray(cells).reshape(later, frame.shape[1])
    assert clipped(absent.detect(future, params, at(n - 1)), t) == clipped(full, t)
