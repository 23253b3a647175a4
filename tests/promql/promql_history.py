"""A deterministic OpenMetrics history for differential tests, and a tiny reader for it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from incident.model import Labels
from incident.sources.promql.storage import MemoryStorage, RawSeries

SCRAPE = 15.0
HOURS = 8


def _labels(d: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in d.items())


def _fmt(v: float) -> str:
    return repr(float(v)) if np.isfinite(v) else ("NaN" if np.isnan(v) else
                                                  ("+Inf" if v > 0 else "-Inf"))


def write_history(path: Path, end: float) -> tuple[float, float]:
    """Write HOURS of samples ending at `end` (Unix s, in the past); returns (first, last) times.

    Counters with resets, series that start late, stop early or pause for more than 5
    minutes, jittered scrape times, gauges with repeated values, and a classic histogram.
    """
    rng = np.random.default_rng(42)
    start = end - HOURS * 3600
    base = np.arange(start, end, SCRAPE)
    lines: list[str] = []

    lines.append("# TYPE http_requests counter")
    for si, service in enumerate(("api", "web", "auth")):
        for ci, code in enumerate(("200", "404", "500")):
            for instance in ("i1", "i2"):
                # Jitter by binary-exact fractions so seconds→ms is exact for promtool too.
                t = base + rng.choice([0.0, 0.25, 0.5, 0.75], size=len(base))
                inc = rng.poisson([20, 2, 1][ci] * (si + 1), size=len(base)).astype(float)
                v = np.cumsum(inc)
                keep = np.ones(len(t), dtype=bool)
                if service == "web" and code == "200" and instance == "i1":
                    for r in (400, 1100, 1500):  # counter resets
                        v[r:] -= v[r - 1] - rng.integers(0, 3)
                if service == "api" and code == "500":
                    keep[600:700] = False  # a 25-minute gap
                if service == "auth" and code == "404" and instance == "i2":
                    keep[:300] = False  # starts late
                if service == "auth" and code == "200" and instance == "i1":
                    keep[1700:] = False  # stops early
                labels = _labels({"service": service, "code": code, "instance": instance})
                lines += [f"http_requests_total{{{labels}}} {_fmt(x)} {float(ts)!r}"
                          for ts, x in zip(t[keep], v[keep], strict=True)]

    lines.append("# TYPE node_load5 gauge")
    for instance in ("i1", "i2", "i3"):
        v = np.round(rng.uniform(0, 4, size=len(base)), 1)
        keep = np.ones(len(base), dtype=bool)
        if instance == "i3":
            keep[1000:1040] = False
        lines += [f'node_load5{{instance="{instance}"}} {_fmt(x)} {float(ts)!r}'
                  for ts, x in zip(base[keep], v[keep], strict=True)]

    lines.append("# TYPE node_cpu_seconds counter")
    for instance in ("i1", "i2"):
        for cpu in ("0", "1"):
            for mode in ("idle", "user", "system"):
                v = np.cumsum(rng.uniform(0, 15, size=len(base)))
                labels = _labels({"instance": instance, "cpu": cpu, "mode": mode})
                lines += [f"node_cpu_seconds_total{{{labels}}} {_fmt(x)} {float(ts)!r}"
                          for ts, x in zip(base, v, strict=True)]

    lines.append("# TYPE up gauge")
    for job, instance in (("api", "i1"), ("api", "i2"), ("db", "d1")):
        v = (rng.uniform(size=len(base)) > 0.1).astype(float)
        lines += [f'up{{job="{job}",instance="{instance}"}} {_fmt(x)} {float(ts)!r}'
                  for ts, x in zip(base, v, strict=True)]

    lines.append("# TYPE temperature gauge")
    v = np.sin(np.arange(len(base)) / 50.0) * 30 - 5 + rng.normal(0, 1, size=len(base))
    lines += [f'temperature{{room="a"}} {_fmt(x)} {float(ts)!r}'
              for ts, x in zip(base, v, strict=True)]
    lines += [f'temperature{{room="b"}} {_fmt(x)} {float(ts)!r}'
              for ts, x in zip(base[::4], np.round(v[::4]), strict=True)]

    lines.append("# TYPE weird gauge")
    specials_by_kind = (("nan", (np.nan,)), ("inf", (np.inf, -np.inf)),
                        ("mixed", (np.nan, np.inf)))
    for kind, specials in specials_by_kind:
        v = np.round(rng.normal(10, 3, size=len(base)), 2)
        hit = rng.uniform(size=len(base)) < 0.05
        v[hit] = rng.choice(specials, size=int(hit.sum()))
        lines += [f'weird{{kind="{kind}"}} {_fmt(x)} {float(ts)!r}'
                  for ts, x in zip(base, v, strict=True)]

    lines.append("# TYPE pg_query_duration_seconds histogram")
    bounds = ("0.005", "0.01", "0.05", "0.1", "0.5", "1", "+Inf")
    for instance in ("db1", "db2"):
        scale = 0.02 if instance == "db1" else 0.2
        counts = np.zeros(len(bounds))
        total = 0.0
        for ts in base:
            obs = rng.exponential(scale, size=int(rng.integers(0, 30)))
            counts += [np.sum(obs <= float(b)) for b in bounds]
            total += float(obs.sum())
            for b, c in zip(bounds, counts, strict=True):
                lines.append(f'pg_query_duration_seconds_bucket{{instance="{instance}",'
                             f'le="{b}"}} {_fmt(c)} {float(ts)!r}')
            lines.append(f'pg_query_duration_seconds_sum{{instance="{instance}"}} '
                         f"{_fmt(total)} {float(ts)!r}")
            lines.append(f'pg_query_duration_seconds_count{{instance="{instance}"}} '
                         f"{_fmt(counts[-1])} {float(ts)!r}")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return float(base[0]), float(base[-1])


_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+) (\S+)$')
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def read_history(path: Path) -> MemoryStorage:
    """The samples of an OpenMetrics file written above (one sample per line, with timestamp)."""
    points: dict[Labels, tuple[list[float], list[float]]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        assert m, line
        name, body, value, ts = m.groups()
        labels = Labels({"__name__": name, **dict(_PAIR.findall(body or ""))})
        t, v = points.setdefault(labels, ([], []))
        t.append(float(ts))
        v.append(float(value))
    return MemoryStorage([RawSeries(labels, np.array(t), np.array(v))
                          for labels, (t, v) in points.items()])
