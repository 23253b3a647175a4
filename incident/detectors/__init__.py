"""Detectors: pure functions from an evaluated frame, parameters and `now` to firing episodes.

Each module holds one detector, `detect(frame, params, now) -> list[Firing]`; `DETECTORS`
maps a params type to it and `detect` dispatches on the params given. Frames have a
tz-aware UTC DatetimeIndex on a regular step grid and one float64 column per series, named
by its `Labels`; NaN means no data. Points after `now` are ignored, the frame is never
modified, and ended episodes are returned too, so a backtest is one call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from incident.detectors import absent, anomaly, burn_rate, change, threshold
from incident.model import (
    AbsentParams,
    AnomalyParams,
    BurnRateParams,
    ChangeParams,
    DetectorParams,
    Firing,
    ThresholdParams,
)

if TYPE_CHECKING:
    import pandas as pd

Detector = Callable[["pd.DataFrame", Any, datetime], list[Firing]]

DETECTORS: dict[type, Detector] = {
    ThresholdParams: threshold.detect,
    AbsentParams: absent.detect,
    ChangeParams: change.detect,
    AnomalyParams: anomaly.detect,
    BurnRateParams: burn_rate.detect,
}


def detect(frame: pd.DataFrame, params: DetectorParams, now: datetime) -> list[Firing]:
    """Run the detector that `params` belongs to over `frame` up to `now`."""
    try:
        detector = DETECTORS[type(params)]
    except KeyError:
        raise TypeError(f"no detector for {type(params).__name__}") from None
    return detector(frame, params, now)


__all__ = ["DETECTORS", "Detector", "detect"]
