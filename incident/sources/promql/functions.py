"""PromQL function calls: range-vector functions, element-wise math, labels, histograms, time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from incident.model import Labels
from incident.sources.promql import windows as w
from incident.sources.promql.ast import Call, Expr, MatrixSelector, Paren, VectorSelector
from incident.sources.promql.errors import PromQLError
from incident.sources.promql.regex import compile_anchored
from incident.sources.promql.storage import MatchOp
from incident.sources.promql.values import (
    RangeVector,
    Series,
    Value,
    Vector,
    Windowed,
    drop_name,
    merge,
)

if TYPE_CHECKING:
    from incident.sources.promql.evaluator import Evaluator

RangeFn = Callable[[Windowed, RangeVector, np.ndarray, list[Value]], w.Result]

_RANGE: dict[str, RangeFn] = {
    "rate": lambda s, rv, g, a: w.extrapolated_rate(s, g, rv.range_ms, rv.offset_ms, True, True),
    "increase": lambda s, rv, g, a: w.extrapolated_rate(s, g, rv.range_ms, rv.offset_ms, True,
                                                        False),
    "delta": lambda s, rv, g, a: w.extrapolated_rate(s, g, rv.range_ms, rv.offset_ms, False,
                                                     False),
    "irate": lambda s, rv, g, a: w.instant_rate(s, True),
    "idelta": lambda s, rv, g, a: w.instant_rate(s, False),
    "resets": lambda s, rv, g, a: w.resets(s),
    "changes": lambda s, rv, g, a: w.changes(s),
    "avg_over_time": lambda s, rv, g, a: w.avg_over_time(s),
    "min_over_time": lambda s, rv, g, a: w.min_over_time(s),
    "max_over_time": lambda s, rv, g, a: w.max_over_time(s),
    "sum_over_time": lambda s, rv, g, a: w.sum_over_time(s),
    "count_over_time": lambda s, rv, g, a: w.count_over_time(s),
    "stddev_over_time": lambda s, rv, g, a: w.stddev_over_time(s),
    "stdvar_over_time": lambda s, rv, g, a: w.stdvar_over_time(s),
    "last_over_time": lambda s, rv, g, a: w.last_over_time(s),
    "present_over_time": lambda s, rv, g, a: w.present_over_time(s),
    "quantile_over_time": lambda s, rv, g, a: w.quantile_over_time(s, _scalar(a[0])),
    "deriv": lambda s, rv, g, a: _deriv(s),
    "predict_linear": lambda s, rv, g, a: _predict_linear(s, g, _scalar(a[1])),
    "holt_winters": lambda s, rv, g, a: w.holt_winters(s, _scalar(a[1]), _scalar(a[2])),
}


def _check_factors(sf: np.ndarray, tf: np.ndarray) -> None:
    if ((sf <= 0) | (sf >= 1)).any():
        raise PromQLError("invalid smoothing factor. Expected: 0 < sf < 1, got: "
                          f"{float(sf[(sf <= 0) | (sf >= 1)][0]):f}")
    if ((tf <= 0) | (tf >= 1)).any():
        raise PromQLError("invalid trend factor. Expected: 0 < tf < 1, got: "
                          f"{float(tf[(tf <= 0) | (tf >= 1)][0]):f}")


def _deriv(s: Windowed) -> w.Result:
    slope, _, ok = w.linear_regression(s, None)
    return slope, ok


def _predict_linear(s: Windowed, grid: np.ndarray, duration: np.ndarray) -> w.Result:
    # Prometheus fits relative to the evaluation time, even when the selector has an offset.
    slope, intercept, ok = w.linear_regression(s, grid)
    return slope * duration + intercept, ok


def _scalar(v: Value) -> np.ndarray:
    assert isinstance(v, np.ndarray)
    return v


def _vector(v: Value) -> Vector:
    assert isinstance(v, list)
    return v


def _string(v: Value) -> str:
    assert isinstance(v, str)
    return v


def _sgn(x: np.ndarray) -> np.ndarray:
    return np.where(x < 0, -1.0, np.where(x > 0, 1.0, x))


_ELEMENTWISE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs, "ceil": np.ceil, "floor": np.floor, "exp": np.exp, "ln": np.log,
    "log2": np.log2, "log10": np.log10, "sqrt": np.sqrt, "sgn": _sgn,
    "acos": np.arccos, "acosh": np.arccosh, "asin": np.arcsin, "asinh": np.arcsinh,
    "atan": np.arctan, "atanh": np.arctanh, "cos": np.cos, "cosh": np.cosh, "sin": np.sin,
    "sinh": np.sinh, "tan": np.tan, "tanh": np.tanh, "deg": np.degrees, "rad": np.radians,
}


def call(ev: Evaluator, e: Call) -> Value:
    """Evaluate one function call over the evaluator's whole step grid."""
    name = e.func
    steps = len(ev.grid)
    if name in _RANGE:
        args = [ev.eval(a) for a in e.args]
        if name == "holt_winters":
            _check_factors(_scalar(args[1]), _scalar(args[2]))
        rv = next(a for a in args if isinstance(a, RangeVector))
        out: Vector = []
        for s in rv.series:
            values, ok = _RANGE[name](s, rv, ev.grid, args)
            # Prometheus 2.x keeps the metric name for last_over_time only.
            labels = s.labels if name == "last_over_time" else drop_name(s.labels)
            out.append(Series(labels, values, ok))
        return merge(out)
    if name == "absent_over_time":
        ranged = ev.eval(e.args[0])
        assert isinstance(ranged, RangeVector)
        return _absent([Series(r.labels, np.ones(steps), r.hi > r.lo) for r in ranged.series],
                       e.args[0], steps)
    if name == "absent":
        return _absent(_vector(ev.eval(e.args[0])), e.args[0], steps)
    if name in _ELEMENTWISE:
        fn = _ELEMENTWISE[name]
        with np.errstate(all="ignore"):
            return merge([Series(drop_name(s.labels), fn(s.values), s.present)
                          for s in _vector(ev.eval(e.args[0]))])
    if name == "time":
        return ev.grid / 1000.0
    if name == "pi":
        return np.full(steps, np.pi)
    if name == "vector":
        return [Series(Labels(), _scalar(ev.eval(e.args[0])), np.ones(steps, dtype=bool))]
    if name == "scalar":
        vec = _vector(ev.eval(e.args[0]))
        count = np.zeros(steps, dtype=np.int64)
        value = np.full(steps, np.nan)
        for member in vec:
            count += member.present
            value = np.where(member.present, member.values, value)
        return np.where(count == 1, value, np.nan)
    if name == "timestamp":
        return _timestamp(ev, e.args[0])
    if name in ("sort", "sort_desc"):
        return ev.eval(e.args[0])  # order matters only for instant results, handled there
    if name == "round":
        vec = _vector(ev.eval(e.args[0]))
        to = _scalar(ev.eval(e.args[1])) if len(e.args) > 1 else np.ones(steps)
        with np.errstate(all="ignore"):
            inverse = 1.0 / to
            return merge([Series(drop_name(s.labels),
                                 np.floor(s.values * inverse + 0.5) / inverse, s.present)
                          for s in vec])
    if name in ("clamp", "clamp_min", "clamp_max"):
        return _clamp(ev, e)
    if name in ("label_replace", "label_join"):
        return _labels(ev, e)
    if name == "histogram_quantile":
        from incident.sources.promql.histogram import histogram_quantile

        return histogram_quantile(_scalar(ev.eval(e.args[0])), _vector(ev.eval(e.args[1])))
    if name in _DATE:
        if e.args:
            vec = _vector(ev.eval(e.args[0]))
        else:
            vec = [Series(Labels(), ev.grid / 1000.0, np.ones(steps, dtype=bool))]
        return merge([Series(drop_name(s.labels), _date(name, s.values), s.present)
                      for s in vec])
    raise PromQLError(f'unsupported: function "{name}"')


