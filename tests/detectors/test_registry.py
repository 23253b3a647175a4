"""The detector registry: a plain dict keyed by params type, and `detect` dispatching on it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from detector_frames import at, make_frame, nan

from incident.detectors import DETECTORS, absent, anomaly, burn_rate, change, detect, threshold
from incident.model import (
    DETECTOR_NAMES,
    AbsentParams,
    AnomalyParams,
    BurnRateParams,
    ChangeParams,
    ThresholdParams,
)


def test_every_params_type_has_a_detector() -> None:
    """Each detector type the model knows is registered, and nothing else is."""
    assert {ThresholdParams: threshold.detect, AbsentParams: absent.detect,
            ChangeParams: change.detect, AnomalyParams: anomaly.detect,
            BurnRateParams: burn_rate.detect} == DETECTORS
    assert set(DETECTORS) == set(DETECTOR_NAMES)


@pytest.mark.parametrize(
    ("params", "expected_fired"),
    [
        (ThresholdParams(above=1.0, for_=timedelta(0)), [at(1)]),
        (AbsentParams(for_=timedelta(0)), [at(3)]),
    ],
    ids=["threshold", "absent"],
)
def test_detect_dispatches_on_params_type(
    params: ThresholdParams | AbsentParams, expected_fired: list
) -> None:
    """`detect` runs the detector registered for the type of the params it is given."""
    frame = make_frame({"a": [0, 5, 0, nan], "b": [0, 0, 0, nan]})
    assert [f.fired for f in detect(frame, params, at(3))] == expected_fired


def test_unknown_params_type_is_a_type_error() -> None:
    """Params of a type with no detector raise TypeError naming the type."""

    @dataclass(frozen=True)
    class ZscoreParams:
        k: float = 3.0

    with pytest.raises(TypeError, match="ZscoreParams"):
        detect(make_frame({"a": [1.0]}), ZscoreParams(), at(0))  # type: ignore[arg-type]
