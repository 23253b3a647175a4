"""The anomaly detector: a series leaves its robust, optionally seasonal, baseline.

Method (chosen by measurement on the NAB DEV corpus, see benchmarks/nab.py):

1. *Seasonal profile* (season 1d or 1w): the median of the same series one, two, …
   `seasons` periods ago; the residual is the value minus that profile. With season none
   the residual is the value itself.
2. *Level and scale*: the median of the residual over the previous `window` is the level,
   the deviation `e` is residual minus level, and the scale is 1.4826 × the median of the
   previous |e| (the MAD, a standard deviation for Gaussian noise). Both use strictly
   earlier points, so the point under test does not vouch for itself.
3. *Season auto*: each candidate season (none, 1d, and 1w when its history fits in an
   explicit `warm_up`) is evaluated, and at every point the one with the smallest scale,
   the profile that explains the recent past best, is used.
4. A point is *anomalous* when |e| > `sensitivity` × scale, |e| ≥ `min_deviation`, and
   |e| > `novelty` × the largest |e| over the previous `memory`: a deviation of a size
   the series has shown within a week is its ordinary behaviour, not news. A second,
   *level* stage applies the same tests (novelty 1: strictly beyond anything in
   `memory`) to the median of e over the last `smooth`: it catches level shifts and
   slow slides too small for any one point to stand out.
5. *Episodes*: anomalous points (held for `for`, like threshold's pending) closer than
   `clear_after` to each other are one episode. It fires at its first anomalous point and
   ends at the first point with data that is `clear_after` past the last anomalous one, so
   a level shift, whose points stay anomalous until the baseline has moved, or a burst of
   spikes, is one incident and not one per point.

No verdict before the series has `warm_up` of history in the frame (default: `window` plus
one period of the longest season considered), so the check's lookback must cover the
warm-up, and `memory` too (config checks both). Missing points are skipped by the
medians, never count as anomalous and never end an episode.

Measured on NAB DEV (36 windows, one configuration for all 28 files; benchmarks/nab.py): the
plain rolling median/MAD z-score (6 MADs, episodes) scores 29.9 standard, because
spiky real series exceed any fixed number of MADs every day; the novelty rule removes
most of those repeats, the level stage finds the shifts the point rule misses, and
the `clear_after` episode rule removes duplicate alerts: 67.3 standard, 64.8 low-FP.
Seasonal differencing helps the daily artificial series and costs nothing on the others
with `auto`. The scores the defaults get are in benchmarks/nab.py's output.

Volume guard (ratio series, `volume.py`): with `total`, a point is anomalous only when
`min_events` back it and, with `significance`, it departs from the baseline ratio by a
one-sample proportion test.

Vectorised: the rolling medians and maxima run down every series of a block at once in
bottleneck's C code (the same values as pandas' rolling median, 4.5 times faster); the only
Python loops are per block of series, per candidate season and per episode. On
benchmarks/detect_speed.py (10,000 series × 1,440 points) the detector costs about one
pandas rolling-median pass, and 4.5 bottleneck passes, three of which are its medians.
"""

from __future__ import annotations

import math
import warnings
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from incident.detectors import volume
from incident.detectors._grid import (
    Grid,
    at_least,
    blocks,
    duration,
    firsts,
    grid,
    nanoseconds,
    run_end,
    run_start,
)
from incident.detectors.inputs import aligned, split
from incident.model import AnomalyParams, Direction, Firing

if TYPE_CHECKING:
    import pandas as pd

Floats = npt.NDArray[np.float64]
SEASONS = {"none": timedelta(0), "1d": timedelta(days=1), "1w": timedelta(weeks=1)}
MAD_TO_SIGMA = 1.4826


def candidate_seasons(params: AnomalyParams) -> list[timedelta]:
    """The seasons the detector evaluates: the one asked for, or for auto those that fit."""
    if params.season != "auto":
        return [SEASONS[params.season]]
    out = [timedelta(0), SEASONS["1d"]]
    week = SEASONS["1w"]
    if params.warm_up is not None and params.warm_up >= params.window + week:
        out.append(week)
    return out


def warm_up(params: AnomalyParams) -> timedelta:
    """The history a series needs in the frame before the detector gives a verdict on it."""
    if params.warm_up is not None:
        return params.warm_up
    return params.window + max(candidate_seasons(params))


def history(params: AnomalyParams) -> timedelta:
    """The lookback a check needs so that every run sees what a long backtest would."""
    longest = max(candidate_seasons(params)) * params.seasons
    return max(warm_up(params), params.memory + params.window, longest + params.window)


