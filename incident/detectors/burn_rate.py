"""The burn_rate detector: an SLO burns its error budget too fast, over paired windows.

Semantics (the multi-window, multi-burn-rate alerts of the SRE Workbook, chapter 5), per
series, over the points at or before `now`:

- The *SLI* is either the check's query, a success ratio in [0, 1] per point, or the
  `good` and `total` queries (the engine hands them over as columns labelled
  `__query__="good"|"total"`, paired on their other labels). The error budget is
  `1 - objective` of the events over `period`.
- The *error ratio* over a window ending at t is the mean of `1 - sli` over the window's
  points with a number (ratio query), or `sum(total - good) / sum(total)` over the points
  where both are present (good/total). The *burn rate* is that divided by the budget: 1
  spends exactly the budget over the period.
- A *pair* (long, short, burn) holds at t when both windows burn at least `burn`× and
  the series has at least `long` of history in the frame (no verdict from a partial
  window; the check's lookback must cover the longest window). The defaults are the
  Workbook's: 1h/5m at 14.4 and 6h/30m at 6 page; 1d/2h at 3 and 3d/6h at 1 are tickets
  (severity low). A point *breaches* when any pair holds; the first pair listed that held
  anywhere in the episode so far names the reason and the severity (so an episode that
  starts as a ticket and turns into a page reports the page from then on).
- *Missing SLI*: a point without a number (no ratio, or good or total missing, or total 0)
  is never read as 100% (or 0%) success: it is no evidence. It neither breaches nor
  clears, so a burning episode holds through a gap (the check's `no_data` rule reports
  the missing series at `now`), and the windows average only the points that exist.
- Volume guard (`volume.py`): with `min_events`, each window of a pair needs that many
  events (the `total` counts); with `significance`, the short window's error ratio must
  exceed `burn × budget` by a one-sided proportion test at that level.
- Episodes as in threshold, `for` 0: an episode fires at the first breaching point and ends
  at the first point with evidence where no pair holds.

A Firing carries the series' labels (without `__query__`), the highest burn rate of a
holding pair at the episode's last evidence, and a reason such as "burning 15.2× budget
over 1h and 5m (≥14.4×)", with "(severity low)" when the pair has its own severity.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from incident.detectors import volume
from incident.detectors._episodes import episodes
from incident.detectors._grid import at_least, blocks, duration, grid, nanoseconds
from incident.detectors.inputs import aligned, split
from incident.model import BurnRateParams, BurnWindow, Direction, Firing

if TYPE_CHECKING:
    import pandas as pd

Floats = npt.NDArray[np.float64]


def detect(frame: pd.DataFrame, params: BurnRateParams, now: datetime) -> list[Firing]:
    """Every burn episode of every series at or before `now`, sorted by (fired, labels)."""
    _validate(params)
    own, extra = split(frame)
    counted = "good" in extra or params.good is not None
    main = extra["total"] if counted and "total" in extra else own
    paired = None  # good counts beside totals, or the volume guard's totals beside a ratio
    if counted or params.total:
        paired = aligned(list(main.columns), extra.get("good" if counted else "total"), len(main.index))
    out: list[Firing] = []
    for block in blocks(main):
        out += _detect_block(main.iloc[:, block], None if paired is None else paired[:, block],
                             counted, params, now)
    out.sort(key=lambda f: (f.fired, f.labels))
    return out


def _detect_block(main: pd.DataFrame, paired: Floats | None, counted: bool, params: BurnRateParams,
                  now: datetime) -> list[Firing]:
    """The burn episodes of one block of series (SLI or totals in `main`, see `detect`)."""
    g = grid(main, now)
    if g.n < 1 or g.m == 0:
        return []
    rows_ns = nanoseconds(g.index)
    step = int(np.median(np.diff(rows_ns))) if g.n > 1 else at_least(params.windows[0].short)

    def rows(span: timedelta) -> int:
        return max(1, round(at_least(span) / step))

    events: Floats | None
    if counted:
        assert paired is not None
        total = g.values.reshape(g.m, g.n).T
        good = paired[: g.n]
        with np.errstate(invalid="ignore"):
            present = ~np.isnan(total) & ~np.isnan(good) & (total > 0)
        bad = np.where(present, total - good, np.nan)
        events = np.where(present, total, np.nan)
    else:
        sli = g.values.reshape(g.m, g.n).T
        present = ~np.isnan(sli)
        bad = 1 - sli
        events = None if paired is None else paired[: g.n]

    budget = 1 - params.objective
    first = np.where(present.any(axis=0), present.argmax(axis=0), g.n)
    breach = np.zeros(present.shape, dtype=bool)
    which = np.full(present.shape, -1, dtype=np.int64)
    burning = np.full(present.shape, np.nan)
    for i, pair in enumerate(params.windows):  # one pass per pair, over every series
        long_rows, short_rows = rows(pair.long), rows(pair.short)
        burn_long = _error_ratio(bad, events, present, long_rows, counted) / budget
        burn_short = _error_ratio(bad, events, present, short_rows, counted) / budget
        with np.errstate(invalid="ignore"):
            holds = (burn_long >= pair.burn) & (burn_short >= pair.burn)
        holds &= np.arange(g.n)[:, None] >= first[None, :] + long_rows - 1
        if events is not None and (params.min_events > 0 or params.significance is not None):
            short_events = _sum(np.where(present, events, np.nan), short_rows)
            holds &= volume.enough(_sum(np.where(present, events, np.nan), long_rows),
                                   params.min_events)
            holds &= volume.enough(short_events, params.min_events)
            holds &= volume.exceeds(burn_short * budget, short_events,
                                    np.full(holds.shape, pair.burn * budget),
                                    params.significance, Direction.UP)
        which = np.where(holds & (which < 0), i, which)
        breach |= holds
        burning = np.where(holds, np.fmax(burning, np.minimum(burn_long, burn_short)), burning)

    flat_breach = (breach & present).T.ravel()
    flat_present = present.T.ravel()
    flat_which = which.T.ravel()
    flat_burning = burning.T.ravel()
    out = []
    for e in episodes(g, flat_breach, flat_breach | ~flat_present, 0):
        seen = e.start + np.flatnonzero(flat_present[e.start:e.end] & flat_breach[e.start:e.end])
        # The first-listed pair that held anywhere in the episode so far names it: a slow burn
        # that turns into a fast one reports the fast pair (and its severity) from then on.
        best = int(flat_which[seen].min()) if seen.size else int(flat_which[e.fired])
        named = int(seen[flat_which[seen] == best][0]) if seen.size else e.fired
        pair = params.windows[best]
        value = float(flat_burning[seen[-1]]) if seen.size else math.nan
        out.append(Firing(
            labels=g.labels[e.column],
            start=g.stamp(e.start),
            fired=g.stamp(e.fired),
            end=g.stamp_or_none(e.end),
            value=value,
            reason=_reason(float(flat_burning[named]), pair),
            severity=pair.severity,
        ))
    return out


def _validate(params: BurnRateParams) -> None:
    if not 0 < params.objective < 1:
        raise ValueError(f"objective must be between 0 and 1, got {params.objective:g}")
    if not params.windows:
        raise ValueError("burn_rate needs at least one window pair")
    for pair in params.windows:
        if not timedelta(0) < pair.short < pair.long or pair.burn <= 0:
            raise ValueError(f"bad window pair {pair}: need 0 < short < long and burn > 0")


def _sum(a: Floats, size: int) -> Floats:
    """Trailing rolling sum over `size` rows, NaN skipped (NaN when the window has no number)."""
    import pandas as pd

    return np.asarray(pd.DataFrame(a, copy=False).rolling(size, min_periods=1).sum()
                      .to_numpy(dtype=np.float64))


def _error_ratio(bad: Floats, events: Floats | None, present: npt.NDArray[np.bool_], size: int,
                 counted: bool) -> Floats:
    """The error ratio over the trailing window: ratio of sums (counts) or mean of ratios."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if counted:
            assert events is not None
            return _sum(np.where(present, bad, np.nan), size) / _sum(
                np.where(present, events, np.nan), size)
        return _sum(np.where(present, bad, np.nan), size) / _sum(present.astype(np.float64), size)


def _reason(burn: float, pair: BurnWindow) -> str:
    """"burning 15.2× budget over 1h and 5m (≥14.4×)"."""
    text = (f"burning {burn:.1f}× budget over {duration(pair.long)} and {duration(pair.short)}"
            f" (≥{pair.burn:g}×)")
    return text + (f" (severity {pair.severity.value})" if pair.severity else "")

