"""Sources for a drill: the real source read once over the drill's span, faults laid over it.

A check's windows during a replay all sit on one grid (the drill start aligned to the check's
step), and PromQL evaluates each grid point on its own, so one range query over the whole
span, sliced per step, returns exactly what a query per step would. Nothing is ever written
to the real source. In a live drill the clock is the wall clock and `shift` maps it back onto
the data the scenario replays.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from incident.drills.faults import apply, apply_raw, matches
from incident.errors import DrillError
from incident.model import Injection, Labels
from incident.sources.promql.storage import MemoryStorage, RawSeries

if TYPE_CHECKING:
    import pandas as pd

    from incident.sources import Source


class ReplaySource:
    """One check's view of a source during a drill: faults laid over what the source says.

    A replay reads the source once over the drill's span and serves slices; a live drill
    (`cached=False`) reads on every tick, since the data it replays is still being written.
    `clean_inner` is the source without raw-metric faults, for the steady state.
    """

    def __init__(self, inner: Source, *, check_query: str, faults: Sequence[Injection],
                 drill_start: datetime, span: tuple[datetime, datetime],
                 shift: timedelta = timedelta(0), clean_inner: Source | None = None,
                 cached: bool = True,
                 raw: dict[tuple[str, timedelta], pd.DataFrame] | None = None) -> None:
        self.name = inner.name
        self._inner = inner
        self._clean_inner = clean_inner
        self._check_query = check_query
        self._faults = faults
        self._drill_start = drill_start
        self._span = span
        self._shift = shift
        self._cached = cached
        self._raw = {} if raw is None else raw  # shared with clean() when the data is the same
        self._faulted: dict[tuple[str, timedelta], pd.DataFrame] = {}

    @property
    def shift(self) -> timedelta:
        """How far the wall clock runs ahead of the replayed data (live drills)."""
        return self._shift

    def clean(self) -> ReplaySource:
        """The real data with no fault laid over it (for the steady-state hypothesis)."""
        inner = self._clean_inner or self._inner
        return ReplaySource(inner, check_query=self._check_query, faults=(),
                            drill_start=self._drill_start, span=self._span, shift=self._shift,
                            cached=self._cached,
                            raw=self._raw if inner is self._inner else None)

    def query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                    ) -> pd.DataFrame:
        """The query over [start, end] as the drill sees it at that time."""
        start, end = start - self._shift, end - self._shift
        if not self._cached or start < self._span[0] or end > self._span[1]:
            whole = self._fault(query, self._inner.query_range(query, start, end, step))
        else:
            whole = self.frame(step, query)
        piece = whole.loc[(whole.index >= start) & (whole.index <= end)]
        piece = piece.loc[:, piece.notna().any(axis=0).to_numpy()]
        if self._shift:
            piece = piece.set_axis(piece.index + self._shift, axis=0)
        return piece

    def frame(self, step: timedelta, query: str | None = None) -> pd.DataFrame:
        """A query (the check's own by default) over the whole span, as the drill sees it."""
        key = (query or self._check_query, step)
        if key not in self._raw:
            self._raw[key] = self._inner.query_range(key[0], *self._span, step)
        if key not in self._faulted:
            self._faulted[key] = self._fault(key[0], self._raw[key])
        return self._faulted[key]

    def _fault(self, query: str, data: pd.DataFrame) -> pd.DataFrame:
        if query != self._check_query or not self._faults:
            return data
        return fault_frame(data, self._faults, self._drill_start)

    def api_query(self, query: str, at: datetime) -> dict[str, Any]:
        """Instant queries go to the real source unchanged."""
        return self._inner.api_query(query, at - self._shift)

    def api_query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                        ) -> dict[str, Any]:
        """Range queries go to the real source unchanged."""
        return self._inner.api_query_range(query, start - self._shift, end - self._shift, step)


def fault_frame(data: pd.DataFrame, faults: Sequence[Injection], drill_start: datetime
                ) -> pd.DataFrame:
    """A check's evaluated series with the faults laid over the matching columns."""
    out = data.copy()
    t = data.index.as_unit("ms").asi8 / 1e3
    base = drill_start.timestamp()
    for n, inj in enumerate(faults):
        for i, column in enumerate(data.columns):
            if "__query__" in column or not matches(column, inj.labels):
                continue
            out.iloc[:, i] = apply(out.iloc[:, i].to_numpy(), t, inj.fault,
                                   base + inj.start.total_seconds(),
                                   base + inj.end.total_seconds(), salt=n * 1000 + i)
    return out


def faulted_storage(storage: MemoryStorage, faults: Sequence[Injection], drill_start: datetime
                    ) -> MemoryStorage:
    """A copy of a local source's series with raw-metric faults laid over them."""
    from incident.sources.promql.ast import VectorSelector
    from incident.sources.promql.parser import parse

    base = drill_start.timestamp()
    selected = []
    for inj in faults:
        expr = parse(inj.metric or "")
        assert isinstance(expr, VectorSelector)  # config accepts plain selectors only
        selected.append((inj, expr.matchers))
    out: list[RawSeries] = []
    hit = [False] * len(faults)
    for s in storage.series:
        t, v = s.t, s.v
        for n, (inj, matchers) in enumerate(selected):
            if all(m.matches(s.labels) for m in matchers) and matches(s.labels, inj.labels):
                hit[n] = True
                t, v = apply_raw(s.labels, t, v, inj.fault, base + inj.start.total_seconds(),
                                 base + inj.end.total_seconds(), salt=n * 1000 + len(out))
        out.append(RawSeries(labels=s.labels, t=t, v=v) if t is not s.t or v is not s.v else s)
    for n, inj in enumerate(faults):
        if not hit[n]:
            raise DrillError(f"{_where(inj)}: metric {inj.metric} matches no series of the "
                             "local source")
    return MemoryStorage(out)


def _where(inj: Injection) -> str:
    return str(inj.position) if inj.position else "inject"


def check_labels(frame: pd.DataFrame) -> list[Labels]:
    """The check's own columns (not its good/total inputs)."""
    return [c for c in frame.columns if "__query__" not in c]


def extremes(frame: pd.DataFrame, start: datetime, end: datetime) -> tuple[float, float] | None:
    """The lowest and highest value of the check's own series in [start, end]."""
    rows = (frame.index >= start) & (frame.index <= end)
    cols = [i for i, c in enumerate(frame.columns) if "__query__" not in c]
    values = frame.to_numpy()[rows][:, cols] if cols else np.empty(0)
    values = values[~np.isnan(values)] if values.size else values
    return (float(values.min()), float(values.max())) if values.size else None
