"""What expressions evaluate to over a whole step grid at once.

A scalar is a float64 array (one value per step). An instant vector is a list of Series, each
with a value and a presence flag per step (presence is separate because NaN is a real sample
value). A range vector keeps each series' raw samples plus, per step, the index window
[lo, hi) of the samples that fall in that step's range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incident.model import Labels
from incident.sources.promql.errors import PromQLError


@dataclass(slots=True)
class Series:
    labels: Labels
    values: np.ndarray
    present: np.ndarray


@dataclass(slots=True)
class Windowed:
    labels: Labels
    t: np.ndarray  # int64 milliseconds, ascending, stale markers removed
    v: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass(slots=True)
class RangeVector:
    series: list[Windowed]
    range_ms: int
    offset_ms: int


Vector = list[Series]
Value = np.ndarray | Vector | RangeVector | str


def windows(t: np.ndarray, grid: np.ndarray, range_ms: int, offset_ms: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the sample index range [lo, hi) inside the closed window [T-o-r, T-o].

    Prometheus 2.x includes a sample that sits exactly on the left edge (3.x does not).
    """
    end = grid - offset_ms
    lo = np.searchsorted(t, end - range_ms, side="left")
    hi = np.searchsorted(t, end, side="right")
    return lo, hi


def merge(series: Vector) -> Vector:
    """Join series whose labels became equal; it is an error if two have a point at one step."""
    groups: dict[Labels, list[Series]] = {}
    for s in series:
        if s.present.any():
            groups.setdefault(s.labels, []).append(s)
    out: Vector = []
    for labels, members in groups.items():
        if len(members) == 1:
            out.append(members[0])
            continue
        count = np.sum([m.present for m in members], axis=0)
        if (count > 1).any():
            raise PromQLError("vector cannot contain metrics with the same labelset")
        values = np.full(count.shape, np.nan)
        for m in members:
            values[m.present] = m.values[m.present]
        out.append(Series(labels, values, count > 0))
    return out


def drop_name(labels: Labels) -> Labels:
    """The labels without __name__ (what arithmetic, functions and aggregations return)."""
    return labels.without("__name__") if "__name__" in labels else labels