def _clamp(ev: Evaluator, e: Call) -> Vector:
    vec = _vector(ev.eval(e.args[0]))
    steps = len(ev.grid)
    lo = _scalar(ev.eval(e.args[1])) if e.func != "clamp_max" else np.full(steps, -np.inf)
    hi = (_scalar(ev.eval(e.args[-1])) if e.func != "clamp_min" else np.full(steps, np.inf))
    ok = ~(hi < lo)  # clamp with max < min returns nothing
    out = []
    for s in vec:
        v = s.values
        if e.func != "clamp_min":
            v = np.minimum(v, hi)
        if e.func != "clamp_max":
            v = np.maximum(v, lo)
        out.append(Series(drop_name(s.labels), v, s.present & ok))
    return merge(out)


def _absent(vec: Vector, arg: Expr, steps: int) -> Vector:
    any_present = np.zeros(steps, dtype=bool)
    for s in vec:
        any_present |= s.present
    return [Series(_absent_labels(arg), np.ones(steps), ~any_present)]


def _absent_labels(arg: Expr) -> Labels:
    """The labels absent() reports: the selector's equality matchers, unless a name repeats."""
    if isinstance(arg, MatrixSelector):
        arg = arg.vector
    if not isinstance(arg, VectorSelector):
        return Labels()
    found: dict[str, str] = {}
    dropped: set[str] = set()
    for m in arg.matchers:
        if m.name == "__name__":
            continue
        if m.op is MatchOp.EQ and m.name not in found:
            found[m.name] = m.value
        else:
            dropped.add(m.name)
    return Labels({k: v for k, v in found.items() if k not in dropped and v})


