"""Evaluates a syntax tree over a whole grid of steps at once."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from incident.sources.promql import binop, functions
from incident.sources.promql.aggregate import aggregate
from incident.sources.promql.ast import (
    Aggregate,
    Binary,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    Paren,
    StringLiteral,
    Subquery,
    Unary,
    VectorSelector,
)
from incident.sources.promql.storage import Matcher, RawSeries, Storage, is_stale
from incident.sources.promql.values import (
    RangeVector,
    Series,
    Value,
    Vector,
    Windowed,
    drop_name,
    merge,
    windows,
)

LOOKBACK_MS = 5 * 60_000
DEFAULT_SUBQUERY_STEP_MS = 60_000  # Prometheus's default global evaluation_interval


def to_ms(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds to integer milliseconds, the resolution Prometheus works in."""
    return np.round(np.asarray(seconds, dtype=np.float64) * 1000.0).astype(np.int64)


class Evaluator:
    """Evaluates expressions at every step of `grid` (int64 ms) against one storage."""

    def __init__(self, storage: Storage, grid: np.ndarray, *, lookback_ms: int = LOOKBACK_MS,
                 default_step_ms: int = DEFAULT_SUBQUERY_STEP_MS) -> None:
        self.storage = storage
        self.grid = grid
        self.lookback_ms = lookback_ms
        self.default_step_ms = default_step_ms

    def eval(self, e: Expr) -> Value:
        """The value of `e` at every step."""
        match e:
            case NumberLiteral():
                return np.full(len(self.grid), e.value)
            case StringLiteral():
                return e.value
            case Paren():
                return self.eval(e.expr)
            case Unary():
                inner = self.eval(e.expr)
                if isinstance(inner, np.ndarray):
                    return -inner
                assert isinstance(inner, list)
                return merge([Series(drop_name(s.labels), -s.values, s.present) for s in inner])
            case VectorSelector():
                return self.select_instant(e)[0]
            case MatrixSelector():
                return self.select_range(e)
            case Subquery():
                return self.subquery(e)
            case Call():
                return functions.call(self, e)
            case Aggregate():
                return self.aggregate(e)
            case Binary():
                return self.binary(e)
        raise AssertionError(e)

    # ------------------------------------------------------------ selectors

    def _select(self, matchers: Sequence[Matcher], start_ms: int, end_ms: int
                ) -> list[RawSeries]:
        # One millisecond of slack each side: the exact cut happens below, in integer ms.
        found = self.storage.select(matchers, (start_ms - 1) / 1000.0, (end_ms + 1) / 1000.0)
        # Prometheus reads series in label order; ties in topk/bottomk depend on it.
        return sorted(found, key=lambda s: s.labels)

    def select_instant(self, vs: VectorSelector, with_timestamps: bool = False
                       ) -> tuple[Vector, list[np.ndarray]]:
        """Per step, each series' newest sample in [T-offset-5m, T-offset], unless stale."""
        end = self.grid - vs.offset_ms
        out: Vector = []
        stamps: list[np.ndarray] = []
        for raw in self._select(vs.matchers, int(end[0]) - self.lookback_ms, int(end[-1])):
            t = to_ms(raw.t)
            idx = np.searchsorted(t, end, side="right") - 1
            ok = idx >= 0
            idx = np.maximum(idx, 0)
            ok &= t[idx] >= end - self.lookback_ms
            values = raw.v[idx]
            ok &= ~is_stale(values)
            if ok.any():
                out.append(Series(raw.labels, values, ok))
                stamps.append(t[idx])
        return out, stamps

    def select_range(self, ms: MatrixSelector) -> RangeVector:
        """Each series' non-stale samples, with per-step windows [T-o-range, T-o]."""
        vs = ms.vector
        end = self.grid - vs.offset_ms
        series = []
        for raw in self._select(vs.matchers, int(end[0]) - ms.range_ms, int(end[-1])):
            keep = ~is_stale(raw.v)
            t, v = to_ms(raw.t)[keep], raw.v[keep]
            lo, hi = windows(t, self.grid, ms.range_ms, vs.offset_ms)
            series.append(Windowed(raw.labels, t, v, lo, hi))
        return RangeVector(series, ms.range_ms, vs.offset_ms)

    def subquery(self, sq: Subquery) -> RangeVector:
        """Evaluate the inner expression on a grid aligned to absolute multiples of its step."""
        step = sq.step_ms or self.default_step_ms
        begin = int(self.grid[0]) - sq.offset_ms - sq.range_ms
        start = step * (begin // step)
        if start < begin:
            start += step
        end = int(self.grid[-1]) - sq.offset_ms
        inner_grid = np.arange(start, end + 1, step, dtype=np.int64)
        series = []
        if len(inner_grid):
            inner = Evaluator(self.storage, inner_grid, lookback_ms=self.lookback_ms,
                              default_step_ms=self.default_step_ms).eval(sq.expr)
            assert isinstance(inner, list)
            for s in inner:
                t, v = inner_grid[s.present], s.values[s.present]
                lo, hi = windows(t, self.grid, sq.range_ms, sq.offset_ms)
                series.append(Windowed(s.labels, t, v, lo, hi))
        return RangeVector(series, sq.range_ms, sq.offset_ms)

    # ------------------------------------------------------------ operators

    def aggregate(self, e: Aggregate) -> Vector:
        param = None if e.param is None else self.eval(e.param)
        vec = self.eval(e.expr)
        assert isinstance(vec, list)
        assert param is None or isinstance(param, np.ndarray | str)
        return aggregate(e.op, vec, e.grouping, e.without, param, len(self.grid))

    def binary(self, e: Binary) -> Value:
        lhs, rhs = self.eval(e.lhs), self.eval(e.rhs)
        if isinstance(lhs, np.ndarray) and isinstance(rhs, np.ndarray):
            return binop.scalar_scalar(e.op, lhs, rhs, e.return_bool)
        if isinstance(rhs, np.ndarray):
            assert isinstance(lhs, list)
            return binop.vector_scalar(e.op, lhs, rhs, False, e.return_bool)
        if isinstance(lhs, np.ndarray):
            assert isinstance(rhs, list)
            return binop.vector_scalar(e.op, rhs, lhs, True, e.return_bool)
        assert isinstance(lhs, list) and isinstance(rhs, list) and e.matching is not None
        if e.op in ("and", "or", "unless"):
            return binop.set_op(e.op, lhs, rhs, e.matching)
        return binop.vector_vector(e.op, lhs, rhs, e.matching, e.return_bool)
