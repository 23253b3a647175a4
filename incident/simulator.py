"""A deterministic simulator of a fictional shop's metrics, with scripted faults.

The same arguments always give byte-identical files. Traffic follows the day in
Asia/Shanghai (lowest at 04:00, highest 20:00–22:00) and the week (weekends +20%);
counters only go up; noise is drawn up front from one generator per component, so a
fault changes the series it touches and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from incident.model import Labels
from incident.sources.promql.storage import RawSeries

LOCAL_OFFSET = 8 * 3600  # Asia/Shanghai, no daylight saving
WEB = ("web-1", "web-2", "web-3")
CORES = {"web-1": 4, "web-2": 4, "web-3": 4, "db-primary": 8}
SERVICES = ("api", "catalog", "checkout")
CODES = ("200", "404", "500", "503")
PROVIDERS = ("alipay", "card", "wechat")
HTTP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
PG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
MAX_CONNECTIONS = 200

FAULT_KINDS = {
    "db-slowdown": "database `target`: query latency × magnitude, connections near saturation",
    "payment-failure": "payment provider `target`: success rate falls to `magnitude`",
    "load-spike": "instance `target`: load rises to `magnitude` × its cores",
    "instance-down": "instance `target` stops answering scrapes: up 0, no node metrics",
    "traffic-flood": "service `target`: requests × magnitude, the extra mostly 404 and 503",
    "api-errors": "service `target`: a share `magnitude` of requests fail with 500",
    "conversion-drop": "the shop's conversion rate × magnitude",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A scripted fault from `start` to `end`, both offsets from the simulation's end (negative).

    `end=None` means still going at the end. Faults ramp in and out over two minutes.
    """

    what: str
    target: str = ""
    start: timedelta
    end: timedelta | None = None
    magnitude: float

    def __post_init__(self) -> None:
        if self.what not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.what!r} (known: {', '.join(FAULT_KINDS)})")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"fault {self.what!r} ends ({self.end}) before it starts "
                             f"({self.start})")


DEFAULT_FAULTS: tuple[Fault, ...] = (
    Fault(what="db-slowdown", target="db-primary", magnitude=8,
          start=-timedelta(hours=3), end=-timedelta(hours=2, minutes=20)),
    Fault(what="payment-failure", target="alipay", magnitude=0.7,
          start=-timedelta(minutes=25)),
    Fault(what="load-spike", target="web-2", magnitude=2,
          start=-timedelta(days=2), end=-timedelta(days=2) + timedelta(minutes=40)),
)

RAMP = 120.0  # seconds a fault takes to reach full strength, and to fade

# Relative traffic by local hour (0…23), interpolated linearly: trough 04:00, peak 20–22.
_DAY = np.array([0.55, 0.38, 0.25, 0.18, 0.15, 0.17, 0.25, 0.40, 0.55, 0.68, 0.75, 0.80,
                 0.85, 0.80, 0.75, 0.74, 0.75, 0.78, 0.82, 0.90, 1.00, 1.00, 0.95, 0.75])


