"""The evaluator is vectorised: long range queries stay fast (generous bounds, to catch loops)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from incident.model import Labels
from incident.sources.promql import evaluate_range
from incident.sources.promql.storage import MemoryStorage, RawSeries

T0 = 1.7e9
DAYS = 8


@pytest.fixture(scope="module")
def big() -> MemoryStorage:
    """100 counters over 8 days at a 15 s scrape interval (4.6 M samples)."""
    rng = np.random.default_rng(7)
    t = T0 + np.arange(0, DAYS * 86400, 15.0)
    return MemoryStorage([
        RawSeries(Labels({"__name__": "http_requests_total", "service": f"s{i % 10}",
                          "instance": f"i{i}"}),
                  t, np.cumsum(rng.poisson(5, len(t))).astype(float))
        for i in range(100)])


@pytest.mark.parametrize(("expr", "hours", "limit"), [
    ("sum by (service) (rate(http_requests_total[5m]))", 2, 0.1),
    ("sum by (service) (rate(http_requests_total[5m]))", DAYS * 24 - 1, 1.0),
    ("max_over_time(http_requests_total[1h])", DAYS * 24 - 1, 1.5),
    ("avg_over_time(http_requests_total[10m])", DAYS * 24 - 1, 1.5),
    ("histogram_quantile(0.9, sum by (le) (label_replace(rate(http_requests_total[5m]), "
     '"le", "$1", "service", "s(.*)")))', DAYS * 24 - 1, 1.5),
])
def test_range_query_speed(big: MemoryStorage, expr: str, hours: int, limit: float) -> None:
    """A 1-minute-step range query over 100 series finishes within its time budget."""
    start = T0 + 3600
    began = time.perf_counter()
    result = evaluate_range(expr, big, start, start + hours * 3600, 60)
    elapsed = time.perf_counter() - began
    assert result.series
    assert elapsed < limit, f"{elapsed:.3f}s"
