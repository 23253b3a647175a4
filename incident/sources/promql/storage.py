"""What the PromQL evaluator needs from the data it reads: raw samples chosen by label matchers."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from incident.model import Labels
from incident.sources.promql.regex import compile_anchored

# Prometheus marks a series as gone with this exact NaN bit pattern (value.StaleNaN).
STALE_NAN_BITS = np.uint64(0x7FF0000000000002)
STALE_NAN = np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0]


def is_stale(values: np.ndarray) -> np.ndarray:
    """A boolean mask of the stale markers in a float64 array."""
    return values.view(np.uint64) == STALE_NAN_BITS


class MatchOp(enum.StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher; regexes are Go RE2 syntax, fully anchored, as in Prometheus 2.42
    (where '.' does not match a newline)."""

    name: str
    op: MatchOp
    value: str

    def matches(self, labels: Labels) -> bool:
        """True if the series' label value (empty when absent) satisfies the matcher."""
        actual = labels.get(self.name)
        if self.op is MatchOp.EQ:
            return actual == self.value
        if self.op is MatchOp.NE:
            return actual != self.value
        hit = compile_anchored(self.value).match(actual) is not None
        return hit if self.op is MatchOp.RE else not hit


@dataclass(frozen=True, slots=True, eq=False)
class RawSeries:
    """One stored series: timestamps in Unix seconds (ascending) and float64 values.

    Stale markers are stored as STALE_NAN; an ordinary NaN is an ordinary sample.
    """

    labels: Labels
    t: np.ndarray
    v: np.ndarray


class Storage(Protocol):
    """Where the evaluator reads samples from."""

    def select(self, matchers: Sequence[Matcher], start: float, end: float) -> list[RawSeries]:
        """Every series matching all `matchers`, with its samples in [start, end] seconds."""
        ...


class MemoryStorage:
    """A Storage over series held in memory; the file source and tests build one."""

    def __init__(self, series: Sequence[RawSeries]) -> None:
        self._series = list(series)

    @property
    def series(self) -> list[RawSeries]:
        """All series, unfiltered."""
        return list(self._series)

    def select(self, matchers: Sequence[Matcher], start: float, end: float) -> list[RawSeries]:
        """Every series matching all `matchers`, cut to [start, end]."""
        out = []
        for s in self._series:
            if all(m.matches(s.labels) for m in matchers):
                lo, hi = np.searchsorted(s.t, [start, end], side="left")[0], np.searchsorted(
                    s.t, end, side="right"
                )
                if hi > lo:
                    out.append(RawSeries(labels=s.labels, t=s.t[lo:hi], v=s.v[lo:hi]))
        return out
