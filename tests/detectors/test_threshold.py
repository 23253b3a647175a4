"""The threshold detector: exact firing intervals, hysteresis, NaN rules, causality."""

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

from incident.detectors import threshold
from incident.model import Labels, ThresholdParams

M = timedelta(minutes=1)


def above(level: float, for_: int = 2, clear: float | None = None) -> ThresholdParams:
    """Params for "above `level` for `for_` minutes"."""
    return ThresholdParams(above=level, for_=for_ * M, clear=clear)


def below(level: float, for_: int = 2, clear: float | None = None) -> ThresholdParams:
    """Params for "below `level` for `for_` minutes"."""
    return ThresholdParams(below=level, for_=for_ * M, clear=clear)


# (case id, columns, params, now in minutes or None for the last row,
#  expected (series, start, fired, end, value) in minutes)
CASES: list[tuple[str, dict[str, list[float]], ThresholdParams, float | None, list[Any]]] = [
    ("step", {"a": [0, 0, 0, 5, 5, 5, 5, 5]}, above(1), None, [("a", 3, 5, None, 5)]),
    (
        "step, for 0 fires at once",
        {"a": [0, 0, 0, 5, 5]},
        above(1, 0),
        None,
        [("a", 3, 3, None, 5)],
    ),
    ("ramp", {"a": [0, 1, 2, 3, 4, 5, 6, 7]}, above(3.5), None, [("a", 4, 6, None, 7)]),
    ("spike shorter than for", {"a": [0, 5, 5, 0, 0, 0]}, above(1), None, []),
    ("breach exactly for", {"a": [0, 5, 5, 5, 0, 0]}, above(1), None, [("a", 1, 3, 4, 5)]),
    ("equal to the level is no breach", {"a": [0, 1, 1, 1, 1]}, above(1, 0), None, []),
    ("breaching from the first row", {"a": [5, 5, 5, 0]}, above(1), None, [("a", 0, 2, 3, 5)]),
    (
        "hysteresis: dips between clear and level hold",
        {"a": [0, 2, 2, 2, 0.8, 0.7, 2, 0.5, 0]},
        above(1, clear=0.5),
        None,
        [("a", 1, 3, 7, 2)],
    ),
    (
        "without clear the level itself clears",
        {"a": [0, 2, 2, 2, 0.8, 2, 2, 2]},
        above(1),
        None,
        [("a", 1, 3, 4, 2), ("a", 5, 7, None, 2)],
    ),
    (
        "below with clear",
        {"a": [1, 0.98, 0.97, 0.96, 0.992, 0.996, 1]},
        below(0.99, clear=0.995),
        None,
        [("a", 1, 3, 5, 0.992)],
    ),
    (
        "NaN while pending resets the run",
        {"a": [0, 5, nan, 5, 5, 5, 0]},
        above(1),
        None,
        [("a", 3, 5, 6, 5)],
    ),
    (
        "a dip while pending resets the run",
        {"a": [0, 5, 5, 0.8, 5, 5, 5]},
        above(1, clear=0.5),
        None,
        [("a", 4, 6, None, 5)],
    ),
    (
        "NaN while firing holds",
        {"a": [0, 5, 5, 5, nan, nan, 5, 0]},
        above(1),
        None,
        [("a", 1, 3, 7, 5)],
    ),
    (
        "NaN at the end keeps firing with the last number",
        {"a": [0, 5, 5, 5, 6, nan, nan]},
        above(1),
        None,
        [("a", 1, 3, None, 6)],
    ),
    (
        "recovers and re-breaches: two episodes",
        {"a": [5, 5, 5, 0, 5, 5, 5, 5]},
        above(1),
        None,
        [("a", 0, 2, 3, 5), ("a", 4, 6, None, 5)],
    ),
    (
        "a new breach right after the clearing point",
        {"a": [2, 0.3, 2, 0.3]},
        above(1, 0, clear=0.5),
        None,
        [("a", 0, 0, 1, 2), ("a", 2, 2, 3, 2)],
    ),
    (
        "both above and below: one run across both sides",
        {"a": [0, 2, -2, 0]},
        ThresholdParams(above=1, below=-1),
        None,
        [("a", 1, 1, 3, -2)],
    ),
    (
        "several columns, sorted by fired then labels",
        {"b": [5, 5, 5, 5, 0], "a": [0, 5, 5, 5, 5], "c": [5, 5, 5, 0, 0], "d": [0, 0, 0, 0, 0]},
        above(1),
        None,
        [("b", 0, 2, 4, 5), ("c", 0, 2, 3, 5), ("a", 1, 3, None, 5)],
    ),
    (
        "points after now are ignored",
        {"a": [0, 5, 5, 5, 0, 0]},
        above(1),
        3,
        [("a", 1, 3, None, 5)],
    ),
    ("now between grid points", {"a": [0, 5, 5, 5, 0, 0]}, above(1), 3.5, [("a", 1, 3, None, 5)]),
    ("not yet fired at now", {"a": [0, 5, 5, 5, 0, 0]}, above(1), 2, []),
    ("now before the first row", {"a": [5, 5, 5]}, above(1, 0), -1, []),
    ("zero columns", {}, above(1), 0, []),
    ("zero rows", {"a": []}, above(1), 0, []),
]


