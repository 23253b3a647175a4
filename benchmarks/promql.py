"""The local PromQL engine against a real Prometheus: same data, same queries, time per query.

    python benchmarks/promql.py [--days 8] [--repeat 5]

Simulates the sample shop (about 140 series at one sample a minute), backfills a real
Prometheus with it (promtool tsdb create-blocks-from openmetrics), then runs every query as a
range query over the last 2 hours and over the last day at a 1-minute step, through the
local engine (in process) and through Prometheus's HTTP API (JSON decoded). Prints, per
query and range, the median milliseconds of each, their ratio, the points each evaluates
per second (result samples: series × steps), and whether the answers agree.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from incident.simulator import simulate, write_openmetrics  # noqa: E402
from incident.sources.promql import evaluate_range  # noqa: E402
from incident.sources.promql.storage import MemoryStorage  # noqa: E402
from incident.testing import PrometheusServer  # noqa: E402

# What the sample checks ask, and a dozen more of the shapes checks use.
QUERIES = (
    'sum by (service) (rate(http_requests_total{code!~"5.."}[5m]))'
    ' / sum by (service) (rate(http_requests_total[5m]))',
    'sum by (provider) (rate(shop_payments_total{status="success"}[5m]))'
    ' / sum by (provider) (rate(shop_payments_total[5m]))',
    "histogram_quantile(0.99, sum by (le) (rate(pg_query_duration_seconds_bucket[5m])))",
    "node_load1",
    'sum(pg_stat_activity_count) by (instance) / on (instance) pg_settings_max_connections',
    "rate(shop_orders_total[10m]) / rate(shop_sessions_total[10m])",
    "up == 0",
    "rate(http_requests_total[5m])",
    "sum by (code) (increase(http_requests_total[1h]))",
    "histogram_quantile(0.9, sum by (service, le) (rate(http_request_duration_seconds_bucket[5m])))",
    'avg by (instance) (1 - rate(node_cpu_seconds_total{mode="idle"}[5m]))',
    "max_over_time(node_load1[30m])",
    "avg_over_time(node_load5[1h]) > 1",
    "sum(rate(http_requests_total[5m] offset 1d))",
    "topk(2, rate(http_requests_total[5m]))",
    "absent(up{instance=\"web-9\"})",
    'count by (instance) (node_cpu_seconds_total{mode="idle"})',
    "deriv(node_load1[15m])",
)
RANGES = (("2h", timedelta(hours=2)), ("1d", timedelta(days=1)))
STEP = 60.0


def local(storage: MemoryStorage, query: str, start: float, end: float) -> dict[Any, np.ndarray]:
    """The local engine's answer: labels → values on the grid (NaN where absent)."""
    result = evaluate_range(query, storage, start, end, STEP)
    return {labels: values for labels, values in result.series}


def remote(url: str, query: str, start: float, end: float) -> dict[Any, np.ndarray]:
    """Prometheus's answer over HTTP, decoded the same way."""
    from incident.model import Labels

    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": STEP})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=60) as r:
        body = json.load(r)
    grid = start + STEP * np.arange(round((end - start) / STEP) + 1)
    out = {}
    for s in body["data"]["result"]:
        values = np.full(len(grid), np.nan)
        for t, v in s["values"]:
            values[round((float(t) - start) / STEP)] = float(v)
        out[Labels(s["metric"])] = values
    return out


def timed(fn: Any, repeat: int, *args: Any) -> tuple[float, Any]:
    """Median seconds of `repeat` calls of fn(*args), and the last answer."""
    times, answer = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        answer = fn(*args)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), answer


def agree(a: dict[Any, np.ndarray], b: dict[Any, np.ndarray]) -> bool:
    """Same series, same values within 1e-9 relative (NaN where the other has NaN)."""
    if {k.without("__name__") for k in a} != {k.without("__name__") for k in b}:
        return False
    by = {k.without("__name__"): v for k, v in b.items()}
    return all(np.allclose(v, by[k.without("__name__")], rtol=1e-9, atol=1e-12, equal_nan=True)
               for k, v in a.items())


def points(answer: dict[Any, np.ndarray]) -> int:
    """Result samples: the points a range query evaluated and returned."""
    return int(sum(np.count_nonzero(~np.isnan(v)) for v in answer.values()))


def main() -> None:
    """Build the data, start Prometheus, time every query on both, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    series = simulate(end, days=args.days)
    storage = MemoryStorage(series)
    samples = sum(len(s.t) for s in series)
    print(f"data: {len(series)} series, {samples:,} samples ({args.days:g} days at 1m)")
    with tempfile.TemporaryDirectory(prefix="promql-bench-") as tmp:
        history = write_openmetrics(series, Path(tmp) / "history.om")
        t0 = time.perf_counter()
        server = PrometheusServer(Path(tmp) / "prom", history)
        print(f"backfilled Prometheus in {time.perf_counter() - t0:.1f}s")
        with server:
            rows = []
            for name, span in RANGES:
                stop = end.timestamp()
                start = stop - span.total_seconds()
                for query in QUERIES:
                    remote(server.url, query, start, stop)  # warm Prometheus's caches once
                    t_local, a = timed(local, args.repeat, storage, query, start, stop)
                    t_prom, b = timed(remote, args.repeat, server.url, query, start, stop)
                    rows.append((query, name, t_local, t_prom, points(a), agree(a, b)))
    print_table(rows)


def print_table(rows: list[tuple[str, str, float, float, int, bool]]) -> None:
    """One line per query and range; then the geometric-mean ratio per range."""
    print(f"\n{'query':<60} {'range':>5} {'local ms':>9} {'prom ms':>8} {'ratio':>6} "
          f"{'local pts/s':>12} {'prom pts/s':>11} {'agree':>5}")
    for query, name, t_local, t_prom, n, same in rows:
        shown = query if len(query) <= 60 else query[:57] + "..."
        print(f"{shown:<60} {name:>5} {t_local * 1e3:>9.2f} {t_prom * 1e3:>8.2f} "
              f"{t_local / t_prom:>6.2f} {n / t_local:>12,.0f} {n / t_prom:>11,.0f} "
              f"{'yes' if same else 'NO':>5}")
    print()
    for name, _ in RANGES:
        mine = [r for r in rows if r[1] == name]
        ratio = math.exp(statistics.mean(math.log(r[2] / r[3]) for r in mine))
        total = sum(r[4] for r in mine)
        print(f"{name}: local/prometheus time ratio (geometric mean) {ratio:.2f}; points/s "
              f"local {total / sum(r[2] for r in mine):,.0f}, "
              f"prometheus {total / sum(r[3] for r in mine):,.0f}")


if __name__ == "__main__":
    main()
