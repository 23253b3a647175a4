"""What each PromQL function takes and returns, so the parser can type-check calls."""

from __future__ import annotations

from dataclasses import dataclass

from incident.sources.promql.ast import ValueType

S, V, M, STR = ValueType.SCALAR, ValueType.VECTOR, ValueType.MATRIX, ValueType.STRING


@dataclass(frozen=True, slots=True)
class Signature:
    args: tuple[ValueType, ...]
    returns: ValueType
    optional: int = 0  # how many trailing args may be left out; -1: the last repeats freely


_ELEMENTWISE = (
    "abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "acos", "acosh", "asin",
    "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad",
)
_OVER_TIME = (
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
    "absent_over_time", "rate", "irate", "increase", "delta", "idelta", "deriv", "resets",
    "changes",
)
_DATE = (
    "minute", "hour", "day_of_week", "day_of_month", "day_of_year", "days_in_month", "month",
    "year",
)

FUNCTIONS: dict[str, Signature] = {
    **{name: Signature((V,), V) for name in _ELEMENTWISE},
    **{name: Signature((M,), V) for name in _OVER_TIME},
    **{name: Signature((V,), V, optional=1) for name in _DATE},
    "quantile_over_time": Signature((S, M), V),
    "predict_linear": Signature((M, S), V),
    "round": Signature((V, S), V, optional=1),
    "clamp": Signature((V, S, S), V),
    "clamp_min": Signature((V, S), V),
    "clamp_max": Signature((V, S), V),
    "scalar": Signature((V,), S),
    "vector": Signature((S,), V),
    "time": Signature((), S),
    "pi": Signature((), S),
    "timestamp": Signature((V,), V),
    "absent": Signature((V,), V),
    "histogram_quantile": Signature((S, V), V),
    "label_replace": Signature((V, STR, STR, STR, STR), V),
    "label_join": Signature((V, STR, STR, STR), V, optional=-1),  # zero or more sources
    "holt_winters": Signature((M, S, S), V),
    "sort": Signature((V,), V),
    "sort_desc": Signature((V,), V),
}

# Real Prometheus functions this engine refuses rather than answers wrongly.
UNSUPPORTED_FUNCTIONS = frozenset({
    "histogram_count", "histogram_sum", "histogram_fraction",
})

AGGREGATIONS = frozenset({
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
    "count_values", "quantile",
})
AGGREGATION_PARAMS = {"topk": S, "bottomk": S, "quantile": S, "count_values": STR}