@pytest.mark.parametrize(
    ("columns", "params", "now", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_firing_intervals(
    columns: dict[str, list[float]], params: ThresholdParams, now: float | None, expected: list
) -> None:
    """Each synthetic series yields exactly the expected episodes, in order, frame untouched."""
    frame = make_frame(columns, rows=5 if not columns else None)
    when = at(now if now is not None else len(frame) - 1)
    firings = run_untouched(threshold.detect, frame, params, when)
    assert [as_tuple(f) for f in firings] == expected


@pytest.mark.parametrize(
    ("columns", "params", "reason"),
    [
        ({"a": [1, 0.98, 0.82, 0.5]}, below(0.99, 1), "0.82 < 0.99 for 1m"),
        ({"a": [0, 7, 8]}, above(5, 0), "7 > 5"),
        (
            {"a": [0, -3, -3, -3]},
            ThresholdParams(above=1, below=-1, for_=90 * timedelta(seconds=1)),
            "-3 < -1 for 1m30s",
        ),
    ],
)
def test_reason(columns: dict[str, list[float]], params: ThresholdParams, reason: str) -> None:
    """The reason states the value, the level and `for` at the point the episode fired."""
    frame = make_frame(columns)
    [firing] = threshold.detect(frame, params, at(len(frame) - 1))
    assert firing.reason == reason


def test_firing_fields_are_plain_types() -> None:
    """Times come back as tz-aware datetimes and values as floats, ready for the store."""
    [f] = threshold.detect(make_frame({"a": [5, 5]}), above(1, 0), at(1))
    assert type(f.start) is type(at(0)) and f.start.tzinfo is not None
    assert type(f.value) is float
    assert f.labels == Labels({"s": "a"}) and f.active


@pytest.mark.parametrize(
    "params",
    [
        ThresholdParams(for_=M),
        ThresholdParams(above=1, below=0, clear=0.5),
        ThresholdParams(above=1, clear=2),
        ThresholdParams(below=1, clear=0.5),
        ThresholdParams(above=1, for_=-M),
    ],
    ids=[
        "no level",
        "clear with both levels",
        "clear above above",
        "clear below below",
        "negative for",
    ],
)
def test_inconsistent_params_raise(params: ThresholdParams) -> None:
    """Params that config should have rejected raise ValueError instead of guessing."""
    with pytest.raises(ValueError):
        threshold.detect(make_frame({"a": [1, 2]}), params, at(1))


def test_many_series_in_one_pass() -> None:
    """A wide frame is evaluated in one vectorised pass and agrees with the reference."""
    rng = np.random.default_rng(7)
    values = rng.choice([nan, 0.0, 0.5, 1.0, 2.0], size=(2000, 200))
    frame = pd.DataFrame(
        values,
        index=pd.date_range(at(0), periods=2000, freq="1min"),
        columns=[Labels({"s": str(i)}) for i in range(200)],
    )
    params = above(0.9, 2, clear=0.4)
    got = {as_tuple(f) for f in threshold.detect(frame, params, at(1999))}
    assert len(got) > 1000
    assert got == reference(frame, params)


# ------------------------------------------------------------------ properties


def reference(frame: pd.DataFrame, params: ThresholdParams) -> set[tuple[Any, ...]]:
    """A plain per-point state machine, the obvious reading of the semantics, for comparison."""
    out = set()
    times = list(frame.index)
    for label in frame.columns:
        pending = fired = last = None
        for i, v in enumerate(frame[label].to_numpy()):
            number = not math.isnan(v)
            if fired is not None:
                if not number or _beyond_clear(v, params):
                    last = v if number else last
                    continue
                out.add(_row(label, times, pending, fired, i, last))
                pending = fired = None
                continue
            if number and _breaches(v, params):
                pending = i if pending is None else pending
                if times[i] - times[pending] >= params.for_:
                    fired, last = i, v
            else:
                pending = None
        if fired is not None:
            out.add(_row(label, times, pending, fired, None, last))
    return out


def _breaches(v: float, p: ThresholdParams) -> bool:
    return (p.above is not None and v > p.above) or (p.below is not None and v < p.below)


def _beyond_clear(v: float, p: ThresholdParams) -> bool:
    if p.clear is None:
        return _breaches(v, p)
    return v > p.clear if p.above is not None else v < p.clear


def _row(
    label: Labels, times: list, start: int | None, fired: int, end: int | None, value: Any
) -> tuple:
    def m(i: int | None) -> float | None:
        return None if i is None else (times[i] - at(0)) / M

    return (label.get("s"), m(start), m(fired), m(end), float(value))


LEVELS = st.sampled_from([nan, nan, 0.0, 0.5, 1.0, 1.5, 2.0])


@st.composite
def threshold_params(draw: st.DrawFn) -> ThresholdParams:
    """Any consistent ThresholdParams over the LEVELS scale."""
    side = draw(st.sampled_from(["above", "below", "both"]))
    for_ = draw(st.integers(0, 4)) * M
    if side == "both":
        return ThresholdParams(above=1.5, below=0.5, for_=for_)
    clear = draw(st.sampled_from([None, 0.25, 1.0]))
    if side == "above":
        return ThresholdParams(above=1.0, for_=for_, clear=None if clear == 1.0 else clear)
    return ThresholdParams(below=1.0, for_=for_, clear=None if clear is None else 2 - clear)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """A small minute-grid frame of 1–3 series drawn from LEVELS."""
    n = draw(st.integers(1, 25))
    cols = draw(st.integers(1, 3))
    return make_frame({str(c): draw(st.lists(LEVELS, min_size=n, max_size=n)) for c in range(cols)})


@settings(max_examples=300, deadline=None)
@given(frame=frames(), params=threshold_params())
def test_matches_reference(frame: pd.DataFrame, params: ThresholdParams) -> None:
    """The vectorised detector agrees with the per-point state machine on any series."""
    got = {as_tuple(f) for f in run_untouched(threshold.detect, frame, params, at(len(frame) - 1))}
    assert got == reference(frame, params)


@settings(max_examples=300, deadline=None)
@given(frame=frames(), params=threshold_params(), data=st.data())
def test_causal(frame: pd.DataFrame, params: ThresholdParams, data: st.DataObject) -> None:
    """Verdicts up to t never change when points after t are dropped or rewritten."""
    n = len(frame)
    t = at(data.draw(st.integers(0, n - 1), label="t"))
    full = threshold.detect(frame, params, at(n - 1))
    assert clipped(full, t) == clipped(threshold.detect(frame, params, t), t)
    future = frame.copy()
    later = int((future.index > t).sum())
    if later:
        cells = data.draw(
            st.lists(LEVELS, min_size=later * frame.shape[1], max_size=later * frame.shape[1]),
            label="future",
        )
        future.iloc[n - later :] = np.asarray(cells).reshape(later, frame.shape[1])
    assert clipped(threshold.detect(future, params, at(n - 1)), t) == clipped(full, t)
