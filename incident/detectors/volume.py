"""The volume guard for ratio checks (success rate, conversion): no page on a handful of events.

A ratio over 3 requests swings from 0% to 100% on one event. The guard lets a ratio point
count as anomalous only when the events behind it are enough:

- `min_events`: the number of events behind the point (the check's `total` query, e.g.
  `sum(increase(orders_total[5m]))`) must be at least this; a point whose count is missing
  never passes (an unknown volume is not evidence).
- `significance` (optional, e.g. 0.01): the departure must also be statistically
  significant at that level, by a normal-approximation test on proportions: a two-sample
  test against the reference ratio and its own count (change), or a one-sample test against
  the expected ratio (anomaly's baseline, burn_rate's tolerated error ratio). The values
  must then be ratios in [0, 1]; the test is one-sided when the detector has a direction.

The functions are vectorised over whole arrays; the detectors call them with their own
reference values.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from incident.detectors._grid import BoolArray
from incident.model import Direction

Floats = npt.NDArray[np.float64]


def enough(events: Floats, min_events: float) -> BoolArray:
    """True where at least `min_events` events back the point (missing counts never do)."""
    if min_events <= 0:
        return np.ones(events.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray(events >= min_events)


def _p_value(z: Floats, direction: Direction) -> Floats:
    from scipy.special import ndtr  # the normal CDF; scipy stays off the import path until used

    if direction is Direction.UP:
        return np.asarray(ndtr(-z))
    if direction is Direction.DOWN:
        return np.asarray(ndtr(z))
    return np.asarray(2 * ndtr(-np.abs(z)))


def differs(p1: Floats, n1: Floats, p0: Floats, n0: Floats, alpha: float | None,
            direction: Direction = Direction.BOTH) -> BoolArray:
    """Two-proportion z-test: p1 (over n1 events) differs from p0 (over n0) at level `alpha`."""
    if alpha is None:
        return np.ones(np.shape(p1), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = np.clip(p1, 0, 1), np.clip(p0, 0, 1)
        pooled = (a * n1 + b * n0) / (n1 + n0)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
        z = np.where(a == b, 0.0, (a - b) / se)
        out: BoolArray = np.asarray(_p_value(z, direction) < alpha) & (n1 > 0) & (n0 > 0)
    return out


def exceeds(p: Floats, n: Floats, p0: Floats, alpha: float | None,
            direction: Direction = Direction.BOTH) -> BoolArray:
    """One-sample z-test: the ratio p over n events departs from the expected p0 at `alpha`."""
    if alpha is None:
        return np.ones(np.shape(p), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = np.clip(p, 0, 1), np.clip(p0, 0, 1)
        # The variance under the null; a null at exactly 0 or 1 borrows one event's worth
        # so that any departure from a perfect record is testable rather than infinite.
        var = np.maximum(b * (1 - b), 1 / np.maximum(n, 1)) / n
        z = np.where(a == b, 0.0, (a - b) / np.sqrt(var))
        out: BoolArray = np.asarray(_p_value(z, direction) < alpha) & (n > 0)
    return out
