"""histogram_quantile over classic `le` buckets, for every step at once (Prometheus 2.42 rules)."""

from __future__ import annotations

import numpy as np

from incident.model import Labels
from incident.sources.promql.values import Series, Vector


def histogram_quantile(q: np.ndarray, vec: Vector) -> Vector:
    """The q-quantile per bucket group (labels without `le`), interpolated within its bucket."""
    groups: dict[Labels, list[tuple[float, Series]]] = {}
    for s in vec:
        try:
            bound = float(s.labels.get("le", "x"))
        except ValueError:
            continue  # no or malformed `le`: Prometheus skips the series
        groups.setdefault(s.labels.without("__name__", "le"), []).append((bound, s))
    return [Series(labels, *_quantile(q, buckets)) for labels, buckets in groups.items()]


def _quantile(q: np.ndarray, buckets: list[tuple[float, Series]]) -> tuple[np.ndarray, np.ndarray]:
    bounds = np.array(sorted({b for b, _ in buckets}))
    steps = len(q)
    if len(bounds) < 2:  # fewer than two buckets can never give a quantile
        present_any = np.any([s.present for _, s in buckets], axis=0)
        return np.full(steps, np.nan), np.asarray(present_any)
    counts = np.zeros((len(bounds), steps))
    present = np.zeros((len(bounds), steps), dtype=bool)
    for bound, s in buckets:
        # Buckets with the same bound (le="1" and le="1.0") are added together.
        i = int(np.searchsorted(bounds, bound))
        counts[i] += np.where(s.present, s.values, 0.0)
        present[i] |= s.present
    any_present = present.any(axis=0)
    # Counts must not decrease with the bound; raise each to the running maximum.
    running = np.fmax.accumulate(np.where(present, counts, -np.inf), axis=0)
    fixed = np.where(np.isnan(counts), counts, running)
    rows = np.arange(len(bounds))[:, None]
    # Index of the nearest present bucket strictly below each row, -1 if none.
    marks = np.where(present, rows, -1)
    below = np.vstack([np.full((1, steps), -1), np.maximum.accumulate(marks, axis=0)[:-1]])
    cols = np.arange(steps)
    has_inf = np.isinf(bounds[-1]) & present[-1]
    observations = fixed[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rank = q * observations
        finite = present[:-1] & (fixed[:-1] >= rank)
        found = finite.any(axis=0)
        b = np.where(found, np.argmax(finite, axis=0), len(bounds) - 1)
        second_last = below[-1]
        prev = below[b, cols]
        start = np.where(prev >= 0, bounds[np.maximum(prev, 0)], 0.0)
        prev_count = np.where(prev >= 0, fixed[np.maximum(prev, 0), cols], 0.0)
        end = bounds[b]
        count = fixed[b, cols] - prev_count
        inside = start + (end - start) * ((rank - prev_count) / count)
        result = np.where(found, inside, bounds[np.maximum(second_last, 0)])
        result = np.where(found & (prev < 0) & (end <= 0), end, result)
    result = np.where((present.sum(axis=0) < 2) | (observations == 0), np.nan, result)
    result = np.where(has_inf, result, np.nan)
    result = np.where(q > 1, np.inf, np.where(q < 0, -np.inf, result))
    result = np.where(np.isnan(q), np.nan, result)
    return result, np.asarray(any_present)
