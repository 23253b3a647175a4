"""The volume guard: event minimums and proportion tests, and how extra queries reach detectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
from detector_frames import make_frame, nan

from incident.detectors import inputs, volume
from incident.model import AnomalyParams, BurnRateParams, ChangeParams, Direction, Labels


def test_enough_treats_missing_counts_as_too_few() -> None:
    """min_events passes counts at or above it; NaN never passes; zero disables the guard."""
    counts = np.array([3.0, 100.0, nan, 50.0])
    assert volume.enough(counts, 50).tolist() == [False, True, False, True]
    assert volume.enough(counts, 0).tolist() == [True] * 4


def test_a_ratio_over_three_requests_is_not_significant() -> None:
    """2 of 3 against 90 of 100 is not significant at 1%; 200 of 300 against 900 of 1000 is."""
    p0, n0 = np.array([0.9, 0.9]), np.array([100.0, 1000.0])
    p1, n1 = np.array([2 / 3, 2 / 3]), np.array([3.0, 300.0])
    assert volume.differs(p1, n1, p0, n0, 0.01).tolist() == [False, True]


def test_one_sided_tests_follow_the_direction() -> None:
    """A rise is significant upwards, never downwards; no significance level passes all."""
    p, n, p0 = np.array([0.2]), np.array([1000.0]), np.array([0.1])
    assert volume.exceeds(p, n, p0, 0.01, Direction.UP).tolist() == [True]
    assert volume.exceeds(p, n, p0, 0.01, Direction.DOWN).tolist() == [False]
    assert volume.exceeds(p, n, p0, None).tolist() == [True]


def test_a_perfect_record_baseline_is_still_testable() -> None:
    """Against an expected ratio of exactly 0, one error in 2 is not significant, 50 in 100 are."""
    got = volume.exceeds(np.array([0.5, 0.5]), np.array([2.0, 100.0]), np.array([0.0, 0.0]), 0.01)
    assert got.tolist() == [False, True]


def test_queries_lists_the_detectors_own_queries() -> None:
    """A check evaluates its query plus good/total when its detector has them."""
    assert inputs.queries("q", ChangeParams(offset=pd.Timedelta("1d").to_pytimedelta(), percent=5,
                                            total="t")) == {"": "q", "total": "t"}
    assert inputs.queries("", BurnRateParams(objective=0.9, good="g", total="t")) == {
        "good": "g", "total": "t"}
    assert inputs.queries("q", AnomalyParams()) == {"": "q"}


def test_combine_and_split_round_trip_without_splitting_labels() -> None:
    """Extra queries are marked with __query__ and split back with their own labels."""
    main = make_frame({"a": [1.0, 2.0]})
    total = make_frame({"a": [10.0, 20.0]})
    both = inputs.combine({"": main, "total": total})
    assert list(both.columns) == [Labels({"s": "a"}), Labels({"s": "a", "__query__": "total"})]
    own, extra = inputs.split(both)
    assert list(own.columns) == [Labels({"s": "a"})]
    assert list(extra["total"].columns) == [Labels({"s": "a"})]
    assert inputs.aligned(list(own.columns), extra["total"], 2)[:, 0].tolist() == [10.0, 20.0]


def test_a_lone_total_applies_to_every_series() -> None:
    """A total summed over everything backs every series of the check."""
    total = make_frame({"x": [5.0]}).set_axis([Labels()], axis=1)
    got = inputs.aligned([Labels({"s": "a"}), Labels({"s": "b"})], total, 1)
    assert got.tolist() == [[5.0, 5.0]]