def detect(frame: pd.DataFrame, params: AnomalyParams, now: datetime) -> list[Firing]:
    """Every anomaly episode of every series at or before `now`, sorted by (fired, labels)."""
    _validate(params)
    own, extra = split(frame)
    events = None
    if params.total is not None and (params.min_events > 0 or params.significance is not None):
        events = aligned(list(own.columns), extra.get("total"), len(own.index))
    out: list[Firing] = []
    for block in blocks(own):
        out += _detect_block(own.iloc[:, block], None if events is None else events[:, block],
                             params, now)
    out.sort(key=lambda fr: (fr.fired, fr.labels))
    return out


def _detect_block(own: pd.DataFrame, events: Floats | None, params: AnomalyParams,
                  now: datetime) -> list[Firing]:
    """The episodes of one block of series; `events` is their volume guard's totals, if any."""
    g = grid(own, now)
    if g.n < 2 or g.m == 0:
        return []
    rows_ns = nanoseconds(g.index)
    step = int(np.median(np.diff(rows_ns)))

    def rows(span: timedelta) -> int:
        return max(1, round(at_least(span) / step))

    x = g.values.reshape(g.m, g.n).T  # (n, m): pandas rolls down the rows of every column
    window = rows(params.window)
    e, scale, season = _best_residual(x, [rows(s) if s else 0 for s in candidate_seasons(params)],
                                      params.seasons, window)
    memory = rows(params.memory)
    up, down = _directions(params.direction)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(e == 0, 0.0, e / scale)
        size = np.abs(e)
        point = (np.abs(z) > params.sensitivity) & (size >= params.min_deviation)
        point &= size > params.novelty * _past_max(size, memory)
        point &= (up & (e > 0)) | (down & (e < 0))
        smooth = rows(params.smooth)
        if smooth > 1:
            level = _rolling(e, smooth, smooth, "median")
            zl = np.where(level == 0, 0.0, level / scale)
            lsize = np.abs(level)
            shift = (np.abs(zl) > params.sensitivity) & (lsize >= params.min_deviation)
            shift &= lsize > _past_max(lsize, memory)
            shift &= (up & (level > 0)) | (down & (level < 0))
            shift &= ~point
            z = np.where(shift, zl, z)
            point |= shift

    number = ~np.isnan(x)
    evidence = number & _warm(number, rows(warm_up(params)))
    if events is not None:
        events = events[: g.n]
        evidence &= volume.enough(events, params.min_events)
        evidence &= volume.exceeds(x, events, x - e, params.significance, params.direction)
    anomalous = (point & evidence).T.ravel()  # back to the flat column-major layout
    deviation = np.where(np.isin(z, (np.inf, -np.inf)), e, np.nan)  # for a flat baseline's reason
    return _episodes(g, anomalous, evidence.T.ravel(), z.T.ravel(), deviation.T.ravel(),
                     season.T.ravel(), params, rows_ns)


def _validate(params: AnomalyParams) -> None:
    if params.season != "auto" and params.season not in SEASONS:
        raise ValueError(f"unknown season {params.season!r} (known: auto, {', '.join(SEASONS)})")
    if params.sensitivity <= 0 or params.novelty < 0 or params.seasons < 1:
        raise ValueError("anomaly needs sensitivity > 0, novelty ≥ 0 and seasons ≥ 1")
    if params.clear_after <= timedelta(0) or params.window <= timedelta(0):
        raise ValueError("anomaly needs a positive window and clear_after")


def _directions(direction: Direction) -> tuple[bool, bool]:
    return direction is not Direction.DOWN, direction is not Direction.UP


def _rolling(a: Floats, size: int, min_periods: int, how: str) -> Floats:
    """A trailing rolling statistic down the rows of every column (NaN skipped)."""
    import bottleneck

    n = a.shape[0]
    if n == 0 or min_periods > n:
        return np.full(a.shape, np.nan)
    # A window longer than the data reaches back to row 0 from every row, as does one of
    # exactly n rows; bottleneck rejects the longer one.
    size = min(size, n)
    # pandas' rolling statistics skip ±Inf like NaN (a histogram_quantile landing in the
    # +Inf bucket); bottleneck would count it, and one Inf would then be the baseline.
    infinite = np.isinf(a)
    if infinite.any():
        a = np.where(infinite, np.nan, a)
    move = bottleneck.move_median if how == "median" else bottleneck.move_max
    return np.asarray(move(a, size, min_count=min(min_periods, size), axis=0), dtype=np.float64)


def _previous(a: Floats) -> Floats:
    """Every row moved down one: row t holds what row t-1 had (strictly earlier points)."""
    out = np.empty_like(a)
    out[0] = np.nan
    out[1:] = a[:-1]
    return out