class _Shop:
    """One simulation run: the time grid, the shared traffic curve and the faults."""

    def __init__(self, end: float, n: int, step: float, faults: Sequence[Fault], seed: int):
        self.end, self.step, self.seed, self.faults = end, step, seed, tuple(faults)
        self.t = end - step * np.arange(n - 1, -1, -1, dtype=np.float64)
        local = self.t + LOCAL_OFFSET
        hour = (local % 86400) / 3600
        weekday = (np.floor(local / 86400).astype(np.int64) + 3) % 7  # 1970-01-01: Thursday
        day = np.interp(hour, np.arange(25), np.append(_DAY, _DAY[0]))
        week = np.where(weekday >= 5, 1.2, 1.0)
        self.hour = hour
        self.traffic = day * week * np.exp(self.wander("traffic", 0.05, 3600))
        self.out: list[RawSeries] = []

    def rng(self, component: str) -> np.random.Generator:
        """A generator of its own per component, so one fault does not shift other noise."""
        return np.random.default_rng([self.seed, *component.encode()])

    def wander(self, component: str, sigma: float, tau: float) -> np.ndarray:
        """Slow AR(1) noise with stationary deviation `sigma` and correlation time `tau`."""
        z = self.rng(component + "/wander").standard_normal(len(self.t))
        phi = math.exp(-self.step / tau)
        x = np.empty_like(z)
        prev, scale = z[0] * sigma, sigma * math.sqrt(1 - phi * phi)
        for i, zi in enumerate(z.tolist()):
            prev = phi * prev + scale * zi if i else prev
            x[i] = prev
        return x

    def fault(self, what: str, target: str = "") -> list[tuple[np.ndarray, float]]:
        """(envelope 0…1 over the grid, magnitude) for every fault of this kind and target."""
        found = []
        for f in self.faults:
            if f.what != what or (f.target and target and f.target != target):
                continue
            lo = self.end + f.start.total_seconds()
            hi = math.inf if f.end is None else self.end + f.end.total_seconds()
            rise = np.clip((self.t - lo + self.step) / RAMP, 0, 1)
            fall = np.clip((hi - self.t) / RAMP, 0, 1)
            found.append((np.minimum(rise, fall), f.magnitude))
        return found

    def factor(self, what: str, target: str = "", scale: float = 1.0) -> np.ndarray:
        """The product of 1 + (magnitude − 1)·scale·envelope over matching faults."""
        out = np.ones_like(self.t)
        for env, mag in self.fault(what, target):
            out *= 1 + (mag - 1) * scale * env
        return out

    def emit(self, labels: dict[str, str], values: np.ndarray, decimals: int | None = None
             ) -> None:
        """Add one series; NaN marks a missing sample."""
        v = np.round(values, decimals) if decimals is not None else values.astype(np.float64)
        keep = ~np.isnan(v)
        self.out.append(RawSeries(labels=Labels(labels), t=self.t[keep], v=v[keep]))

    def counter(self, labels: dict[str, str], increments: np.ndarray, rng: np.random.Generator,
                decimals: int | None = None) -> None:
        """A counter that started long ago and only goes up by `increments`."""
        start = float(rng.integers(10**5, 10**7))
        self.emit(labels, start + np.cumsum(increments), decimals)


def _counts(lam: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Poisson-like integer counts from pre-drawn normal noise (draws never depend on `lam`)."""
    return np.maximum(np.rint(lam + np.sqrt(np.maximum(lam, 0)) * z), 0)


def _split(n: np.ndarray, probs: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Integer counts per category (columns) that sum exactly to `n`, with binomial-like noise."""
    sd = np.sqrt(probs * (1 - probs) / np.maximum(n, 1)[:, None])
    noisy = np.maximum(probs + sd * z, 0)
    noisy /= np.maximum(noisy.sum(axis=1, keepdims=True), 1e-12)
    cum = np.rint(n[:, None] * np.cumsum(noisy, axis=1))
    cum[:, -1] = n
    cum = np.maximum.accumulate(np.minimum(cum, n[:, None]), axis=1)
    return np.diff(cum, axis=1, prepend=0)


def _phi(x: np.ndarray) -> np.ndarray:
    """The standard normal CDF (Abramowitz–Stegun 7.1.26, error < 1.5e-7), without scipy."""
    z = np.abs(x) / math.sqrt(2)
    t = 1 / (1 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027
                                                                          + t * 1.061405429))))
    erf = 1 - poly * np.exp(-z * z)
    return 0.5 * (1 + np.sign(x) * erf)


def _histogram(shop: _Shop, name: str, labels: dict[str, str], buckets: Sequence[float],
               n: np.ndarray, median: np.ndarray, sigma: float, rng: np.random.Generator
               ) -> None:
    """Buckets, sum and count of `n` lognormal observations per step."""
    bounds = np.log(np.asarray(buckets))[None, :]
    cdf = _phi((bounds - np.log(median)[:, None]) / sigma)
    probs = np.diff(np.concatenate([np.zeros((len(n), 1)), cdf, np.ones((len(n), 1))], axis=1),
                    axis=1)
    per = _split(n, probs, np.asarray(rng.standard_normal(probs.shape)))
    cum = np.cumsum(np.cumsum(per, axis=0), axis=1)
    cum += np.cumsum(rng.integers(10**4, 10**6, size=len(buckets) + 1))[None, :]  # history
    for i, le in enumerate([*(_le(b) for b in buckets), "+Inf"]):
        shop.emit({"__name__": f"{name}_bucket", **labels, "le": le}, cum[:, i])
    mean = median * math.exp(sigma * sigma / 2) * np.exp(0.03 * rng.standard_normal(len(n)))
    start_sum = float(cum[0, -1] - per[0].sum()) * float(np.median(mean))
    shop.emit({"__name__": f"{name}_sum", **labels}, start_sum + np.cumsum(n * mean), 3)
    shop.emit({"__name__": f"{name}_count", **labels}, cum[:, -1])