def _timestamp(ev: Evaluator, arg: Expr) -> Vector:
    inner = arg
    while isinstance(inner, Paren):
        inner = inner.expr
    if isinstance(inner, VectorSelector):
        # The time of the sample found, not of the step: Prometheus special-cases this.
        vec, stamps = ev.select_instant(inner, with_timestamps=True)
        return merge([Series(drop_name(s.labels), t / 1000.0, s.present)
                      for s, t in zip(vec, stamps, strict=True)])
    vec = _vector(ev.eval(arg))
    return merge([Series(drop_name(s.labels), ev.grid / 1000.0, s.present) for s in vec])


_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _labels(ev: Evaluator, e: Call) -> Vector:
    vec = _vector(ev.eval(e.args[0]))
    strings = [_string(ev.eval(a)) for a in e.args[1:]]
    dst = strings[0]
    if not _LABEL_NAME.match(dst):
        raise PromQLError(f"invalid destination label name in {e.func}(): {dst}")
    out = []
    if e.func == "label_join":
        sep, sources = strings[1], strings[2:]
        for s in vec:
            d = s.labels.as_dict()
            value = sep.join(s.labels.get(n) for n in sources)
            if value:
                d[dst] = value
            else:
                d.pop(dst, None)
            out.append(Series(Labels(d), s.values, s.present))
        return merge(out)
    replacement, src, regex = strings[1], strings[2], strings[3]
    try:
        pattern = compile_anchored(regex)
    except PromQLError as exc:
        raise PromQLError(f"invalid regular expression in label_replace(): {exc}") from None
    for s in vec:
        m = pattern.match(s.labels.get(src))
        labels = s.labels
        if m is not None:
            d = labels.as_dict()
            d.pop(dst, None)
            value = _expand(replacement, m)
            if value:
                d[dst] = value
            labels = Labels(d)
        out.append(Series(labels, s.values, s.present))
    return merge(out)


_GROUP_REF = re.compile(r"\$(?:\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]+)|(\$))")


def _expand(template: str, m: re.Match[str]) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, $$; an unknown group expands to nothing."""

    def group(ref: re.Match[str]) -> str:
        if ref.group(3):
            return "$"
        name = ref.group(1) if ref.group(1) is not None else ref.group(2)
        if not name:
            return ref.group(0) if ref.group(1) is None else ""
        try:
            value = m.group(int(name)) if name.isdigit() else m.group(name)
        except IndexError:
            return ""
        return value or ""

    return _GROUP_REF.sub(group, template)


_DATE = frozenset({"minute", "hour", "day_of_week", "day_of_month", "day_of_year",
                   "days_in_month", "month", "year"})


def _date(name: str, seconds: np.ndarray) -> np.ndarray:
    """Calendar fields (UTC) of Unix-second values, vectorised with datetime64."""
    ok = np.isfinite(seconds)
    s = np.where(ok, np.floor(np.where(ok, seconds, 0)), 0).astype(np.int64)
    t = s.astype("datetime64[s]")
    day = t.astype("datetime64[D]")
    month = t.astype("datetime64[M]")
    year = t.astype("datetime64[Y]")
    if name == "minute":
        r = (s // 60) % 60
    elif name == "hour":
        r = (s // 3600) % 24
    elif name == "day_of_week":
        r = (day.astype(np.int64) + 4) % 7  # 1970-01-01 was a Thursday
    elif name == "day_of_month":
        r = (day - month.astype("datetime64[D]")).astype(np.int64) + 1
    elif name == "day_of_year":
        r = (day - year.astype("datetime64[D]")).astype(np.int64) + 1
    elif name == "days_in_month":
        r = ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)
    elif name == "month":
        r = (month - year.astype("datetime64[M]")).astype(np.int64) + 1
    else:
        r = year.astype(np.int64) + 1970
    return np.where(ok, r.astype(float), np.nan)
