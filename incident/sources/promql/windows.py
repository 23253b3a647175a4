"""Range-vector functions (rate, *_over_time, …), vectorised over all steps of one series.

Each takes one Windowed series and returns (values, present) arrays over the step grid.
Windows are gathered into a (steps × longest window) matrix in chunks, so every step is
computed by numpy at once; sums run per window, never as differences of running totals,
which would lose precision on long series.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from incident.sources.promql.values import Windowed

_CHUNK_ELEMENTS = 2_000_000

Result = tuple[np.ndarray, np.ndarray]


def _gather(lo: np.ndarray, hi: np.ndarray, size: int
            ) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Chunks of (step slice, sample index matrix, validity mask) for windows [lo, hi)."""
    count = hi - lo
    width = int(count.max(initial=0))
    if width == 0 or size == 0:
        return
    cols = np.arange(width)
    rows = max(1, _CHUNK_ELEMENTS // width)
    for start in range(0, len(lo), rows):
        part = slice(start, start + rows)
        idx = lo[part, None] + cols
        valid = cols < count[part, None]
        yield part, np.minimum(idx, size - 1), valid


def window_sum(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per step, the sum of v[lo:hi] (0 for empty windows).

    Differences of extended-precision running totals, with a rounding-error bound per window;
    windows whose bound is not negligible (or that hold NaN/±Inf) are summed directly.
    """
    n = hi - lo
    finite = np.isfinite(v)
    clean = np.where(finite, v, 0.0).astype(np.longdouble)
    totals = np.concatenate([[np.longdouble(0)], np.cumsum(clean)])
    sizes = np.concatenate([[np.longdouble(0)], np.cumsum(np.abs(clean))])
    out = (totals[hi] - totals[lo]).astype(np.float64)
    magnitude = (sizes[hi] - sizes[lo]).astype(np.float64)
    # Each running total is off by at most eps/2 of its size; only the window's steps count.
    bound = (_EPS * n * (np.abs(totals[lo]) + sizes[hi] - sizes[lo])).astype(np.float64)
    risky = (bound > 1e-13 * np.abs(out)) & (magnitude > 0)
    if not finite.all():
        bad = np.concatenate([[0], np.cumsum(~finite)])
        risky |= bad[hi] > bad[lo]
    if risky.any():
        which = np.nonzero(risky)[0]
        exact = np.zeros(len(which))
        for part, idx, valid in _gather(lo[which], hi[which], len(v)):
            exact[part] = np.where(valid, v[idx], 0.0).sum(axis=1)
        out[which] = exact
    return out


_EPS = float(np.finfo(np.longdouble).eps)


def _sparse_table(v: np.ndarray, width: int, combine: np.ufunc) -> list[np.ndarray]:
    """Level k holds combine() over v[i : i + 2**k]: any window is two overlapping lookups."""
    levels = [v]
    span = 1
    while span * 2 <= width:
        prev = levels[-1]
        levels.append(combine(prev[:-span], prev[span:]))
        span *= 2
    return levels


def _window_extreme(w: Windowed, combine: np.ufunc) -> np.ndarray:
    n = w.hi - w.lo
    out = np.full(len(n), np.nan)
    ok = n > 0
    if not ok.any():
        return out
    levels = _sparse_table(w.v, int(n.max()), combine)
    k = np.floor(np.log2(np.where(ok, n, 1))).astype(np.int64)
    for level in np.unique(k[ok]):
        rows = ok & (k == level)
        table = levels[level]
        lo, hi = w.lo[rows], w.hi[rows]
        out[rows] = combine(table[lo], table[hi - (1 << int(level))])
    return out


def count_over_time(w: Windowed) -> Result:
    n = (w.hi - w.lo).astype(float)
    return n, n > 0


def sum_over_time(w: Windowed) -> Result:
    return window_sum(w.v, w.lo, w.hi), w.hi > w.lo


def avg_over_time(w: Windowed) -> Result:
    n = w.hi - w.lo
    out = window_sum(w.v, w.lo, w.hi) / n
    # Infinities (or an overflowing sum) make the result depend on Prometheus's running mean.
    inf = np.isinf(w.v)
    if inf.any() or np.isinf(out).any():
        marks = np.concatenate([[0], np.cumsum(inf)])
        which = np.nonzero((n > 0) & ((marks[w.hi] > marks[w.lo]) | np.isinf(out)))[0]
        lo, hi = w.lo[which], w.hi[which]
        for part, idx, valid in _gather(lo, hi, len(w.v)):
            out[which[part]] = running_mean(w.v[idx], valid)
    return out, n > 0


def running_mean(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per row, the mean as Prometheus accumulates it, including its rules for infinities.

    Loops over columns (window positions or group members), vectorised over rows.
    """
    mean = np.zeros(len(x))
    count = np.zeros(len(x))
    for j in range(x.shape[1]):
        v, live = x[:, j], valid[:, j]
        count = count + live
        # Once infinite, the mean ignores finite values and infinities of the same sign.
        inf_mean = np.isinf(mean)
        keep = inf_mean & ((np.isinf(v) & ((mean > 0) == (v > 0)))
                           | (~np.isinf(v) & ~np.isnan(v)))
        with np.errstate(all="ignore"):
            step = mean + (v / count - mean / count)
        mean = np.where(live & ~keep, step, mean)
    return mean


def min_over_time(w: Windowed) -> Result:
    # fmin skips NaN like Prometheus does, which returns NaN only if every sample is NaN.
    return _window_extreme(w, np.fmin), w.hi > w.lo


def max_over_time(w: Windowed) -> Result:
    return _window_extreme(w, np.fmax), w.hi > w.lo


def last_over_time(w: Windowed) -> Result:
    ok = w.hi > w.lo
    return w.v[np.clip(w.hi - 1, 0, None)] if len(w.v) else np.full(len(ok), np.nan), ok


def present_over_time(w: Windowed) -> Result:
    ok = w.hi > w.lo
    return np.ones(len(ok)), ok


def stdvar_over_time(w: Windowed) -> Result:
    n = w.hi - w.lo
    out = np.full(len(n), np.nan)
    for part, idx, valid in _gather(w.lo, w.hi, len(w.v)):
        x = w.v[idx]
        cnt = n[part]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(valid, x, 0.0).sum(axis=1) / cnt
            dev = np.where(valid, x - mean[:, None], 0.0)
            out[part] = (dev * dev).sum(axis=1) / cnt
    return out, n > 0


def stddev_over_time(w: Windowed) -> Result:
    var, ok = stdvar_over_time(w)
    return np.sqrt(var), ok


def quantile_over_time(w: Windowed, q: np.ndarray) -> Result:
    n = w.hi - w.lo
    out = np.full(len(n), np.nan)
    for part, idx, valid in _gather(w.lo, w.hi, len(w.v)):
        out[part] = quantile_rows(np.where(valid, w.v[idx], np.inf), ~valid, q[part])
    return out, n > 0


def quantile_rows(x: np.ndarray, pad: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Prometheus's quantile of each row's non-pad values (NaN sorts first, as in Go)."""
    count = (~pad).sum(axis=1)
    nans = (np.isnan(x) & ~pad).sum(axis=1)
    keyed = np.where(np.isnan(x), -np.inf, x)
    keyed = np.where(pad, np.inf, keyed)
    ordered = np.sort(keyed, axis=1)
    rows = np.arange(len(x))
    with np.errstate(invalid="ignore"):
        rank = q * (count - 1)
        lower = np.clip(np.floor(np.nan_to_num(rank)), 0, None).astype(np.int64)
        upper = np.minimum(count - 1, lower + 1)
        lower = np.minimum(lower, np.maximum(count - 1, 0))
        upper = np.maximum(upper, 0)
        weight = rank - np.floor(rank)
        lv = np.where(lower < nans, np.nan, ordered[rows, lower])
        uv = np.where(upper < nans, np.nan, ordered[rows, upper])
        out = lv * (1 - weight) + uv * weight
    out = np.where(q < 0, -np.inf, out)
    out = np.where(q > 1, np.inf, out)
    return np.where(np.isnan(q) | (count == 0), np.nan, out)


def changes(w: Windowed) -> Result:
    v = w.v
    diff = np.zeros(len(v), dtype=np.int64)
    if len(v) > 1:
        diff[1:] = (v[1:] != v[:-1]) & ~(np.isnan(v[1:]) & np.isnan(v[:-1]))
    return _pair_count(diff, w)


def resets(w: Windowed) -> Result:
    v = w.v
    drop = np.zeros(len(v), dtype=np.int64)
    if len(v) > 1:
        drop[1:] = v[1:] < v[:-1]
    return _pair_count(drop, w)


def _pair_count(flags: np.ndarray, w: Windowed) -> Result:
    """Per step, how many flagged pairs (j-1, j) lie inside the window; integers, so exact."""
    csum = np.concatenate([[0], np.cumsum(flags)])
    lo, hi = w.lo, w.hi
    ok = hi > lo
    inner = np.where(ok, csum[hi] - csum[np.minimum(lo + 1, hi)], 0)
    return inner.astype(float), ok


def extrapolated_rate(w: Windowed, grid: np.ndarray, range_ms: int, offset_ms: int,
                      is_counter: bool, is_rate: bool) -> Result:
    """rate, increase and delta: Prometheus's extrapolatedRate for every step at once."""
    t, v, lo, hi = w.t, w.v, w.lo, w.hi
    n = hi - lo
    ok = n >= 2
    if not ok.any():
        return np.full(len(n), np.nan), ok
    first, last = np.minimum(lo, len(v) - 1), np.clip(hi - 1, 0, None)
    result = v[last] - v[first]
    if is_counter and len(v) > 1:
        correction = np.zeros(len(v))
        drops = v[1:] < v[:-1]
        if drops.any():
            correction[1:] = np.where(drops, v[:-1], 0.0)
            result = result + window_sum(correction, np.minimum(lo + 1, hi), hi)
    range_start = grid - range_ms - offset_ms
    range_end = grid - offset_ms
    with np.errstate(invalid="ignore", divide="ignore"):
        to_start = (t[first] - range_start) / 1000.0
        to_end = (range_end - t[last]) / 1000.0
        sampled = (t[last] - t[first]) / 1000.0
        average = sampled / (n - 1)
        if is_counter:
            # A counter cannot go below zero: do not extrapolate past where it would reach it.
            to_zero = sampled * (v[first] / result)
            clip = (result > 0) & (v[first] >= 0) & (to_zero < to_start)
            to_start = np.where(clip, to_zero, to_start)
        threshold = average * 1.1
        interval = (sampled + np.where(to_start < threshold, to_start, average / 2)
                    + np.where(to_end < threshold, to_end, average / 2))
        factor = interval / sampled
        if is_rate:
            factor = factor / (range_ms / 1000.0)
        return result * factor, ok


def instant_rate(w: Windowed, is_rate: bool) -> Result:
    """irate and idelta: from the last two samples of each window."""
    t, v, lo, hi = w.t, w.v, w.lo, w.hi
    ok = (hi - lo) >= 2
    if not ok.any():
        return np.full(len(lo), np.nan), ok
    last, prev = np.clip(hi - 1, 0, None), np.clip(hi - 2, 0, None)
    lv, pv = v[last], v[prev]
    result = np.where(lv < pv, lv, lv - pv) if is_rate else lv - pv
    interval = (t[last] - t[prev]).astype(float)
    ok = ok & (interval != 0)
    if is_rate:
        with np.errstate(invalid="ignore", divide="ignore"):
            result = result / (interval / 1000.0)
    return result, ok


def linear_regression(w: Windowed, intercept_ms: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per step (slope, intercept, ok) of a least-squares fit, as Prometheus computes it.

    x is seconds relative to `intercept_ms` per step, or to the window's first sample.
    """
    t, v, lo, hi = w.t, w.v, w.lo, w.hi
    n = hi - lo
    ok = n >= 2
    slope = np.full(len(n), np.nan)
    intercept = np.full(len(n), np.nan)
    for part, idx, valid in _gather(lo, hi, len(v)):
        ref = t[np.minimum(lo[part], len(t) - 1)] if intercept_ms is None else intercept_ms[part]
        x = np.where(valid, (t[idx] - ref[:, None]) / 1000.0, 0.0)
        y = np.where(valid, v[idx], 0.0)
        cnt = n[part].astype(float)
        first = v[idx[:, 0]]
        const = (np.where(valid, v[idx] == first[:, None], True)).all(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sx, sy = x.sum(axis=1), y.sum(axis=1)
            sxy, sx2 = (x * y).sum(axis=1), (x * x).sum(axis=1)
            cov = sxy - sx * sy / cnt
            var = sx2 - sx * sx / cnt
            s = cov / var
            i = sy / cnt - s * sx / cnt
        # A constant series has slope 0 exactly (NaN for a constant infinity).
        inf = np.isinf(first)
        slope[part] = np.where(const, np.where(inf, np.nan, 0.0), s)
        intercept[part] = np.where(const, np.where(inf, np.nan, first), i)
    return slope, intercept, ok


def holt_winters(w: Windowed, sf: np.ndarray, tf: np.ndarray) -> Result:
    """Double exponential smoothing; the recurrence runs along the window, all steps at once."""
    v, lo, hi = w.v, w.lo, w.hi
    n = hi - lo
    ok = n >= 2
    if not ok.any():
        return np.full(len(n), np.nan), ok
    size = len(v)
    s1 = v[np.minimum(lo, size - 1)]
    b = v[np.minimum(lo + 1, size - 1)] - s1
    s0 = np.zeros(len(n))
    for i in range(1, int(n.max())):
        live = i < n
        x = sf * v[np.minimum(lo + i, size - 1)]
        trend = b if i == 1 else tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + trend)
        b = np.where(live, trend, b)
        s0, s1 = np.where(live, s1, s0), np.where(live, x + y, s1)
    return s1, ok