def _le(bound: float) -> str:
    """A bucket bound as Go's client writes it: 1 not 1.0."""
    return f"{bound:g}"


def _shop(shop: _Shop) -> np.ndarray:
    """Sessions, orders and payments; returns sessions per step for the HTTP traffic."""
    rng = shop.rng("shop")
    n = len(shop.t)
    sessions = _counts(100 * shop.step * shop.traffic, rng.standard_normal(n))
    shop.counter({"__name__": "shop_sessions_total"}, sessions, rng)
    conversion = 0.03 * (1 + 0.05 * np.sin(2 * np.pi * (shop.hour - 14) / 24))
    conversion = conversion * shop.factor("conversion-drop")
    ordered = _split(sessions, np.stack([conversion, 1 - conversion], axis=1),
                     rng.standard_normal((n, 2)))[:, 0]
    shop.counter({"__name__": "shop_orders_total"}, ordered, rng)
    shares = np.array([[0.45, 0.20, 0.35]]).repeat(n, axis=0)  # alipay, card, wechat
    by_provider = _split(ordered, shares, rng.standard_normal((n, 3)))
    for i, provider in enumerate(PROVIDERS):
        success = np.full(n, 0.982)
        for env, level in shop.fault("payment-failure", provider):
            success = success * (1 - env) + level * env
        paid = _split(by_provider[:, i], np.stack([success, 1 - success], axis=1),
                      rng.standard_normal((n, 2)))
        for j, status in enumerate(("success", "failed")):
            shop.counter({"__name__": "shop_payments_total", "provider": provider,
                          "status": status}, paid[:, j], rng)
    return sessions


def _http(shop: _Shop, sessions: np.ndarray) -> np.ndarray:
    """Requests by service and code, and their latency; returns load relative to normal."""
    rng = shop.rng("http")
    n = len(shop.t)
    per_session = {"api": 6.0, "catalog": 3.0, "checkout": 0.5}
    not_found = {"api": 0.004, "catalog": 0.008, "checkout": 0.002}
    median = {"api": 0.06, "catalog": 0.035, "checkout": 0.18}
    slow_db = shop.factor("db-slowdown", scale=2 / 7)  # ×8 in the database ≈ ×3 here
    normal_total = np.zeros(n)
    total = np.zeros(n)
    for service in SERVICES:
        flood = shop.factor("traffic-flood", service)
        lam = sessions * per_session[service] * flood
        normal_total += sessions * per_session[service]
        requests = _counts(lam - sessions * per_session[service], rng.standard_normal(n)) + \
            _counts(sessions * per_session[service], rng.standard_normal(n))
        total += requests
        extra = 1 - 1 / flood  # share of flood requests: scanners (404) and overload (503)
        p500 = np.full(n, 0.0015)
        for env, share in shop.fault("api-errors", service):
            p500 = p500 + (share - p500) * env
        p503 = 0.001 + 0.002 * (slow_db - 1) / 2 + 0.1 * extra
        p404 = not_found[service] + 0.6 * extra
        probs = np.stack([1 - p404 - p500 - p503, p404, p500, p503], axis=1)
        codes = _split(requests, probs, rng.standard_normal((n, 4)))
        for j, code in enumerate(CODES):
            shop.counter({"__name__": "http_requests_total", "service": service, "code": code},
                         codes[:, j], rng)
        db_bound = slow_db if service != "catalog" else np.ones(n)
        m = median[service] * (1 + 0.3 * shop.traffic) * db_bound * np.sqrt(flood)
        _histogram(shop, "http_request_duration_seconds", {"service": service}, HTTP_BUCKETS,
                   requests, m, 0.55, rng)
    return total / np.maximum(normal_total, 1)


