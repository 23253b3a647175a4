"""The shop simulator: deterministic, realistic, faults where they belong, promtool-compatible.

The sample checks' queries are recomputed here with numpy on the 1-minute grid, independent
of the PromQL engine, so the thresholds in checks/ are tested against the data they watch.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from incident.simulator import (
    DEFAULT_FAULTS,
    Fault,
    simulate,
    write_csv,
    write_openmetrics,
    write_project_data,
)
from incident.sources.files import read_csv, read_openmetrics
from incident.sources.promql.storage import RawSeries
from incident.testing import missing_binary

END = datetime(2026, 11, 24, 13, 0, 30, tzinfo=UTC)  # 21:00 in Shanghai: evening peak
TROUGH_END = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 04:00 in Shanghai: the quietest hour


@cache
def shop(end: datetime = END, faults: tuple[Fault, ...] = DEFAULT_FAULTS) -> list[RawSeries]:
    """Eight simulated days, computed once per argument set."""
    return simulate(end, faults=faults)


def pick(series: list[RawSeries], name: str, **match: str) -> list[RawSeries]:
    """The series called `name` whose labels equal `match`."""
    return [s for s in series if s.labels.get("__name__") == name
            and all(s.labels.get(k) == v for k, v in match.items())]


def increase(v: np.ndarray, minutes: int) -> np.ndarray:
    """Counter increase over the last `minutes` on the 1-minute grid (NaN before enough data)."""
    out = np.full(len(v), np.nan)
    out[minutes:] = v[minutes:] - v[:-minutes]
    return out


def quantile(q: float, buckets: dict[str, np.ndarray]) -> np.ndarray:
    """histogram_quantile as Prometheus interpolates it, per point."""
    les = sorted(buckets, key=float)
    bounds = np.array([float(le) for le in les])
    counts = np.stack([buckets[le] for le in les], axis=1)
    out = np.full(len(counts), np.nan)
    for i, row in enumerate(counts):
        if not row[-1] > 0:
            continue
        rank = q * row[-1]
        j = int(np.searchsorted(row, rank))
        if j == len(les) - 1:
            out[i] = bounds[-2]
            continue
        lo, below = (0.0, 0.0) if j == 0 else (bounds[j - 1], row[j - 1])
        out[i] = lo + (bounds[j] - lo) * (rank - below) / (row[j] - below)
    return out


def firing(x: np.ndarray, *, above: float | None = None, below: float | None = None,
           minutes: int = 0, clear: float | None = None) -> np.ndarray:
    """The threshold detector on the 1-minute grid: True where an incident would be open."""
    out = np.zeros(len(x), dtype=bool)
    run, on = 0, False
    for i, v in enumerate(x.tolist()):
        breach = v == v and (v > above if above is not None else v < below)  # type: ignore
        if on and v == v:
            level = clear if clear is not None else (above if above is not None else below)
            on = v > level if above is not None else v < level  # type: ignore[operator]
            run = 0 if not on else run
        if not on:
            run = run + 1 if breach else 0
            on = run > minutes
        out[i] = on
    return out


def check_results(series: list[RawSeries]) -> dict[str, np.ndarray]:
    """Each sample check (and group) → where it fires, as in checks/*.yaml."""
    out: dict[str, np.ndarray] = {}
    for inst in ("web-1", "web-2", "web-3", "db-primary"):
        cores = len(pick(series, "node_cpu_seconds_total", instance=inst, mode="idle"))
        [load5] = pick(series, "node_load5", instance=inst)
        out[f"server-load/{inst}"] = firing(load5.v / cores, above=1.0, minutes=5, clear=0.9)
        [up] = pick(series, "up", instance=inst)
        out[f"server-down/{inst}"] = firing(up.v, below=1, minutes=2)
    buckets = {s.labels["le"]: increase(s.v, 5) for s in pick(series, "pg_query_duration_seconds_bucket")}
    out["db-query-latency"] = firing(quantile(0.95, buckets), above=0.2, minutes=5, clear=0.1)
    [limit] = pick(series, "pg_settings_max_connections")
    used = sum(s.v for s in pick(series, "pg_stat_activity_count")) / limit.v
    out["db-connections"] = firing(used, above=0.85, minutes=5, clear=0.7)
    requests = pick(series, "http_requests_total")
    for svc in ("api", "catalog", "checkout"):
        ok = sum(increase(s.v, 5) for s in requests
                 if s.labels["service"] == svc and not s.labels["code"].startswith("5"))
        total = sum(increase(s.v, 5) for s in requests if s.labels["service"] == svc)
        out[f"api-success-rate/{svc}"] = firing(ok / total, below=0.99, minutes=5, clear=0.995)
    total = sum(increase(s.v, 5) for s in requests)
    not_found = sum(increase(s.v, 5) for s in requests if s.labels["code"] == "404")
    out["http-404-surge"] = firing(not_found / total, above=0.05, minutes=5, clear=0.02)
    hour_ago = np.full(len(total), np.nan)
    hour_ago[60:] = total[:-60]
    out["http-traffic-surge"] = firing(total / hour_ago, above=3, minutes=5, clear=2)
    for provider in ("alipay", "card", "wechat"):
        paid = pick(series, "shop_payments_total", provider=provider)
        ok = sum(increase(s.v, 10) for s in paid if s.labels["status"] == "success")
        rate = ok / sum(increase(s.v, 10) for s in paid)
        out[f"payment-success-rate/{provider}"] = firing(rate, below=0.9, minutes=5, clear=0.95)
    [orders], [sessions] = pick(series, "shop_orders_total"), pick(series, "shop_sessions_total")
    conversion = increase(orders.v, 30) / increase(sessions.v, 30)
    out["conversion-rate"] = firing(conversion, below=0.02, minutes=15, clear=0.025)
    return out


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    """Two runs with the same arguments write byte-identical CSV and OpenMetrics files."""
    for run in ("a", "b"):
        series = simulate(END, days=1)
        write_csv(series, tmp_path / run / "shop.csv")
        write_openmetrics(series, tmp_path / run / "shop.om")
    for name in ("shop.csv", "shop.om"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "shop.csv").read_bytes() != _csv_bytes(tmp_path, seed=8)


def _csv_bytes(tmp_path: Path, seed: int) -> bytes:
    write_csv(simulate(END, days=1, seed=seed), tmp_path / "other.csv")
    return (tmp_path / "other.csv").read_bytes()


def test_grid_is_aligned_down_to_the_step_and_spans_the_days() -> None:
    """The last sample is `end` aligned down to the step; 8 days of 1-minute steps."""
    [up] = pick(shop(), "up", instance="web-1")
    assert up.t[-1] == datetime(2026, 11, 24, 13, 0, tzinfo=UTC).timestamp()
    assert len(up.t) == 8 * 24 * 60 and np.all(np.diff(up.t) == 60)


def test_series_are_the_conventional_ones() -> None:
    """node_exporter, HTTP, postgres_exporter and shop series with their documented labels."""
    series = shop()
    names = {s.labels.get("__name__") for s in series}
    assert names == {
        "up", "node_load1", "node_load5", "node_cpu_seconds_total", "http_requests_total",
        "http_request_duration_seconds_bucket", "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count", "pg_stat_activity_count",
        "pg_settings_max_connections", "pg_query_duration_seconds_bucket",
        "pg_query_duration_seconds_sum", "pg_query_duration_seconds_count",
        "shop_sessions_total", "shop_orders_total", "shop_payments_total"}
    cores = {inst: len(pick(series, "node_cpu_seconds_total", instance=inst, mode="idle"))
             for inst in ("web-1", "web-2", "web-3", "db-primary")}
    assert cores == {"web-1": 4, "web-2": 4, "web-3": 4, "db-primary": 8}
    les = [s.labels["le"] for s in pick(series, "http_request_duration_seconds_bucket",
                                        service="api")]
    assert sorted(les, key=float) == ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf"]
    assert len(pick(series, "http_requests_total")) == 12
    assert len(pick(series, "shop_payments_total")) == 6


def test_counters_only_go_up() -> None:
    """Every counter and histogram series is non-decreasing; event counters move by integers."""
    for s in shop():
        name = s.labels.get("__name__")
        if name.endswith("_total") or name.startswith(("http_request_duration", "pg_query")):
            assert np.all(np.diff(s.v) >= 0), s.labels
        if name.endswith(("_bucket", "_count", "s_total")) and "cpu" not in name:
            assert np.all(s.v == np.rint(s.v)), s.labels


def test_traffic_has_daily_and_weekly_seasonality() -> None:
    """Sessions peak in the Shanghai evening at over 3× the 04:00 trough; weekends are busier."""
    [sessions] = pick(shop(), "shop_sessions_total")
    per_minute = np.diff(sessions.v)
    local = sessions.t[1:] + 8 * 3600
    hour = ((local % 86400) // 3600).astype(int)
    by_hour = np.array([per_minute[hour == h].mean() for h in range(24)])
    assert by_hour.argmin() in (3, 4, 5) and by_hour.argmax() in (20, 21)
    assert by_hour.max() > 3 * by_hour.min()
    weekend = ((local // 86400).astype(int) + 3) % 7 >= 5
    assert 1.1 < per_minute[weekend].mean() / per_minute[~weekend].mean() < 1.3


@pytest.mark.parametrize(("what", "low", "high"), [
    ("conversion", 0.025, 0.035),
    ("api success", 0.996, 0.999),
    ("payment success", 0.97, 0.99),
    ("web load per core at peak", 0.3, 0.7),
    ("db p95 seconds", 0.015, 0.05),
    ("db connections", 40, 95),
])
def test_normal_levels_are_realistic(what: str, low: float, high: float) -> None:
    """Over 8 fault-free days the shop's key ratios sit where a real shop's would."""
    series = shop(faults=())
    day = 86400 * 8 // 60
    if what == "conversion":
        [o], [s] = pick(series, "shop_orders_total"), pick(series, "shop_sessions_total")
        values = np.array([(o.v[-1] - o.v[0]) / (s.v[-1] - s.v[0])])
    elif what == "api success":
        reqs = pick(series, "http_requests_total", service="api")
        grow = {s.labels["code"]: s.v[-1] - s.v[0] for s in reqs}
        values = np.array([1 - (grow["500"] + grow["503"]) / sum(grow.values())])
    elif what == "payment success":
        paid = pick(series, "shop_payments_total")
        ok = sum(s.v[-1] - s.v[0] for s in paid if s.labels["status"] == "success")
        values = np.array([ok / sum(s.v[-1] - s.v[0] for s in paid)])
    elif what == "web load per core at peak":
        [load] = pick(series, "node_load5", instance="web-1")
        hour = ((load.t + 8 * 3600) % 86400) // 3600
        values = np.array([load.v[(hour >= 20) & (hour < 22)].mean() / 4])
    elif what == "db p95 seconds":
        buckets = {s.labels["le"]: increase(s.v, 5)
                   for s in pick(series, "pg_query_duration_seconds_bucket")}
        values = quantile(0.95, buckets)[5:]
    else:
        values = sum(s.v for s in pick(series, "pg_stat_activity_count"))
    assert day > 0 and low <= np.nanmin(values) and np.nanmax(values) <= high


def episodes(t: np.ndarray, on: np.ndarray, end: float) -> list[tuple[float, float | None]]:
    """Firing intervals as (start, end) minutes relative to `end`; end None if still firing."""
    edges = np.diff(np.concatenate([[0], on.astype(int), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [((t[a] - end) / 60, None if b == len(t) else (t[b] - end) / 60)
            for a, b in zip(starts, stops, strict=True)]


@pytest.mark.parametrize("end", [END, TROUGH_END], ids=["evening-peak", "night-trough"])
def test_default_faults_fire_exactly_the_expected_checks(end: datetime) -> None:
    """At `end` only the alipay payment check fires; the db checks fired 3h–2h20m ago and
    recovered; web-2's load fired two days ago; nothing else fires in eight days."""
    series = shop(end)
    t = series[0].t
    fired = {name: episodes(t, on, t[-1]) for name, on in check_results(series).items() if on.any()}
    assert set(fired) == {"payment-success-rate/alipay", "db-query-latency", "db-connections",
                          "server-load/web-2"}
    [(start, stop)] = fired["payment-success-rate/alipay"]
    assert -25 < start < -10 and stop is None
    for name in ("db-query-latency", "db-connections"):
        [(start, stop)] = fired[name]
        assert -180 < start < -165 and stop is not None and -145 < stop < -130, name
    [(start, stop)] = fired["server-load/web-2"]
    assert -2 * 1440 < start < -2 * 1440 + 15 and stop is not None and stop < -2 * 1440 + 50


@pytest.mark.parametrize("seed", [7, 11])
def test_no_check_fires_on_normal_data(seed: int) -> None:
    """Eight fault-free days, at the default seed and another, open no incident at all."""
    series = simulate(TROUGH_END, faults=(), seed=seed)
    assert [name for name, on in check_results(series).items() if on.any()] == []


@pytest.mark.parametrize(("fault", "check"), [
    (Fault(what="instance-down", target="web-3", start=-timedelta(minutes=30),
           end=-timedelta(minutes=10), magnitude=1), "server-down/web-3"),
    (Fault(what="api-errors", target="checkout", start=-timedelta(minutes=30),
           magnitude=0.05), "api-success-rate/checkout"),
    (Fault(what="traffic-flood", target="catalog", start=-timedelta(minutes=30),
           magnitude=5), "http-404-surge"),
    (Fault(what="conversion-drop", start=-timedelta(hours=1), magnitude=0.4),
     "conversion-rate"),
])
def test_other_fault_kinds_trip_their_check(fault: Fault, check: str) -> None:
    """Each optional fault kind is visible to the check that watches it."""
    series = simulate(END, days=1, faults=(fault,))
    assert check_results(series)[check].any()


def test_fault_rejects_unknown_kinds_and_backwards_windows() -> None:
    """A misspelt fault or one that ends before it starts is refused at construction."""
    with pytest.raises(ValueError, match="unknown fault 'db-slow'"):
        Fault(what="db-slow", start=-timedelta(hours=1), magnitude=2)
    with pytest.raises(ValueError, match="ends"):
        Fault(what="load-spike", start=-timedelta(hours=1), end=-timedelta(hours=2), magnitude=2)


def test_write_project_data_writes_what_the_local_source_reads(tmp_path: Path) -> None:
    """`data/shop.csv` under the project root reads back as the simulated series."""
    [path] = write_project_data(tmp_path, END, days=0.5)
    assert path == tmp_path / "data" / "shop.csv"
    expected = simulate(END, days=0.5)
    got = {s.labels: s for s in read_csv(path)}
    assert set(got) == {s.labels for s in expected}
    for s in expected:
        assert np.array_equal(got[s.labels].t, s.t) and np.array_equal(got[s.labels].v, s.v)


def test_openmetrics_output_is_accepted_by_promtool(tmp_path: Path) -> None:
    """promtool backfills every sample of the written file, which reads back equal to the CSV."""
    why = missing_binary("promtool")
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; in CI every component must be present")
        pytest.skip(why)
    series = simulate(END, days=0.25)
    om = write_openmetrics(series, tmp_path / "shop.om")
    text = om.read_text()
    assert text.endswith("# EOF\n")
    assert "# TYPE http_requests counter\n" in text
    assert "# TYPE pg_query_duration_seconds histogram\n" in text
    blocks = tmp_path / "blocks"
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                    str(om), str(blocks)], check=True, capture_output=True, timeout=120)
    listing = subprocess.run(["promtool", "tsdb", "list", str(blocks)], check=True,
                             capture_output=True, text=True, timeout=60).stdout.splitlines()
    samples = sum(int(line.split()[4]) for line in listing[1:])  # NUM SAMPLES column
    assert samples == sum(len(s.t) for s in series)

    write_csv(series, tmp_path / "shop.csv")
    from_csv = {s.labels: s for s in read_csv(tmp_path / "shop.csv")}
    from_om = {s.labels: s for s in read_openmetrics(text, file=om)}
    assert set(from_om) == set(from_csv)
    for labels, s in from_om.items():
        assert np.array_equal(s.t, from_csv[labels].t) and np.array_equal(s.v, from_csv[labels].v)
