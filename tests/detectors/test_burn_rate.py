"""The burn_rate detector: window pairs, good/total queries, missing SLI, guard, causality."""

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

from incident.detectors import _grid, burn_rate
from incident.model import BurnRateParams, BurnWindow, Labels, Severity

M = timedelta(minutes=1)
# Small pairs on a minute grid: budget 10% (objective 0.9).
PAIRS = (BurnWindow(long=6 * M, short=2 * M, burn=5),
         BurnWindow(long=10 * M, short=4 * M, burn=4, severity=Severity.LOW))
P = BurnRateParams(objective=0.9, windows=PAIRS)


def sli(errors: dict[int, float], n: int = 30) -> list[float]:
    """A success ratio of 1 except at the given minutes, where it is 1 - error."""
    return [1 - errors.get(i, 0.0) if not np.isnan(errors.get(i, 0.0)) else nan for i in range(n)]


CASES: list[tuple[str, list[float], list[Any]]] = [
    ("all good", sli({}), []),
    ("a short blip does not burn the long window", sli({15: 1.0}), []),
    ("outage pages on the fast pair", sli({i: 1.0 for i in range(12, 18)}), [("a", 14, 14, 20, 5.0)]),
    ("slow burn only opens the ticket pair", sli({i: 0.45 for i in range(10, 30)}),
     [("a", 18, 18, None, 4.5)]),
    ("a missing SLI holds, never reads as 100%",
     sli({12: 1, 13: 1, 14: 1, 15: 1, 16: nan, 17: nan, 18: nan}), [("a", 14, 14, 19, 6.666667)]),
    ("no verdict before the long window is in the frame", sli({i: 1.0 for i in range(0, 4)}), []),
]


@pytest.mark.parametrize(("values", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_firing_intervals(values: list[float], expected: list[Any]) -> None:
    """Each SLI series burns over exactly the expected interval."""
    frame = make_frame({"a": values})
    got = [as_tuple(f) for f in run_untouched(burn_rate.detect, frame, P, at(len(values) - 1))]
    assert [(*g[:4], round(g[4], 6)) for g in got] == expected


def test_reason_names_the_pair_and_its_severity() -> None:
    """The first holding pair names the reason; a pair's own severity is stated."""
    fast = burn_rate.detect(make_frame({"a": sli({i: 1.0 for i in range(12, 18)})}), P, at(29))
    slow = burn_rate.detect(make_frame({"a": sli({i: 0.45 for i in range(10, 30)})}), P, at(29))
    assert [f.reason for f in fast] == ["burning 5.0× budget over 6m and 2m (≥5×)"]
    assert [f.reason for f in slow] == ["burning 4.1× budget over 10m and 4m (≥4×) (severity low)"]


def _counts(good: list[float], total: list[float]) -> pd.DataFrame:
    frame = make_frame({"g": good, "t": total})
    return frame.set_axis([Labels({"s": "a", "__query__": "good"}),
                           Labels({"s": "a", "__query__": "total"})], axis=1)


def test_good_and_total_use_the_ratio_of_sums() -> None:
    """With counts, a busy minute weighs more than a quiet one; labels drop __query__."""
    total = [100.0] * 30
    good = [100.0] * 30
    for i in range(12, 18):
        good[i] = 0.0
    p = BurnRateParams(objective=0.9, windows=PAIRS, good="g", total="t")
    got = burn_rate.detect(_counts(good, total), p, at(29))
    assert [as_tuple(f)[:4] for f in got] == [("a", 14, 14, 20)]
    assert got[0].labels == Labels({"s": "a"})


def test_missing_good_is_no_data_not_success() -> None:
    """A good series that vanishes while total goes on is no evidence, not a perfect record."""
    total = [100.0] * 30
    good = [100.0] * 12 + [0.0] * 4 + [nan] * 14
    p = BurnRateParams(objective=0.9, windows=PAIRS, good="g", total="t")
    got = burn_rate.detect(_counts(good, total), p, at(29))
    assert [as_tuple(f)[:4] for f in got] == [("a", 14, 14, None)]


def test_volume_guard_needs_events_in_both_windows() -> None:
    """Six failures out of six requests do not page with min_events 50."""
    total = [1.0] * 30
    good = [1.0] * 12 + [0.0] * 6 + [1.0] * 12
    p = BurnRateParams(objective=0.9, windows=PAIRS, good="g", total="t", min_events=50)
    assert burn_rate.detect(_counts(good, total), p, at(29)) == []


@pytest.mark.parametrize("p", [BurnRateParams(objective=1.0), BurnRateParams(objective=0.9, windows=()),
                               BurnRateParams(objective=0.9, windows=(BurnWindow(long=M, short=M, burn=1),))])
def test_inconsistent_params_raise(p: BurnRateParams) -> None:
    """Params config should have rejected raise ValueError."""
    with pytest.raises(ValueError):
        burn_rate.detect(make_frame({"a": [1.0]}), p, at(0))


def test_blocks_of_series_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Series are read a block at a time, good counts paired to their totals in each block."""
    names = [f"s{k}" for k in range(6)]
    total = make_frame({k: [100.0] * 30 for k in names})
    good = make_frame({k: [100.0 - (60 if 10 + i <= j < 18 + i else 0) for j in range(30)]
                       for i, k in enumerate(names)})
    frame = pd.concat([
        good.set_axis([Labels({"s": k, "__query__": "good"}) for k in names], axis=1),
        total.set_axis([Labels({"s": k, "__query__": "total"}) for k in names], axis=1)], axis=1)
    p = BurnRateParams(objective=0.9, windows=PAIRS, good="g", total="t")
    whole = burn_rate.detect(frame, p, at(29))
    monkeypatch.setattr(_grid, "BLOCK_POINTS", 1)
    assert burn_rate.detect(frame, p, at(29)) == whole
    assert sorted(f.labels["s"] for f in whole) == names


LEVELS = st.sampled_from([nan, 1.0, 1.0, 0.9, 0.5, 0.0])


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 25), data=st.data())
def test_causal(n: int, data: st.DataObject) -> None:
    """Appending or rewriting future points never changes a past verdict."""
    frame = make_frame({"a": data.draw(st.lists(LEVELS, min_size=n, max_size=n)),
                        "b": data.draw(st.lists(LEVELS, min_size=n, max_size=n))})
    p = BurnRateParams(objective=0.9, windows=(BurnWindow(long=3 * M, short=M, burn=2),
                                                BurnWindow(long=5 * M, short=2 * M, burn=1)))
    assert_causal(burn_rate.detect, frame, p, data, LEVELS)
