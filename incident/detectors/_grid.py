"""Shared plumbing for detectors: the evaluated grid up to `now`, and run arithmetic on it.

Every detector works on the same layout: the frame's values transposed and flattened
column by column into one 1-D array of length `n * m` (n rows, m series), so a single
numpy pass covers every series. Runs of True in a mask are cut at column boundaries, so
a run never spans two series.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]
BLOCK_POINTS = 1 << 17


@dataclass(frozen=True, slots=True)
class Grid:
    """The points of a frame at or before `now`, flattened column-major."""

    index: pd.DatetimeIndex  # the n row times, tz-aware
    times: npt.NDArray[np.int64]  # (n*m,) the row time of every flat position, ns since epoch
    values: npt.NDArray[np.float64]  # (n*m,) column 0's rows, then column 1's, …
    labels: list[Any]  # the m column labels
    n: int
    stamps: list[datetime]  # the n row times as plain datetimes, made once for every firing

    @property
    def m(self) -> int:
        """The number of series."""
        return len(self.labels)

    def locate(self, flat: int) -> tuple[int, int]:
        """The (column, row) of a flat position."""
        col, row = divmod(int(flat), self.n)
        return col, row

    def stamp(self, flat: int) -> datetime:
        """The row time of a flat position, as a plain tz-aware datetime."""
        return self.stamps[int(flat) % self.n]

    def stamp_or_none(self, flat_end: int) -> datetime | None:
        """The time of the exclusive run end `flat_end`, None when the run reached the last row."""
        # A run ending at the last row of its column ends exactly on the next column's start.
        return None if int(flat_end) % self.n == 0 else self.stamp(flat_end)


def grid(frame: pd.DataFrame, now: datetime) -> Grid:
    """The frame's points at or before `now`, read-only: the frame is never written to."""
    # searchsorted on the ascending index: points after `now` never enter the evaluation,
    # which is what makes a detector causal and agree with a run at `now`.
    n = int(frame.index.searchsorted(now, side="right"))
    index = frame.index[:n]
    matrix = frame.to_numpy(dtype=np.float64)[:n]
    m = matrix.shape[1]
    rows = nanoseconds(index)
    return Grid(
        index=index,
        times=np.tile(rows, m),
        values=matrix.T.ravel(),
        labels=list(frame.columns),
        n=n,
        stamps=list(index.to_pydatetime()),
    )


def blocks(frame: pd.DataFrame) -> Iterator[slice]:
    """Slices of the frame's columns of about BLOCK_POINTS points each.

    Series are independent, so a detector that makes many temporary arrays runs a block at
    a time: small arrays are reused from the allocator, while with 10,000 series × 1 day
    every temporary was 115 MB, faulted in fresh from the OS, which cost more than the
    arithmetic.
    """
    width = max(1, BLOCK_POINTS // max(1, len(frame.index)))
    for first in range(0, frame.shape[1], width):
        yield slice(first, first + width)


def nanoseconds(index: pd.DatetimeIndex) -> npt.NDArray[np.int64]:
    """Row times as int64 nanoseconds since the epoch (UTC).

    Not `index.to_numpy()`: for a tz-aware index that is an object array of Timestamps,
    and arithmetic on it runs a Python call per point.
    """
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def _opens(mask: BoolArray, n: int) -> BoolArray:
    """True at the first position of every run of True."""
    previous = np.zeros_like(mask)
    previous[1:] = mask[:-1]
    previous[::n] = False  # a column's first row always opens a run
    return mask & ~previous


def _closes(mask: BoolArray, n: int) -> BoolArray:
    """True at the last position of every run of True."""
    following = np.zeros_like(mask)
    following[:-1] = mask[1:]
    following[n - 1 :: n] = False  # a column's last row always closes a run
    return mask & ~following


def firsts(mask: BoolArray, n: int) -> IntArray:
    """The flat index of the first position of every run of True."""
    return np.flatnonzero(_opens(mask, n))


# The run arithmetic numbers the runs with a cumulative sum (the k-th run opened at or
# before a position) and looks the run's bounds up by that number: cumsum is several
# times faster than maximum.accumulate on large arrays. Positions outside any run get
# some in-range but meaningless value; callers only read positions where `mask` holds.


def run_start(mask: BoolArray, n: int) -> IntArray:
    """For every position inside a run of True, the flat index of that run's first position."""
    opens = _opens(mask, n)
    first = np.flatnonzero(opens)
    if first.size == 0:
        return np.zeros(mask.size, dtype=np.intp)
    return first[np.cumsum(opens) - 1]


def run_end(mask: BoolArray, n: int) -> IntArray:
    """For every position inside a run of True, the flat index just past the run (exclusive)."""
    opens = _opens(mask, n)
    last = np.flatnonzero(_closes(mask, n))  # the k-th close belongs to the k-th open
    if last.size == 0:
        return np.zeros(mask.size, dtype=np.intp)
    return last[np.cumsum(opens) - 1] + 1


def duration(span: timedelta) -> str:
    """A timedelta the way checks write it: 90s → "1m30s", 1 hour → "1h", zero → "0s"."""
    left = int(span.total_seconds())
    parts = []
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, seconds)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def at_least(span: timedelta) -> int:
    """`span` in nanoseconds, rejecting negative ones (a config error that slipped through)."""
    if span < timedelta(0):
        raise ValueError(f"for must not be negative, got {span}")
    return span // timedelta(microseconds=1) * 1000
