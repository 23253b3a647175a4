"""A local PromQL engine: parse a query and evaluate it on stored samples like Prometheus 2.42.

    parse(text) -> Expr
    evaluate_range(expr, storage, start, end, step) -> RangeResult
    evaluate_instant(expr, storage, t) -> InstantResult

Times are Unix seconds. Unsupported constructs raise PromQLError rather than answer wrongly.

Supported, checked against a real Prometheus 2.42 (tests/promql): selectors with = != =~ !~
(Go RE2 regexes), offset (also negative), the 5-minute lookback and stale markers, range
selectors (closed window, as in 2.x), subqueries (default step 1m, aligned grid), every 2.42
range function (rate … holt_winters, *_over_time), all aggregations with by/without, all binary
operators with bool, on/ignoring, group_left/group_right, math/clamp/round/label/time/date
functions, histogram_quantile on classic `le` buckets, absent/absent_over_time, sort.

Refused with PromQLError: the @ modifier, native-histogram functions (histogram_count,
histogram_sum, histogram_fraction), unknown functions, RE2/Python regex mismatches.
"""

from __future__ import annotations

import math

import numpy as np

from incident.model import Labels
from incident.sources.promql.ast import Call, Expr, Paren, ValueType
from incident.sources.promql.errors import PromQLError
from incident.sources.promql.evaluator import Evaluator
from incident.sources.promql.format import InstantResult, RangeResult, RawRange, Sample
from incident.sources.promql.parser import parse, type_of
from incident.sources.promql.storage import Storage
from incident.sources.promql.values import RangeVector, Series

__all__ = [
    "Expr", "InstantResult", "PromQLError", "RangeResult", "RawRange", "Sample",
    "evaluate_instant", "evaluate_range", "parse",
]


def _expr(expr: str | Expr) -> Expr:
    return parse(expr) if isinstance(expr, str) else expr


def evaluate_range(expr: str | Expr, storage: Storage, start: float, end: float,
                   step: float) -> RangeResult:
    """Evaluate at start, start+step, … ≤ end, like Prometheus's /api/v1/query_range."""
    tree = _expr(expr)
    kind = type_of(tree)
    if kind not in (ValueType.SCALAR, ValueType.VECTOR):
        raise PromQLError(f'invalid expression type "{kind.described}" for range query, '
                          "must be Scalar or instant Vector")
    if not step > 0 or not math.isfinite(step):
        raise PromQLError("zero or negative query resolution step widths are not accepted")
    start_ms, end_ms, step_ms = round(start * 1000), round(end * 1000), round(step * 1000)
    if end_ms < start_ms:
        raise PromQLError("end timestamp must not be before start time")
    grid = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
    with np.errstate(all="ignore"):  # NaN and ±Inf are ordinary PromQL values
        value = Evaluator(storage, grid).eval(tree)
    timestamps = grid / 1000.0
    if isinstance(value, np.ndarray):
        return RangeResult("matrix", timestamps, [(Labels(), value)],
                           [np.ones(len(grid), dtype=bool)])
    assert isinstance(value, list)
    ordered = sorted((s for s in value if s.present.any()), key=lambda s: s.labels)
    return RangeResult("matrix", timestamps,
                       [(s.labels, np.where(s.present, s.values, np.nan)) for s in ordered],
                       [s.present for s in ordered])


def evaluate_instant(expr: str | Expr, storage: Storage, t: float) -> InstantResult:
    """Evaluate at one time, like Prometheus's /api/v1/query."""
    tree = _expr(expr)
    t_ms = round(t * 1000)
    with np.errstate(all="ignore"):
        value = Evaluator(storage, np.array([t_ms], dtype=np.int64)).eval(tree)
    if isinstance(value, str):
        return InstantResult("string", t, value)
    if isinstance(value, np.ndarray):
        return InstantResult("scalar", t, float(value[0]))
    if isinstance(value, RangeVector):
        rows = [RawRange(w.labels, w.t[w.lo[0]:w.hi[0]] / 1000.0, w.v[w.lo[0]:w.hi[0]])
                for w in value.series if w.hi[0] > w.lo[0]]
        return InstantResult("matrix", t, sorted(rows, key=lambda r: r.labels))
    return InstantResult("vector", t, _instant_order(tree, value))


def _instant_order(tree: Expr, value: list[Series]) -> list[Sample]:
    samples = sorted((Sample(s.labels, float(s.values[0])) for s in value if s.present[0]),
                     key=lambda s: s.labels)
    while isinstance(tree, Paren):
        tree = tree.expr
    if isinstance(tree, Call) and tree.func in ("sort", "sort_desc"):
        # Go sorts NaN first in both directions.
        sign = 1.0 if tree.func == "sort" else -1.0
        samples.sort(key=lambda s: (not math.isnan(s.value),
                                    0.0 if math.isnan(s.value) else sign * s.value))
    return samples


def metric_names(query: str) -> set[str]:
    """The metric names a query selects (PromQLError if it does not parse)."""
    from incident.sources.promql.ast import selectors

    return {s.name for s in selectors(parse(query)) if s.name}
