"""Binary operators over whole step grids: scalar/vector arithmetic, comparison, set operators
and vector matching (on/ignoring, group_left/group_right), with Prometheus's label rules."""

from __future__ import annotations

import numpy as np

from incident.model import Labels
from incident.sources.promql.ast import COMPARISON_OPS, VectorMatching
from incident.sources.promql.errors import PromQLError
from incident.sources.promql.values import Series, Vector, drop_name, merge

# Prometheus 2.42 keeps __name__ through atan2 (it is missing from shouldDropMetricName).
_DROPS_NAME = frozenset({"+", "-", "*", "/", "%", "^"})


def apply(op: str, lhs: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise (value, keep); comparisons keep the left value where true."""
    with np.errstate(all="ignore"):
        if op == "+":
            return lhs + rhs, _all(lhs, rhs)
        if op == "-":
            return lhs - rhs, _all(lhs, rhs)
        if op == "*":
            return lhs * rhs, _all(lhs, rhs)
        if op == "/":
            return lhs / rhs, _all(lhs, rhs)
        if op == "%":
            return np.fmod(lhs, rhs), _all(lhs, rhs)
        if op == "^":
            return np.power(lhs, rhs), _all(lhs, rhs)
        if op == "atan2":
            return np.arctan2(lhs, rhs), _all(lhs, rhs)
        keep = {"==": np.equal, "!=": np.not_equal, ">": np.greater, "<": np.less,
                ">=": np.greater_equal, "<=": np.less_equal}[op](lhs, rhs)
        return np.broadcast_to(lhs, keep.shape).astype(float), keep


def _all(lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    return np.ones(np.broadcast(lhs, rhs).shape, dtype=bool)


def scalar_scalar(op: str, lhs: np.ndarray, rhs: np.ndarray, return_bool: bool) -> np.ndarray:
    """Two scalars; comparisons must carry bool (the parser checks)."""
    value, keep = apply(op, lhs, rhs)
    return keep.astype(float) if op in COMPARISON_OPS else value


def vector_scalar(op: str, vec: Vector, scalar: np.ndarray, scalar_left: bool,
                  return_bool: bool) -> Vector:
    """A vector and a scalar: each series against the scalar; comparisons filter or give 0/1."""
    out: Vector = []
    for s in vec:
        lhs, rhs = (scalar, s.values) if scalar_left else (s.values, scalar)
        value, keep = apply(op, lhs, rhs)
        if op in COMPARISON_OPS:
            value = s.values  # the vector's value survives a filter, whichever side it is on
        if return_bool:
            value, keep = keep.astype(float), np.ones_like(keep)
        labels = drop_name(s.labels) if op in _DROPS_NAME or return_bool else s.labels
        out.append(Series(labels, value, s.present & keep))
    return merge(out) if op in _DROPS_NAME or return_bool else _nonempty(out)


def _nonempty(vec: Vector) -> Vector:
    return [s for s in vec if s.present.any()]


def _signature(labels: Labels, m: VectorMatching) -> tuple[tuple[str, str], ...]:
    if m.on:
        return tuple((n, labels.get(n)) for n in sorted(m.labels))
    skip = {*m.labels, "__name__"}
    return tuple((k, v) for k, v in labels.items() if k not in skip)


def set_op(op: str, lhs: Vector, rhs: Vector, m: VectorMatching) -> Vector:
    """and / or / unless: per step, by whether a series with the same signature is present."""
    steps = len(lhs[0].present) if lhs else len(rhs[0].present) if rhs else 0
    rhs_present: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
    for s in rhs:
        sig = _signature(s.labels, m)
        rhs_present[sig] = rhs_present.get(sig, np.zeros(steps, dtype=bool)) | s.present
    none = np.zeros(steps, dtype=bool)
    if op == "and":
        return _nonempty([Series(s.labels, s.values, s.present
                                 & rhs_present.get(_signature(s.labels, m), none))
                          for s in lhs])
    if op == "unless":
        return _nonempty([Series(s.labels, s.values, s.present
                                 & ~rhs_present.get(_signature(s.labels, m), none))
                          for s in lhs])
    lhs_present: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
    for s in lhs:
        sig = _signature(s.labels, m)
        lhs_present[sig] = lhs_present.get(sig, np.zeros(steps, dtype=bool)) | s.present
    out = list(lhs)
    for s in rhs:
        out.append(Series(s.labels, s.values,
                          s.present & ~lhs_present.get(_signature(s.labels, m), none)))
    return merge(out)


def vector_vector(op: str, lhs: Vector, rhs: Vector, m: VectorMatching,
                  return_bool: bool) -> Vector:
    """Arithmetic or comparison between two vectors with one-to-one or group matching."""
    many, one = (rhs, lhs) if m.card == "one-to-many" else (lhs, rhs)
    if not many or not one:
        return []
    steps = len(many[0].present)
    many_any = np.zeros(steps, dtype=bool)
    for s in many:
        many_any |= s.present
    by_sig: dict[tuple[tuple[str, str], ...], list[Series]] = {}
    for s in one:
        by_sig.setdefault(_signature(s.labels, m), []).append(s)
    for sig, members in by_sig.items():
        if len(members) > 1:
            count = np.sum([x.present for x in members], axis=0)
            if ((count > 1) & many_any).any():
                side = "right" if m.card != "one-to-many" else "left"
                raise PromQLError(
                    f"found duplicate series for the match group {_show(sig)} on the {side} "
                    "hand-side of the operation; many-to-many matching not allowed: matching "
                    "labels must be unique on one side")
    out: Vector = []
    matched: dict[tuple[tuple[str, str], ...], np.ndarray] = {}
    for s in many:
        sig = _signature(s.labels, m)
        for partner in by_sig.get(sig, ()):
            both = s.present & partner.present
            if not both.any():
                continue
            lv, rv = s.values, partner.values
            if m.card == "one-to-many":
                lv, rv = rv, lv
            value, keep = apply(op, lv, rv)
            if return_bool:
                value, keep = keep.astype(float), np.ones_like(keep)
            mask = both & keep
            if m.card == "one-to-one":
                seen = matched.get(sig)
                if seen is not None and (seen & mask).any():
                    raise PromQLError("multiple matches for labels: many-to-one matching must "
                                      "be explicit (group_left/group_right)")
                matched[sig] = mask if seen is None else seen | mask
            labels = _result_labels(s.labels, partner.labels, op, m, return_bool)
            out.append(Series(labels, value, mask))
    try:
        return merge(out)
    except PromQLError:
        if m.card == "one-to-one":
            raise
        raise PromQLError("multiple matches for labels: grouping labels must ensure unique "
                          "label set") from None


def _result_labels(many: Labels, one: Labels, op: str, m: VectorMatching,
                   return_bool: bool) -> Labels:
    d = many.as_dict()
    if op in _DROPS_NAME or return_bool:
        d.pop("__name__", None)
    if m.card == "one-to-one":
        if m.on:
            d = {k: v for k, v in d.items() if k in m.labels}
        else:
            for name in m.labels:
                d.pop(name, None)
    for name in m.include:  # group_x(extra) labels come from the "one" side
        value = one.get(name)
        if value:
            d[name] = value
        else:
            d.pop(name, None)
    return Labels(d)


def _show(sig: tuple[tuple[str, str], ...]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sig) + "}"
