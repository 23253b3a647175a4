"""The threshold detector: a value above or below a level for `for`, with hysteresis.

Semantics, per series, over the points at or before `now` (later points are ignored):

- A point *breaches* when `v > above` or `v < below` (strict; at least one is set).
- *Pending*: a run of consecutive breaching points. The episode *fires* at the first point
  `t` of the run with `t - start >= for` (`for = 0` fires at the first breaching point).
  Before firing, a NaN or a non-breaching point resets the run, as Prometheus' pending
  alerts do.
- *Firing* holds while each point is *beyond clear* (`v > clear` for above, `v < clear` for
  below; `clear` defaults to the threshold) or NaN: missing data never resolves, the caller
  applies the check's `no_data` rule at `now`. The episode ends at the first point that is a
  number and not beyond clear; `end` is that point's time. A dip that stays between `clear`
  and the threshold does not resolve.
- With both `above` and `below` set, clear is the thresholds themselves and `clear` must be
  None (a single number cannot be a hysteresis level on both sides); `clear` on the wrong
  side of its threshold (above 0.9 with clear 0.95) is also a ValueError.

A Firing's `start` is the first point of the breaching run that fired, `fired` the point
where `for` was met, `end` as above or None when still firing at the last point, `value`
the last number in `[start, end)` (the clearing point's value is not part of the episode),
and `reason` the condition at the moment it fired, e.g. "0.82 < 0.99 for 5m".

Vectorised: with `hold = beyond_clear | isnan`, an episode lives inside one maximal run of
`hold` and lasts to its end, so each hold run yields at most one Firing, firing at its first
point whose breaching run is at least `for` old. Because a breaching point is always beyond
clear, every breaching run lies inside one hold run, and a clearing point never breaches,
so a new episode can start at the very next point after an end.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from incident.detectors._grid import at_least, duration, grid, run_end, run_start
from incident.model import Firing, ThresholdParams

if TYPE_CHECKING:
    import pandas as pd


def detect(frame: pd.DataFrame, params: ThresholdParams, now: datetime) -> list[Firing]:
    """Every threshold episode of every series at or before `now`, sorted by (fired, labels)."""
    above, below, clear_above, clear_below = _levels(params)
    min_age = at_least(params.for_)
    g = grid(frame, now)
    if g.n == 0 or g.m == 0:
        return []
    v = g.values
    nan = np.isnan(v)
    # NaN compares False, so a missing point neither breaches nor is beyond clear.
    with np.errstate(invalid="ignore"):
        breach = np.zeros(v.shape, dtype=bool)
        beyond = np.zeros(v.shape, dtype=bool)
        if above is not None:
            breach |= v > above
            beyond |= v > clear_above
        if below is not None:
            breach |= v < below
            beyond |= v < clear_below
    hold = beyond | nan

    breach_from = run_start(breach, g.n)
    ripe = breach & (g.times - g.times[breach_from] >= min_age)
    # The first ripe point of each hold run fires; later ones in the same run are the
    # same episode still firing.
    hold_from = run_start(hold, g.n)
    candidates = np.flatnonzero(ripe)
    run_of = hold_from[candidates]
    first = np.ones(candidates.size, dtype=bool)
    first[1:] = run_of[1:] != run_of[:-1]
    fired_at = candidates[first]

    hold_to = run_end(hold, g.n)
    firings = []
    for f in fired_at:  # one iteration per episode, not per point
        col, _ = g.locate(f)
        start, end = breach_from[f], hold_to[f]
        # The episode opens on a number, so its last number exists; NaNs while firing skip.
        numbers = np.flatnonzero(~nan[start:end])
        firings.append(
            Firing(
                labels=g.labels[col],
                start=g.stamp(start),
                fired=g.stamp(f),
                end=g.stamp_or_none(end),
                value=float(v[start + numbers[-1]]),
                reason=_reason(float(v[f]), above, params, min_age),
            )
        )
    firings.sort(key=lambda x: (x.fired, x.labels))
    return firings


def _levels(params: ThresholdParams) -> tuple[float | None, float | None, float, float]:
    """(above, below, clear for above, clear for below), checked for consistency."""
    above, below, clear = params.above, params.below, params.clear
    if above is None and below is None:
        raise ValueError("threshold needs `above`, `below` or both")
    if above is not None and below is not None and clear is not None:
        raise ValueError("threshold with both `above` and `below` cannot have `clear`")
    if above is not None and clear is not None and clear > above:
        raise ValueError(f"clear {clear:g} must not exceed above {above:g}")
    if below is not None and clear is not None and clear < below:
        raise ValueError(f"clear {clear:g} must not be below below {below:g}")
    clear_above = (clear if clear is not None else above) if above is not None else math.inf
    clear_below = (clear if clear is not None else below) if below is not None else -math.inf
    return above, below, clear_above, clear_below


def _reason(value: float, above: float | None, params: ThresholdParams, age: int) -> str:
    """The condition at the firing point: "0.82 < 0.99 for 5m"."""
    if above is not None and value > above:
        text = f"{value:g} > {above:g}"
    else:
        text = f"{value:g} < {params.below:g}"
    return f"{text} for {duration(params.for_)}" if age > 0 else text