def _past_max(a: Floats, size: int) -> Floats:
    """The largest value over the `size` rows before each row (NaN with no earlier number)."""
    return _previous(_rolling(a, size, 1, "max"))


def _residual(x: Floats, season: int, seasons: int, window: int) -> tuple[Floats, Floats]:
    """(deviation from the baseline, robust scale) for one season in rows (0: none)."""
    r = x
    if season:
        profile = np.full((seasons, *x.shape), np.nan)
        for k in range(1, seasons + 1):  # one slice per period, not per point
            if k * season < x.shape[0]:
                profile[k - 1, k * season:] = x[: -k * season]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no profile yet
            r = x - np.nanmedian(profile, axis=0)
    half = max(1, window // 2)
    e = r - _previous(_rolling(r, window, half, "median"))
    # Rounding leftovers (a perfectly periodic series minus its profile) are no deviation;
    # left in, they would divide by a zero scale. An infinite value (a quantile in the +Inf
    # bucket) is the largest deviation there is, not a leftover.
    with np.errstate(invalid="ignore"):
        e[(np.abs(e) <= 1e-9 * np.abs(x)) & np.isfinite(x)] = 0.0
    scale = MAD_TO_SIGMA * _previous(_rolling(np.abs(e), window, half, "median"))
    return e, scale


def _best_residual(x: Floats, seasons: list[int], periods: int, window: int
                   ) -> tuple[Floats, Floats, npt.NDArray[np.int64]]:
    """Per point, the candidate season whose residual has the smallest scale."""
    best_e, best_scale = _residual(x, seasons[0], periods, window)
    chosen = np.full(x.shape, seasons[0], dtype=np.int64)
    for season in seasons[1:]:
        e, scale = _residual(x, season, periods, window)
        better = (scale < best_scale) | (np.isnan(best_scale) & ~np.isnan(scale))
        best_e = np.where(better, e, best_e)
        best_scale = np.where(better, scale, best_scale)
        chosen[better] = season
    return best_e, best_scale, chosen


def _warm(number: npt.NDArray[np.bool_], warm: int) -> npt.NDArray[np.bool_]:
    """True from `warm` rows after each column's first number on."""
    n = number.shape[0]
    first = np.where(number.any(axis=0), number.argmax(axis=0), n)
    out: npt.NDArray[np.bool_] = np.arange(n)[:, None] >= first[None, :] + warm
    return out


def _episodes(g: Grid, anomalous: npt.NDArray[np.bool_], evidence: npt.NDArray[np.bool_],
              z: Floats, deviation: Floats, season: npt.NDArray[np.int64], params: AnomalyParams,
              rows_ns: npt.NDArray[np.int64]) -> list[Firing]:
    """Anomalous points closer than clear_after are one episode; see the module docstring."""
    n, m = g.n, g.m
    since = run_start(anomalous, n)
    ripe = anomalous & (g.times - g.times[since] >= at_least(params.for_))
    positions = np.arange(n * m).reshape(m, n)
    last = np.maximum.accumulate(np.where(ripe.reshape(m, n), positions, -1), axis=1).ravel()
    seen = last >= 0
    clear = at_least(params.clear_after)
    quiet = evidence & seen & (g.times - g.times[np.maximum(last, 0)] >= clear)
    last_quiet = np.maximum.accumulate(np.where(quiet.reshape(m, n), positions, -1), axis=1)
    firing = seen & (last > last_quiet.ravel())
    ends = run_end(firing, n)
    step = int(rows_ns[1] - rows_ns[0]) if n > 1 else 1
    out = []
    for f in firsts(firing, n):  # one iteration per episode
        col = int(f) // n
        end = int(ends[f])
        value = float(g.values[last[end - 1]])  # the last anomalous point's value
        out.append(Firing(
            labels=g.labels[col],
            start=g.stamp(since[f]),
            fired=g.stamp(f),
            end=g.stamp_or_none(end),
            value=value,
            reason=_reason(float(z[f]), float(deviation[f]), int(season[f]) * step),
        ))
    return out


def _reason(z: float, deviation: float, season_ns: int) -> str:
    """"3.2 MADs above the 1d-seasonal baseline" ("+1 off a flat baseline" with no spread)."""
    name = f"the {duration(timedelta(microseconds=season_ns // 1000))}-seasonal baseline" \
        if season_ns else "the baseline"
    if math.isinf(deviation):
        return f"at {'+' if deviation > 0 else '-'}Inf, beyond {name} and any bucket"
    if not math.isfinite(z):
        return f"{deviation:+g} off {name}, which had been flat"
    return f"{abs(z):.1f} MADs {'above' if z > 0 else 'below'} {name}"