def _database(shop: _Shop) -> None:
    """postgres_exporter-like connection counts, the setting, and query latency."""
    rng = shop.rng("db")
    n = len(shop.t)
    instance = {"instance": "db-primary"}
    slow = shop.factor("db-slowdown", "db-primary")
    env = np.zeros(n)
    for e, _ in shop.fault("db-slowdown", "db-primary"):
        env = np.maximum(env, e)
    total = 44 + 32 * shop.traffic + 2.5 * rng.standard_normal(n)
    total = total + (190 + 3 * rng.standard_normal(n) - total) * env
    total = np.clip(np.rint(total), 1, MAX_CONNECTIONS)
    share = 0.15 + 0.2 * shop.traffic
    share = share + (0.93 - share) * env
    active = np.rint(total * np.clip(share + 0.02 * rng.standard_normal(n), 0, 1))
    shop.emit({"__name__": "pg_stat_activity_count", **instance, "state": "active"}, active)
    shop.emit({"__name__": "pg_stat_activity_count", **instance, "state": "idle"},
              total - active)
    shop.emit({"__name__": "pg_settings_max_connections", **instance},
              np.full(n, float(MAX_CONNECTIONS)))
    queries = _counts((10 + 150 * shop.traffic) * shop.step, rng.standard_normal(n))
    median = (0.006 + 0.004 * shop.traffic) * slow * np.exp(0.04 * rng.standard_normal(n))
    _histogram(shop, "pg_query_duration_seconds", instance, PG_BUCKETS, queries, median, 0.8,
               rng)


def _nodes(shop: _Shop, request_ratio: np.ndarray) -> None:
    """node_exporter: up, load averages and CPU seconds per cpu and mode."""
    rng = shop.rng("node")
    n = len(shop.t)
    weight = {"web-1": 1.0, "web-2": 1.04, "web-3": 0.96}
    for instance, cores in CORES.items():
        if instance == "db-primary":
            per_core = (0.05 + 0.38 * shop.traffic) * shop.factor("db-slowdown", instance, 0.06)
        else:
            per_core = 0.06 + 0.45 * shop.traffic * weight[instance] * request_ratio
        runnable = cores * per_core * np.exp(0.1 * rng.standard_normal(n))
        for env, mag in shop.fault("load-spike", instance):
            runnable = runnable + (mag * cores - runnable) * env
        down = np.zeros(n, dtype=bool)
        for env, _ in shop.fault("instance-down", instance):
            down |= env >= 0.5
        missing = np.where(down, np.nan, 1.0)
        shop.emit({"__name__": "up", "job": "node", "instance": instance},
                  np.where(down, 0.0, 1.0))
        shop.emit({"__name__": "node_load1", "instance": instance},
                  _ema(runnable, shop.step, 60) * missing, 2)
        shop.emit({"__name__": "node_load5", "instance": instance},
                  _ema(runnable, shop.step, 300) * missing, 2)
        busy = np.clip(runnable / cores, 0, 1) * 0.85 + 0.02
        for cpu in range(cores):
            util = np.clip(busy * (1 + 0.1 * rng.standard_normal(n)), 0, 1) * shop.step
            user = util * 0.72
            parts = {"idle": shop.step - util, "system": util - user, "user": user}
            for mode, seconds in parts.items():
                start = float(rng.integers(10**5, 10**6))
                shop.emit({"__name__": "node_cpu_seconds_total", "instance": instance,
                           "cpu": str(cpu), "mode": mode},
                          (start + np.cumsum(seconds)) * missing, 2)


def _ema(x: np.ndarray, step: float, tau: float) -> np.ndarray:
    """The kernel's load average: an exponential moving average with time constant `tau`."""
    alpha = 1 - math.exp(-step / tau)
    out = np.empty_like(x)
    acc = float(x[0])
    for i, xi in enumerate(x.tolist()):
        acc += alpha * (xi - acc)
        out[i] = acc
    return out


def simulate(end: datetime, *, days: float = 8, step: timedelta = timedelta(seconds=60),
             faults: Sequence[Fault] = DEFAULT_FAULTS, seed: int = 7) -> list[RawSeries]:
    """The shop's series from `end − days` to `end` (aligned down to `step`), sorted by labels."""
    size = step.total_seconds()
    if size <= 0 or days <= 0:
        raise ValueError("step and days must be positive")
    last = math.floor(end.timestamp() / size) * size
    n = round(days * 86400 / size)
    shop = _Shop(last, n, size, faults, seed)
    sessions = _shop(shop)
    ratio = _http(shop, sessions)
    _database(shop)
    _nodes(shop, ratio)
    return sorted(shop.out, key=lambda s: s.labels)


# ---------------------------------------------------------------- writing


def _format(values: np.ndarray) -> list[str]:
    """Shortest round-trip text per value; an integral column without decimal points."""
    finite = np.isfinite(values)
    if finite.all() and (values == np.rint(values)).all() and (np.abs(values) < 2**53).all():
        return list(map(str, values.astype(np.int64).tolist()))
    out = list(map(repr, values.tolist()))
    for i in np.flatnonzero(~finite).tolist():
        x = values[i]
        out[i] = "NaN" if x != x else ("+Inf" if x > 0 else "-Inf")
    return out


