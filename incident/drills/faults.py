"""Faults laid over series: pure functions of the real values, the fault and its time window.

Two places a fault can go. Over a check's evaluated series (a frame column), where `set 0.82`
means the success rate reads 0.82. Or over a raw metric of a local source, before PromQL
sees it. There a counter (`*_total`, `*_count`, `*_sum`, `*_bucket`) is faulted in its
increments, so `multiply by 8` means eight times the rate — the counter stays monotonic
and no false reset appears — and `drop` ends the series with a staleness marker, as
Prometheus writes when a target stops answering.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from incident.model import Fault, Labels

COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")


def matches(labels: Labels, wanted: Mapping[str, str]) -> bool:
    """True when every wanted label has the wanted value."""
    return all(labels.get(k) == v for k, v in wanted.items())


def apply(values: np.ndarray, t: np.ndarray, fault: Fault, start: float, end: float,
          salt: int = 0) -> np.ndarray:
    """The values with `fault` laid over the points with start ≤ t < end (Unix seconds).

    NaN marks a point with no data. `salt` varies the noise between series of one fault.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    inside = (t >= start) & (t < end)
    if not inside.any():
        return out
    v = out[inside]
    value = float(fault.value or 0.0)
    by = float(fault.by if fault.by is not None else 1.0)
    if fault.type == "set":
        v = np.full_like(v, value)
    elif fault.type == "add":
        v = v + value
    elif fault.type == "multiply":
        v = v * by
    elif fault.type == "ramp":
        progress = (t[inside] - start) / max(end - start, 1e-9)
        target = np.full_like(v, fault.to) if fault.to is not None else v * by
        v = v + (target - v) * progress
    elif fault.type == "drop":
        v = np.full_like(v, np.nan)
    elif fault.type == "noise":
        rng = np.random.default_rng([fault.seed, salt])
        v = v + rng.normal(0.0, float(fault.stddev or 0.0), len(v))
    elif fault.type == "flatline":
        before = out[(t < start) & ~np.isnan(out)]
        present = v[~np.isnan(v)]
        held = before[-1] if len(before) else present[0] if len(present) else np.nan
        v = np.full_like(v, held)
    else:  # the config only lets FAULT_TYPES through
        raise ValueError(f"unknown fault type {fault.type!r}")
    out[inside] = v
    return out


def is_counter(labels: Labels) -> bool:
    """Counters by Prometheus's naming convention."""
    return labels.get("__name__").endswith(COUNTER_SUFFIXES)


def apply_raw(labels: Labels, t: np.ndarray, v: np.ndarray, fault: Fault, start: float,
              end: float, salt: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A raw series' samples with `fault` laid over them; (timestamps, values), maybe fewer."""
    from incident.sources.promql.storage import STALE_NAN

    inside = (t >= start) & (t < end)
    if not inside.any():
        return t, v
    if fault.type == "drop":
        # The first missed scrape marks the series stale; later points simply are not there.
        first = int(np.argmax(inside))
        keep = ~inside
        keep[first] = True
        values = np.array(v, dtype=np.float64, copy=True)
        values[first] = STALE_NAN
        return t[keep], values[keep]
    if not is_counter(labels):
        return t, apply(v, t, fault, start, end, salt)
    # Only real samples carry a count: stale markers and NaNs stay where they are.
    real = ~np.isnan(v)
    out = np.array(v, dtype=np.float64, copy=True)
    out[real] = _fault_counter(t[real], v[real], fault, start, end, salt)
    return t, out


def _fault_counter(t: np.ndarray, v: np.ndarray, fault: Fault, start: float, end: float,
                   salt: int) -> np.ndarray:
    """A counter's samples with the fault laid over its per-second rate; monotonic after it."""
    if not len(t):
        return v
    # Each increase belongs to the interval it covers, (previous sample, this one]: it is
    # faulted when that interval starts inside the window. A drop in value is a reset.
    before = np.concatenate([t[:1], t[:-1]])
    dt = t - before
    increase = np.diff(v, prepend=v[0])
    increase = np.where(increase < 0, v, increase)
    rate = np.divide(increase, dt, out=np.zeros_like(increase), where=dt > 0)
    faulted = np.clip(apply(rate, before, fault, start, end, salt), 0, None)
    hit = (before >= start) & (before < end) & (dt > 0)
    if not hit.any():
        return v
    new_increase = np.where(hit, faulted * dt, increase)
    first = int(np.argmax(hit))
    out = np.array(v, dtype=np.float64, copy=True)
    out[first:] = v[first - 1] + np.cumsum(new_increase[first:])
    return out
