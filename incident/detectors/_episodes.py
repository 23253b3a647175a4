"""Episodes from per-point masks: the pending/firing/clear rule the threshold detector uses.

Shared by change, anomaly and burn_rate, on the flat column-major layout of `_grid`:

- `breach`: the point is anomalous. A run of consecutive breaching points is *pending*
  and fires at its first point `t` with `t - start >= for` (`for = 0` fires at once).
- `hold`: the point keeps a firing episode alive (every breaching point holds, and so does
  NaN: missing data never resolves). The episode ends at the first point that does not hold.

Each maximal run of `hold` yields at most one episode, so the work is one numpy pass plus
one Python iteration per episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from incident.detectors._grid import BoolArray, Grid, run_end, run_start


@dataclass(frozen=True, slots=True)
class Episode:
    """Flat positions of one episode: first breaching point, firing point, exclusive end."""

    start: int
    fired: int
    end: int
    column: int


def episodes(g: Grid, breach: BoolArray, hold: BoolArray, min_age_ns: int) -> list[Episode]:
    """The episodes of every column, in flat order; `breach` must imply `hold`."""
    breach_from = run_start(breach, g.n)
    ripe = breach & (g.times - g.times[breach_from] >= min_age_ns)
    hold_from = run_start(hold, g.n)
    candidates = np.flatnonzero(ripe)
    run_of = hold_from[candidates]
    first = np.ones(candidates.size, dtype=bool)
    first[1:] = run_of[1:] != run_of[:-1]
    hold_to = run_end(hold, g.n)
    out = []
    for f in candidates[first]:
        out.append(Episode(start=int(breach_from[f]), fired=int(f), end=int(hold_to[f]),
                           column=int(f) // g.n))
    return out


def last_number(values: np.ndarray, start: int, end: int) -> float:
    """The last non-NaN value in values[start:end] (the episode opens on a number)."""
    numbers = np.flatnonzero(~np.isnan(values[start:end]))
    return float(values[start + numbers[-1]]) if numbers.size else float("nan")
