"""Builders shared by the detector tests: minute-grid frames and firings as plain tuples.

A plain module (not conftest.py) so tests import its names; pytest puts this directory on
sys.path because it has no __init__.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from incident.model import Firing, Labels

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)
nan = math.nan


def at(minute: float) -> datetime:
    """The time `minute` steps after T0."""
    return T0 + minute * STEP


def make_frame(columns: Mapping[str, Sequence[float]], rows: int | None = None) -> pd.DataFrame:
    """A frame on a one-minute UTC grid from T0, one column per name labelled {s=name}."""
    n = rows if rows is not None else max((len(v) for v in columns.values()), default=0)
    index = pd.date_range(T0, periods=n, freq="1min")
    data = {Labels({"s": k}): np.asarray(v, dtype=np.float64) for k, v in columns.items()}
    return pd.DataFrame(data, index=index, columns=list(data), dtype=np.float64)


def minute(t: datetime | None) -> float | None:
    """A firing time back as a step count from T0 (None stays None)."""
    return None if t is None else (t - T0) / STEP


def as_tuple(f: Firing) -> tuple[Any, ...]:
    """A firing as (series name or "", start, fired, end, value) in minutes; NaN value → None."""
    value = None if math.isnan(f.value) else f.value
    return (f.labels.get("s"), minute(f.start), minute(f.fired), minute(f.end), value)


Detect = Callable[[pd.DataFrame, Any, datetime], list[Firing]]


def run_untouched(detect: Detect, frame: pd.DataFrame, params: Any, now: datetime) -> list[Firing]:
    """Run a detector and fail if it changed its input frame."""
    before = frame.copy(deep=True)
    firings = detect(frame, params, now)
    pd.testing.assert_frame_equal(frame, before)
    assert list(frame.columns) == list(before.columns)
    return firings


def clipped(firings: list[Firing], t: datetime) -> set[tuple[Any, ...]]:
    """The verdicts known at `t`: firings fired by then, an end after `t` read as still firing.

    The value is kept only for episodes that had ended by `t`; an active one's value moves on.
    """
    out = set()
    for f in firings:
        if f.fired > t:
            continue
        ended = f.end is not None and f.end <= t
        value = as_tuple(f)[4] if ended else "active"
        out.add((f.labels, f.start, f.fired, f.end if ended else None, value))
    return out
