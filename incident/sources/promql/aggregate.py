"""Aggregation operators (sum, avg, topk, quantile, count_values, …) over whole step grids."""

from __future__ import annotations

import numpy as np

from incident.model import Labels
from incident.sources.promql.errors import PromQLError
from incident.sources.promql.format import format_value_label
from incident.sources.promql.values import Series, Vector
from incident.sources.promql.windows import quantile_rows, running_mean


def group_labels(labels: Labels, grouping: tuple[str, ...], without: bool) -> Labels:
    """The labels an output group carries: `by` keeps the listed ones, `without` drops them."""
    if without:
        return labels.without("__name__", *grouping)
    return Labels({k: v for k, v in labels.items() if k in grouping})


def aggregate(op: str, vec: Vector, grouping: tuple[str, ...], without: bool,
              param: np.ndarray | str | None, steps: int) -> Vector:
    """One aggregation for every step at once; a Python loop per output group only."""
    if op == "count_values":
        assert isinstance(param, str)
        return _count_values(vec, grouping, without, param, steps)
    groups: dict[Labels, list[Series]] = {}
    for s in vec:
        groups.setdefault(group_labels(s.labels, grouping, without), []).append(s)
    out: Vector = []
    for labels, members in groups.items():
        values = np.array([m.values for m in members])
        present = np.array([m.present for m in members])
        count = present.sum(axis=0)
        any_present = count > 0
        if op in ("topk", "bottomk"):
            assert isinstance(param, np.ndarray)
            out.extend(_top(members, values, present, param, op == "topk"))
            continue
        with np.errstate(all="ignore"):
            if op == "sum":
                result = np.where(present, values, 0.0).sum(axis=0)
            elif op == "avg":
                result = np.where(present, values, 0.0).sum(axis=0) / count
                tricky = (np.isinf(values) & present).any(axis=0) | np.isinf(result)
                if tricky.any():  # infinities: follow Prometheus's running mean exactly
                    result[tricky] = running_mean(values.T[tricky], present.T[tricky])
            elif op == "count":
                result = count.astype(float)
            elif op == "group":
                result = np.ones(steps)
            elif op == "min":
                result = np.fmin.reduce(np.where(present, values, np.nan), axis=0)
            elif op == "max":
                result = np.fmax.reduce(np.where(present, values, np.nan), axis=0)
            elif op in ("stddev", "stdvar"):
                mean = np.where(present, values, 0.0).sum(axis=0) / count
                dev = np.where(present, values - mean, 0.0)
                result = (dev * dev).sum(axis=0) / count
                if op == "stddev":
                    result = np.sqrt(result)
            elif op == "quantile":
                assert isinstance(param, np.ndarray)
                result = quantile_rows(values.T, ~present.T, param)
            else:
                raise PromQLError(f"unsupported: aggregation {op}")
        out.append(Series(labels, result, any_present))
    return out


def _top(members: list[Series], values: np.ndarray, present: np.ndarray, k: np.ndarray,
         largest: bool) -> Vector:
    """topk/bottomk: each member keeps its own labels, present where it ranks within k."""
    bad = ~((k <= 2.0**63) & (k >= -(2.0**63)))  # Go's convertibleToInt64; NaN fails it
    if bad.any():
        raise PromQLError(f"Scalar value {format_value_label(float(k[bad][0]))} overflows int64")
    kk = np.trunc(k).astype(np.int64)
    # Rank per step: absent last, NaN after every number, then by value (stable on ties).
    nan = np.isnan(values)
    key = np.where(nan, 0.0, -values if largest else values)
    tier = np.where(present, np.where(nan, 1, 0), 2)
    order = np.lexsort((key, tier), axis=0)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(len(members))[:, None].repeat(order.shape[1], 1),
                      axis=0)
    chosen = present & (rank < kk)
    return [Series(m.labels, m.values, chosen[i]) for i, m in enumerate(members)
            if chosen[i].any()]


def _count_values(vec: Vector, grouping: tuple[str, ...], without: bool, label: str,
                  steps: int) -> Vector:
    if not label or not (label[0].isalpha() or label[0] == "_") or not all(
            c.isalnum() or c == "_" for c in label) or not label.isascii():
        raise PromQLError(f'invalid label name "{label}"')
    counts: dict[Labels, np.ndarray] = {}
    for s in vec:
        base = group_labels(s.labels, grouping, without).as_dict()
        vals = s.values[s.present]
        cols = np.nonzero(s.present)[0]
        # NaN payloads all print as "NaN"; group by the printed value, as Prometheus does.
        for text in {format_value_label(v) for v in np.unique(vals)}:
            hit = np.isnan(vals) if text == "NaN" else vals == float(text)
            key = Labels({**base, label: text})
            acc = counts.setdefault(key, np.zeros(steps))
            np.add.at(acc, cols[hit], 1.0)
    return [Series(k, c, c > 0) for k, c in counts.items()]
