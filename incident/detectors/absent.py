"""The absent detector: no data for `for`, per series and for the query as a whole.

Semantics, over the points at or before `now` (later points are ignored):

- *Whole query*: a point is dark when no series has a number there (a frame with no
  columns is dark everywhere). A maximal run of dark points starts at its first point (the
  frame's first row if dark from the start) and fires at the first point `t` with
  `t - start >= for`; it ends at the first point where any series has data. Its Firing
  carries empty `Labels()`, value NaN, reason "query returned no data for 10m".
- *Per series*: a series is gone at a point when it is NaN there after having had a number
  earlier in the frame (a series never seen in the frame is not reported on its own). Its
  gap starts at the first NaN after its last number and the series is absent at `t` when
  `t - gap start >= for`. The Firing carries the series' labels, its last number before the
  gap as value, and reason "no data for 10m"; it ends when the series has data again.
- *Whole query first*: at points where the whole-query Firing is firing, no per-series
  Firing is. A per-series episode still firing when the whole query fires ends at that
  point; if the series is still missing when the whole query ends, a new per-series episode
  fires at once at that point, with the same `start` (the gap is still measured from the
  series' last number). So a dead exporter is one incident, not one per series, and the
  rule depends only on the past, so it stays causal.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from incident.detectors._grid import (
    BoolArray,
    at_least,
    duration,
    firsts,
    grid,
    nanoseconds,
    run_end,
    run_start,
)
from incident.model import AbsentParams, Firing, Labels

if TYPE_CHECKING:
    import pandas as pd


def detect(frame: pd.DataFrame, params: AbsentParams, now: datetime) -> list[Firing]:
    """Every absence episode at or before `now`, whole query and per series, by (fired, labels)."""
    min_age = at_least(params.for_)
    g = grid(frame, now)
    if g.n == 0:
        return []
    rows = nanoseconds(g.index)  # not g.times: with no columns that is empty
    firings = []

    # Whole query: one 1-D pass over the rows.
    missing = np.isnan(g.values)
    dark: BoolArray = np.all(missing.reshape(g.m, g.n), axis=0)  # no columns at all: dark
    dark_from = run_start(dark, g.n)
    whole = dark & (rows - rows[dark_from] >= min_age)
    whole_to = run_end(whole, g.n)
    for f in firsts(whole, g.n):  # one iteration per episode
        start = g.stamp(dark_from[f])
        fired = g.stamp(f)
        firings.append(
            Firing(
                labels=Labels(),
                start=start,
                fired=fired,
                end=g.stamp_or_none(whole_to[f]),
                value=math.nan,
                reason=f"query returned no data for {duration(fired - start)}",
            )
        )

    if g.m:
        # Per series, every column at once on the flat layout.
        gap_from = run_start(missing, g.n)
        # A gap that opens on a column's first row has no number before it in the frame:
        # that series was never seen, so it is not gone.
        gone = missing & (gap_from % g.n != 0)
        absent = gone & (g.times - g.times[gap_from] >= min_age) & ~np.tile(whole, g.m)
        absent_to = run_end(absent, g.n)
        for f in firsts(absent, g.n):
            col, _ = g.locate(f)
            start = g.stamp(gap_from[f])
            fired = g.stamp(f)
            firings.append(
                Firing(
                    labels=g.labels[col],
                    start=start,
                    fired=fired,
                    end=g.stamp_or_none(absent_to[f]),
                    value=float(g.values[gap_from[f] - 1]),  # the last number before the gap
                    reason=f"no data for {duration(fired - start)}",
                )
            )

    firings.sort(key=lambda x: (x.fired, x.labels))
    return firings
