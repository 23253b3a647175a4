"""Query results and how Prometheus's HTTP API prints them (its `data` JSON object)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from incident.model import Labels


def format_value_label(v: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64): shortest round-trip digits, no exponent."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return np.format_float_positional(v, unique=True, trim="-")


def format_value(v: float) -> str:
    """A vector or matrix point as Prometheus 2.42's API prints it.

    Like format_value_label, except 'e' notation below 1e-6 and from 1e21 (jsoniter's rule);
    a scalar result is printed by format_value_label instead, as Prometheus does.
    """
    if math.isfinite(v) and v != 0 and (abs(v) < 1e-6 or abs(v) >= 1e21):
        return np.format_float_scientific(v, unique=True, trim="-", exp_digits=2)
    return format_value_label(v)


def format_time(ms: int) -> float | int:
    """A millisecond timestamp as the API's JSON number of seconds."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _metric(labels: Labels) -> dict[str, str]:
    return labels.as_dict()


@dataclass(frozen=True, slots=True)
class RangeResult:
    """A range query's answer: every series' values on the step grid (NaN where absent)."""

    result_type: str
    timestamps: np.ndarray  # Unix seconds of the steps
    series: list[tuple[Labels, np.ndarray]]
    present: list[np.ndarray] = field(default_factory=list)  # per series, where it has points

    def to_api_json(self) -> dict[str, Any]:
        """The `data` object of Prometheus's /api/v1/query_range answer."""
        ms = np.round(self.timestamps * 1000).astype(np.int64)
        result = []
        for i, (labels, values) in enumerate(self.series):
            mask = self.present[i] if self.present else ~np.isnan(values)
            result.append({
                "metric": _metric(labels),
                "values": [[format_time(int(t)), format_value(float(v))]
                           for t, v in zip(ms[mask], values[mask], strict=True)],
            })
        return {"resultType": self.result_type, "result": result}


@dataclass(frozen=True, slots=True)
class Sample:
    """One point of an instant vector."""

    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class RawRange:
    """One series of a range-vector (matrix) instant result: its raw samples in the window."""

    labels: Labels
    timestamps: np.ndarray  # Unix seconds
    values: np.ndarray


@dataclass(frozen=True, slots=True)
class InstantResult:
    """An instant query's answer; `data` depends on `result_type`.

    vector: list[Sample]; scalar: float; string: str; matrix: list[RawRange].
    """

    result_type: str
    time: float
    data: Any

    def to_api_json(self) -> dict[str, Any]:
        """The `data` object of Prometheus's /api/v1/query answer."""
        t = format_time(round(self.time * 1000))
        if self.result_type == "scalar":
            return {"resultType": "scalar", "result": [t, format_value_label(self.data)]}
        if self.result_type == "string":
            return {"resultType": "string", "result": [t, self.data]}
        if self.result_type == "vector":
            return {"resultType": "vector", "result": [
                {"metric": _metric(s.labels), "value": [t, format_value(s.value)]}
                for s in self.data]}
        return {"resultType": "matrix", "result": [
            {"metric": _metric(r.labels),
             "values": [[format_time(round(ts * 1000)), format_value(float(v))]
                        for ts, v in zip(r.timestamps, r.values, strict=True)]}
            for r in self.data]}
