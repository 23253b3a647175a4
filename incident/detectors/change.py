"""The change detector: a series against itself `offset` ago (a day, a week), by percent or delta.

Semantics, per series, over the points at or before `now` (later points are ignored):

- The *reference* of a point at time t is the same series' point at exactly t - offset on
  the frame's grid; there is none (NaN) when that time is before the frame or not a grid
  row. So a check needs `lookback` longer than `offset` (config says so).
- `diff = v - ref` and `pct = 100 * diff / |ref|` (a zero reference makes any change an
  infinite percent). A point *breaches* upwards when `pct > percent` and `diff > delta`
  (each only when set; at least one is), downwards when `pct < -percent` and
  `diff < -delta`; `direction` (up, down, both) says which count. Giving both `percent`
  and `delta` asks for both: "20% and at least 5 orders a minute", so a tiny base does not
  page on a large percentage.
- Volume guard (ratio series, see `volume.py`): with `min_events`, both the point and its
  reference need that many events behind them in the `total` query; with `significance`,
  the two ratios must differ by a two-proportion test at that level.
- Episodes as in threshold (`_episodes`): a breaching run fires once it is `for` old; it
  holds through breaching points, missing points (no value, no reference, too few events:
  no evidence either way) and ends at the first point with evidence that does not breach.

A Firing carries the series' labels, the last value in the episode, and a reason written at
the firing point: "-23% vs 1w ago for 15m" (or "+42 vs 1d ago" with `delta` alone).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from incident.detectors import volume
from incident.detectors._episodes import episodes, last_number
from incident.detectors._grid import at_least, duration, grid, nanoseconds
from incident.detectors.inputs import aligned, split
from incident.model import ChangeParams, Direction, Firing

if TYPE_CHECKING:
    import pandas as pd


def detect(frame: pd.DataFrame, params: ChangeParams, now: datetime) -> list[Firing]:
    """Every change episode of every series at or before `now`, sorted by (fired, labels)."""
    if params.percent is None and params.delta is None:
        raise ValueError("change needs `percent`, `delta` or both")
    offset = at_least(params.offset)
    if offset == 0:
        raise ValueError("change needs an `offset` greater than zero")
    min_age = at_least(params.for_)
    own, extra = split(frame)
    g = grid(own, now)
    if g.n == 0 or g.m == 0:
        return []
    x = g.values.reshape(g.m, g.n)
    ref = _shifted(x, nanoseconds(g.index), offset)

    with np.errstate(invalid="ignore", divide="ignore"):
        diff = x - ref
        pct = 100 * diff / np.abs(ref)
        up = np.ones(x.shape, dtype=bool)
        down = np.ones(x.shape, dtype=bool)
        if params.percent is not None:
            up &= pct > params.percent
            down &= pct < -params.percent
        if params.delta is not None:
            up &= diff > params.delta
            down &= diff < -params.delta
    breach = {Direction.UP: up, Direction.DOWN: down, Direction.BOTH: up | down}[params.direction]
    evidence = ~np.isnan(x) & ~np.isnan(ref)
    if params.total is not None and (params.min_events > 0 or params.significance is not None):
        events = aligned(g.labels, extra.get("total"), g.n).T
        events_ref = _shifted(events, nanoseconds(g.index), offset)
        evidence &= volume.enough(events, params.min_events)
        evidence &= volume.enough(events_ref, params.min_events)
        evidence &= volume.differs(x, events, ref, events_ref, params.significance,
                                   params.direction)
    breach &= evidence

    flat_breach = breach.ravel()
    found = episodes(g, flat_breach, flat_breach | ~evidence.ravel(), min_age)
    flat_pct, flat_diff = pct.ravel(), diff.ravel()
    firings = [
        Firing(
            labels=g.labels[e.column],
            start=g.stamp(e.start),
            fired=g.stamp(e.fired),
            end=g.stamp_or_none(e.end),
            value=last_number(g.values, e.start, e.end),
            reason=_reason(float(flat_pct[e.fired]), float(flat_diff[e.fired]), params, min_age),
        )
        for e in found
    ]
    firings.sort(key=lambda f: (f.fired, f.labels))
    return firings


def _shifted(x: np.ndarray, rows: np.ndarray, offset: int) -> np.ndarray:
    """x's value at exactly (row time - offset), per column; NaN where there is no such row."""
    target = rows - offset
    pos = np.searchsorted(rows, target)
    found = pos < rows.size
    found[found] = rows[pos[found]] == target[found]
    out = np.full(x.shape, np.nan)
    out[:, found] = x[:, pos[found]]
    return out


def _reason(pct: float, diff: float, params: ChangeParams, age: int) -> str:
    """The change at the firing point: "-23% vs 1w ago for 15m"."""
    if params.percent is not None and np.isfinite(pct):
        text = f"{pct:+.0f}%"
    elif params.percent is not None:
        text = f"{diff:+g} from zero"
    else:
        text = f"{diff:+g}"
    text += f" vs {duration(params.offset)} ago"
    return f"{text} for {duration(params.for_)}" if age > 0 else text