def _cells(s: RawSeries, grid: np.ndarray) -> list[str]:
    """The series' values as text on `grid`, empty where it has no sample."""
    if len(s.t) == len(grid) and np.array_equal(s.t, grid):
        return _format(s.v)
    cells = [""] * len(grid)
    for i, text in zip(np.searchsorted(grid, s.t).tolist(), _format(s.v), strict=True):
        cells[i] = text
    return cells


def _stamps(t: np.ndarray) -> list[str]:
    return _format(t)


def write_csv(series: Sequence[RawSeries], path: Path) -> Path:
    """One `timestamp` column (RFC 3339, UTC) and one column per series; empty = no sample."""
    grid = np.unique(np.concatenate([s.t for s in series])) if series else np.array([])
    columns = [_cells(s, grid) for s in series]
    stamps = [datetime.fromtimestamp(x, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
              if x == int(x) else datetime.fromtimestamp(x, UTC).isoformat().replace("+00:00", "Z")
              for x in grid.tolist()]
    header = ",".join(["timestamp", *(_csv_quote(str(s.labels)) for s in series)])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(header + "\n")
        fh.writelines(",".join(row) + "\n" for row in zip(stamps, *columns, strict=True))
    return path


def _csv_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


_HELP = {
    "up": "1 if the target's last scrape succeeded",
    "node_load1": "1-minute load average",
    "node_load5": "5-minute load average",
    "node_cpu": "Seconds the CPUs spent in each mode",
    "http_requests": "HTTP requests by service and status code",
    "http_request_duration_seconds": "HTTP request latency",
    "pg_stat_activity_count": "Connections by state",
    "pg_settings_max_connections": "Server setting max_connections",
    "pg_query_duration_seconds": "Query latency",
    "shop_sessions": "Visitor sessions started",
    "shop_orders": "Orders placed",
    "shop_payments": "Payment attempts by provider and outcome",
}


def _family(series: RawSeries, histograms: set[str]) -> tuple[str, str]:
    """(family name, OpenMetrics type) of a series, the way promtool expects the TYPE line."""
    name = series.labels.get("__name__")
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)], "histogram"
    if name.endswith("_total"):
        return name[: -len("_total")], "counter"
    return name, "gauge"


def write_openmetrics(series: Sequence[RawSeries], path: Path) -> Path:
    """promtool-ready OpenMetrics: one TYPE block per family, time-major, seconds, `# EOF`."""
    histograms = {s.labels.get("__name__")[: -len("_bucket")] for s in series
                  if s.labels.get("__name__").endswith("_bucket") and "le" in s.labels}
    families: dict[tuple[str, str], list[RawSeries]] = {}
    for s in series:
        families.setdefault(_family(s, histograms), []).append(s)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for (family, kind), members in families.items():
            fh.write(f"# TYPE {family} {kind}\n")
            if family in _HELP:
                fh.write(f"# HELP {family} {_HELP[family]}\n")
            if kind == "histogram":
                order = {"_bucket": 0, "_sum": 1, "_count": 2}
                members = sorted(members, key=lambda s: (
                    order[s.labels.get("__name__")[len(family):]],
                    _le_key(s.labels.get("le"))))
            _write_family(fh.write, members)
        fh.write("# EOF\n")
    return path


def _le_key(le: str) -> float:
    return float(le) if le else 0.0


def _write_family(write: Callable[[str], object], members: Sequence[RawSeries]) -> None:
    """All members' samples, time by time, so a histogram's buckets stay together."""
    grid = np.unique(np.concatenate([s.t for s in members]))
    stamps = _stamps(grid)
    rows: list[list[str]] = [[] for _ in grid]
    for s in members:
        prefix = str(s.labels) + " "
        for i, text in zip(np.searchsorted(grid, s.t).tolist(), _format(s.v), strict=True):
            rows[i].append(prefix + text + " " + stamps[i] + "\n")
    for row in rows:
        write("".join(row))


def write_project_data(root: Path, end: datetime, **kw: object) -> list[Path]:
    """Simulate the shop and write `root/data/shop.csv`, what the sample project's local source reads."""
    series = simulate(end, **kw)  # type: ignore[arg-type]
    return [write_csv(series, Path(root) / "data" / "shop.csv")]
