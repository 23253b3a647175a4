"""The local engine against a real Prometheus 2.42 on the same backfilled history."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from incident.model import Labels
from incident.sources.promql import PromQLError, evaluate_instant, evaluate_range

pytestmark = pytest.mark.prometheus

REL, ABS = 1e-9, 1e-12

SELECTORS = [
    "http_requests_total",
    'http_requests_total{code="200"}',
    'http_requests_total{code!="200"}',
    'http_requests_total{code=~"2..|4.."}',
    'http_requests_total{code!~"5.."}',
    'http_requests_total{service=~"a.*",code=~"5.*"}',
    '{__name__=~"node_load5|up"}',
    '{__name__=~"http_.*",service="api"}',
    "node_load5",
    "node_load5 offset 10m",
    "node_load5 offset -10m",
    "node_load5 offset 1h",
    'up{job="db"}',
    "temperature",
]

RANGE_FUNCTIONS = [
    f"{fn}({sel}[{rng}])"
    for fn in ("rate", "increase", "irate", "delta", "idelta", "resets", "changes", "deriv")
    for sel, rng in (("http_requests_total", "5m"), ('http_requests_total{service="web"}', "1m"))
] + [
    f"{fn}({sel}[{rng}])"
    for fn in ("avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
               "count_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
               "present_over_time", "changes", "delta", "deriv")
    for sel, rng in (("node_load5", "5m"), ("temperature", "10m"), ("up", "2m"))
] + [
    "rate(http_requests_total[5m] offset 30m)",
    "rate(http_requests_total[1h])",
    "increase(http_requests_total[2m])",
    "rate(http_requests_total[30s])",
    "irate(http_requests_total[5m] offset -5m)",
    "quantile_over_time(0.9, node_load5[10m])",
    "quantile_over_time(0.5, temperature[7m])",
    "quantile_over_time(0, up[5m])",
    "quantile_over_time(1.5, up[5m])",
    "quantile_over_time(-1, up[5m])",
    "predict_linear(temperature[10m], 600)",
    "predict_linear(node_cpu_seconds_total[5m] offset 5m, 3600)",
    "deriv(node_cpu_seconds_total[10m])",
    "absent_over_time(http_requests_total[1m])",
    'absent_over_time(http_requests_total{service="api",code="500",instance="i1"}[1m])',
    'absent_over_time(nonexistent{job="x"}[5m])',
    "count_over_time(http_requests_total[3m])",
    "last_over_time(node_load5[10m])",
    "max_over_time(node_load5[1m])",
]

AGGREGATIONS = [
    "sum(rate(http_requests_total[5m]))",
    "sum by (service) (rate(http_requests_total[5m]))",
    "sum(rate(http_requests_total[5m])) by (service, code)",
    "sum without (instance) (rate(http_requests_total[5m]))",
    "sum without (instance, code) (http_requests_total)",
    "avg by (instance) (node_load5)",
    "min by (service) (http_requests_total)",
    "max(node_load5)",
    "count(http_requests_total)",
    "count by (code) (http_requests_total)",
    "group by (service) (http_requests_total)",
    "stddev(node_load5)",
    "stdvar by (mode) (rate(node_cpu_seconds_total[5m]))",
    "quantile(0.5, node_load5)",
    "quantile by (service) (0.9, rate(http_requests_total[5m]))",
    "quantile(0, node_load5)",
    "quantile(1, node_load5)",
    "topk(3, rate(http_requests_total[5m]))",
    "bottomk(2, rate(node_cpu_seconds_total[5m]))",
    "topk by (service) (1, rate(http_requests_total[5m]))",
    "bottomk by (mode) (1, rate(node_cpu_seconds_total[10m]))",
    'count_values("value", node_load5)',
    'count_values("v", up)',
    'count_values by (job) ("v", up)',
    "sum by (__name__) ({__name__=~\"node_load5|up\"})",
    "max without () (node_load5)",
    "sum by () (node_load5)",
    "avg(rate(node_cpu_seconds_total[5m])) by (mode)",
    "count(count by (service) (http_requests_total))",
]

BINARY = [
    "node_load5 * 2",
    "2 * node_load5",
    "node_load5 - 1",
    "1 - node_load5",
    "node_load5 / 0",
    "node_load5 % 1.5",
    "node_load5 ^ 2",
    "2 ^ node_load5",
    "-node_load5",
    "- - node_load5",
    "node_load5 > 2",
    "2 < node_load5",
    "node_load5 >= 2",
    "node_load5 == 1.5",
    "node_load5 != 1.5",
    "node_load5 <= bool 2",
    "node_load5 > bool 2",
    "2 >= bool node_load5",
    "1 + 2 * 3",
    "2 ^ 3 ^ 2",
    "-2 ^ 2",
    "(1 + 2) * 3",
    "10 % 3",
    "1 / 0",
    "-1 / 0",
    "0 / 0",
    "1 == bool 1",
    "time() - 1",
    "node_load5 + node_load5",
    "node_load5 / ignoring(nothing) node_load5",
    "node_load5 > node_load5 - 1",
    "node_load5 > bool (node_load5 - 1)",
    "temperature * on (room) group_left temperature",
    'sum by (service) (rate(http_requests_total{code!~"5.."}[5m])) / '
    "sum by (service) (rate(http_requests_total[5m]))",
    'avg by (instance) (node_load5) / count by (instance) (node_cpu_seconds_total{mode="idle"})',
    "rate(http_requests_total[5m]) / on (service, code, instance) "
    "rate(http_requests_total[10m])",
    "rate(http_requests_total[5m]) / ignoring (code) group_left "
    "sum without (code) (rate(http_requests_total[5m]))",
    "sum without (code) (rate(http_requests_total[5m])) / ignoring (code) group_right "
    "rate(http_requests_total[5m])",
    "http_requests_total * on (instance) group_left (job) up{job=\"api\"}",
    "node_cpu_seconds_total * on (instance) group_left node_load5",
    "node_load5 and on (instance) up == 1",
    "node_load5 and up",
    "node_load5 or up",
    "node_load5 unless on (instance) (up == 0)",
    "up == 0 or node_load5 > 3",
    "node_load5 > 1 and node_load5 < 3",
    'http_requests_total{code="200"} unless http_requests_total{service="api"}',
    "http_requests_total{code=\"500\"} or on (service) http_requests_total{code=\"404\"}",
    "vector(1) + node_load5",
    "node_load5 + on () group_left vector(1)",
    "rate(http_requests_total[5m]) > 1",
    "sum by (service) (rate(http_requests_total[5m])) > bool 5",
    "node_load5 atan2 2",
    "node_load5 == bool on (instance) node_load5",
    "node_load5 - ignoring (instance) group_left avg(node_load5)",
]

FUNCTIONS = [
    *(f"{fn}(temperature)" for fn in ("abs", "ceil", "floor", "exp", "ln", "log2", "log10",
                                       "sqrt", "sgn", "sin", "cos", "deg", "rad")),
    "round(temperature)",
    "round(temperature, 5)",
    "round(temperature, 0.1)",
    "clamp(temperature, -10, 10)",
    "clamp(temperature, 10, -10)",
    "clamp_min(temperature, 0)",
    "clamp_max(temperature, 0)",
    "scalar(node_load5)",
    'scalar(node_load5{instance="i1"})',
    'node_load5 * scalar(node_load5{instance="i2"})',
    "vector(1)",
    "vector(time())",
    "time()",
    "timestamp(node_load5)",
    "timestamp(http_requests_total)",
    "timestamp(sum(node_load5))",
    "absent(node_load5)",
    'absent(nonexistent{job="x", env="prod"})',
    'absent(nonexistent{job="x", job="y"})',
    'absent(http_requests_total{code="500", service="api", instance="i1"})',
    "absent(sum(nonexistent))",
    "histogram_quantile(0.95, sum by (le) (rate(pg_query_duration_seconds_bucket[5m])))",
    "histogram_quantile(0.5, rate(pg_query_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.99, sum by (le, instance) (rate(pg_query_duration_seconds_bucket[10m])))",
    "histogram_quantile(0, rate(pg_query_duration_seconds_bucket[5m]))",
    "histogram_quantile(1, rate(pg_query_duration_seconds_bucket[5m]))",
    "histogram_quantile(1.5, rate(pg_query_duration_seconds_bucket[5m]))",
    "histogram_quantile(-0.5, rate(pg_query_duration_seconds_bucket[5m]))",
    "histogram_quantile(0.9, pg_query_duration_seconds_bucket)",
    'histogram_quantile(0.9, pg_query_duration_seconds_bucket{le!="+Inf"})',
    'histogram_quantile(0.9, pg_query_duration_seconds_bucket{le=~"0.01|0.1|\\\\+Inf"})',
    "rate(pg_query_duration_seconds_sum[5m]) / rate(pg_query_duration_seconds_count[5m])",
    'label_replace(node_load5, "host", "$1", "instance", "i(.*)")',
    'label_replace(node_load5, "host", "x-$1-${1}y", "instance", "(i)(.)")',
    'label_replace(node_load5, "host", "$1", "instance", "nomatch(.*)")',
    'label_replace(node_load5, "__name__", "renamed", "", "")',
    'label_join(up, "both", "/", "job", "instance")',
    'label_join(up, "job", "", "nothing")',
    "sort(node_load5)",
    "sort_desc(rate(http_requests_total[5m]))",
    *(f"{fn}()" for fn in ("minute", "hour", "day_of_week", "day_of_month", "days_in_month",
                           "month", "year")),
    "hour(timestamp(node_load5))",
    "minute(vector(1700000000))",
    "days_in_month(vector(1709251199))",
    "pi()",
]

SUBQUERIES = [
    "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    "avg_over_time(node_load5[10m:1m])",
    "avg_over_time(node_load5[10m:])",
    "rate(http_requests_total[10m:30s])",
    "max_over_time(sum by (service) (rate(http_requests_total[5m]))[1h:5m])",
    "min_over_time(node_load5[15m:2m] offset 10m)",
    "sum_over_time((node_load5 > 2)[20m:1m])",
    "count_over_time(up[7m:45s])",
    "last_over_time(node_load5[5m:1m])",
    "deriv(temperature[30m:1m])",
    "increase(http_requests_total[15m:1m] offset -3m)",
    "max_over_time(deriv(rate(http_requests_total[5m])[10m:1m])[30m:2m])",
    "quantile_over_time(0.5, temperature[30m:3m])",
    "absent_over_time(node_load5[10m:1m])",
    "present_over_time(up[3m:1m])",
]

SPECIAL_VALUES = [
    "weird",
    *(f"{fn}(weird[5m])" for fn in ("avg_over_time", "min_over_time", "max_over_time",
                                   "sum_over_time", "stddev_over_time",
                                   "changes", "resets", "rate", "delta", "deriv", "idelta",
                                   "last_over_time")),
    "quantile_over_time(0.3, weird[5m])",
    "sum(weird)", "avg(weird)", "min(weird)", "max(weird)", "stddev(weird)",
    "quantile(0.5, weird)", "topk(1, weird)", "bottomk(1, weird)", 'count_values("v", weird)',
    "weird > 10", "weird == bool weird", "weird != weird", "weird * 0", "weird + on() group_left "
    'weird{kind="nan"}',
    "clamp(weird, 5, 15)", "round(weird)", "sgn(weird)", "abs(weird)",
    "histogram_quantile(0.5, label_replace(weird, \"le\", \"$1\", \"kind\", \"(inf)\"))",
    "scalar(weird{kind=\"nan\"}) * weird",
]

EMPTY_AND_NESTED = [
    "sum(nothing)", "nothing + 1", "count(nothing)", "scalar(nothing)", "vector(1) and nothing",
    "nothing or vector(1)", "histogram_quantile(0.5, nothing)", "topk(1, nothing)",
    "rate(nothing[5m])", "max_over_time(nothing[5m:1m])", "absent(nothing)",
    "absent_over_time(nothing[1m])", "sum by (x) (nothing) / on (x) group_left nothing",
    "abs(-rate(http_requests_total[5m]))",
    "ceil(histogram_quantile(0.9, sum by (le) (rate(pg_query_duration_seconds_bucket[5m]))) "
    "* 1000)",
    "scalar(sum(up)) / time()",
    "node_load5 or up or temperature",
    "http_requests_total unless ignoring (code) http_requests_total{code=\"500\"}",
    "node_cpu_seconds_total > on (instance) group_left () (node_load5 * 3000)",
    "avg_over_time(node_load5[10m:7s])",
    "rate(http_requests_total[5m:13s] offset 1m)",
    "sum_over_time(vector(1)[5m:1m])",
    "max_over_time(vector(time())[5m:1m])",
    "count(up offset 1h) by (job)",
    "sort_desc(topk(3, http_requests_total))",
    "(node_load5)",
    "((node_load5 + 1) * (node_load5 - 1))",
    "node_load5 ^ -1",
    "-node_load5 ^ 2",
    "2 * -node_load5",
    "1 - -1",
    "1 + -(2 * 3) ^ 2",
    "0x10 * node_load5",
    "1e3 / node_load5",
    ".5 * node_load5",
    "5. - node_load5",
    "bottomk(1, -node_load5) * -1",
]

MORE = [
    'http_requests_total{code=~"[[:digit:]]0[04]"}',
    'http_requests_total{service=~"(?i)AP."}',
    'http_requests_total{service=~"api|", code!~"2.*"}',
    'http_requests_total{service=~".*e.*", instance!~"i[^1]"}',
    r'http_requests_total{code=~`\Q404\E|5\d{2}`}',
    'label_replace(up, "ok", "yes", "job", "(?i)API")',
    'label_replace(up, "j", "$1", "job", "(a|d)[[:alpha:]]+")',
    "holt_winters(node_load5[10m], 0.5, 0.5)",
    "holt_winters(temperature[30m], 0.1, 0.9)",
    "holt_winters(rate(http_requests_total[5m])[30m:1m], 0.3, 0.6)",
    'label_join(up, "job", ",")',
    "day_of_year(timestamp(up))",
    "rate(http_requests_total[90s])",
    "rate(http_requests_total[1m30s] offset 7500ms)",
    "avg_over_time(node_load5[2m] offset 45s)",
    "+node_load5",
    "quantile(scalar(min(up)) * 0.5 + 0.25, node_load5)",
    "node_cpu_seconds_total > on (instance) group_left node_load5 * 1000",
    "node_cpu_seconds_total > bool on (instance) group_left node_load5 * 1000",
    "up == bool on (instance) group_left (job) up",
    r'label_replace(up, "dc", "$dc-$2", "instance", `(?P<dc>[a-z])(\d)`)',
    'label_replace(up, "x", "$$1 $10 ${1}0", "instance", "(.)(.)")',
    "hour(timestamp(node_load5)) + minute(timestamp(node_load5)) / 60",
    "sort(sum by (service) (rate(http_requests_total[5m])))",
    "count by (instance) (node_cpu_seconds_total) * on (instance) group_left avg by (instance) "
    "(node_load5)",
    "sum(rate(http_requests_total[5m])) by (service) / ignoring (service) group_left "
    "sum(rate(http_requests_total[5m]))",
    'http_requests_total{service!~"a.*|w.*"}',
    'http_requests_total{service=~"(?i)API"}',
    r"http_requests_total{code=~`[45]\d\d`}",
    "max by (instance) (rate(node_cpu_seconds_total{mode!=\"idle\"}[5m]))",
    "1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
    "increase(pg_query_duration_seconds_count[1h]) > 0",
    "sum_over_time(up[1h]) / count_over_time(up[1h])",
    "avg_over_time((up == bool 0)[30m:])",
    "max_over_time(max_over_time(node_load5[5m])[20m:5m])",
    "changes(node_load5[10m]) > 5",
    "resets(http_requests_total[1h])",
    "absent(up{job=\"db\"} == 7)",
    "time() - timestamp(up)",
    "vector(scalar(sum(up)))",
    "-sum(node_load5) + 2 * -1",
    "node_load5 offset 5m - node_load5",
    "delta(temperature[1h:5m])",
    "irate(http_requests_total[1m:15s])",
    "predict_linear(node_load5[15m:1m], 300)",
    "stddev_over_time(rate(node_cpu_seconds_total[5m])[15m:1m])",
    "topk(1, max_over_time(temperature[10m]))",
    "count_values(\"n\", count_over_time(node_load5[2m]))",
    "group(up) by (job)",
    "sum without (le) (rate(pg_query_duration_seconds_bucket[5m]))",
    "rate(pg_query_duration_seconds_bucket{le=\"+Inf\"}[5m]) - ignoring (le) "
    "rate(pg_query_duration_seconds_count[5m])",
]

EXPRESSIONS = (EMPTY_AND_NESTED + MORE + SPECIAL_VALUES + SELECTORS + RANGE_FUNCTIONS + AGGREGATIONS + BINARY
               + FUNCTIONS + SUBQUERIES)


def _prom_matrix(data: dict[str, Any]) -> dict[Labels, dict[float, float]]:
    return {Labels(r["metric"]): {float(t): float(v) for t, v in r["values"]}
            for r in data["result"]}


def _ours(expr: str, storage: Any, start: float, end: float, step: float
          ) -> dict[Labels, dict[float, float]]:
    result = evaluate_range(expr, storage, start, end, step)
    out = {}
    for i, (labels, values) in enumerate(result.series):
        mask = result.present[i]
        out[labels] = {float(t): float(v) for t, v in
                       zip(result.timestamps[mask], values[mask], strict=True)}
    return out


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


def _compare(expected: dict[Labels, dict[float, float]],
             got: dict[Labels, dict[float, float]]) -> list[str]:
    problems = []
    for labels in sorted(set(expected) | set(got)):
        if labels not in got:
            problems.append(f"missing series {labels}")
            continue
        if labels not in expected:
            problems.append(f"extra series {labels}")
            continue
        e, g = expected[labels], got[labels]
        for t in sorted(set(e) | set(g)):
            if t not in g:
                problems.append(f"{labels} @{t}: missing point (want {e[t]})")
            elif t not in e:
                problems.append(f"{labels} @{t}: extra point {g[t]}")
            elif not _same(e[t], g[t]):
                problems.append(f"{labels} @{t}: want {e[t]!r}, got {g[t]!r}")
    return problems


@pytest.mark.parametrize("step", [60.0, 15.0, 431.0], ids=["1m", "15s", "431s"])
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_range_query_matches_prometheus(reference: Any, expr: str, step: float) -> None:
    """A range query over 6h+ returns the same series, labels, points and values as Prometheus."""
    if step == 15.0:
        start, end = reference.first + 1800.0, reference.first + 1800.0 + 6 * 3600
    else:
        # Off-grid start before the first sample, end after the last: exercises both edges.
        start, end = reference.first - 1207.5, reference.last + 900.0
    answer = reference.get("/api/v1/query_range", query=expr, start=start, end=end, step=step)
    assert answer["status"] == "success", answer
    problems = _compare(_prom_matrix(answer["data"]),
                        _ours(expr, reference.storage, start, end, step))
    assert not problems, f"{len(problems)} differences, first: " + "\n".join(problems[:8])


INSTANT = [
    "1", "0.5", "1e6", "1e-7", "0.000001", "1.5e21", "1e21", "123456789.125", "-0.25", "NaN",
    "Inf", "-Inf", "0.1 + 0.2", "1/3", "2^70", '"a string"', "node_load5", "node_load5[2m]",
    "rate(http_requests_total[5m])[10m:1m]", "http_requests_total[1m] offset 5m",
    "sort(node_load5)", "sort_desc(node_load5)", "vector(1e-9)", "vector(1e-7)",
    "vector(0.000001)", "vector(2^70)",
    "vector(1e21)", "vector(-1.5e-8)", "vector(123456.789)", "-vector(0)", "scalar(up)",
    'count_values("v", node_load5)', "temperature / 7",
]


@pytest.mark.parametrize("expr", INSTANT)
def test_instant_query_json_matches_prometheus(reference: Any, expr: str) -> None:
    """An instant query's API JSON (types, labels, number formatting, order) equals Prometheus's."""
    t = reference.last - 600.25
    answer = reference.get("/api/v1/query", query=expr, time=t)
    assert answer["status"] == "success", answer
    ours = evaluate_instant(expr, reference.storage, t).to_api_json()
    expected = answer["data"]
    if expected["resultType"] == "vector" and not expr.startswith("sort"):
        expected["result"].sort(key=lambda r: sorted(r["metric"].items()))
    if expected["resultType"] == "matrix":
        expected["result"].sort(key=lambda r: sorted(r["metric"].items()))
    if expr == "temperature / 7":  # computed values may differ in the last digit
        for e, o in zip(expected["result"], ours["result"], strict=True):
            assert np.isclose(float(e["value"][1]), float(o["value"][1]), rtol=REL)
            e["value"][1] = o["value"][1]
    assert ours == expected


ERRORS = [
    "rate(node_load5)",
    "sum(node_load5[5m])",
    "1 > 2",
    "node_load5 and 1",
    "http_requests_total + on (service) http_requests_total",
    "http_requests_total * on (service) group_left node_load5",
    'label_replace(node_load5, "1x", "", "", "")',
    "node_load5[5m]",
    "topk(scalar(count(nothing)), node_load5)",
    "holt_winters(node_load5[10m], 1, 0.5)",
    "holt_winters(node_load5[10m], 0.5, 0)",
    'label_replace(node_load5, "instance", "", "instance", ".*")',
    "node_load5 + on () node_load5",
]


@pytest.mark.parametrize("expr", ERRORS)
def test_errors_where_prometheus_errors(reference: Any, expr: str) -> None:
    """A query Prometheus rejects (at parse or evaluation time) raises PromQLError here too."""
    start, end = reference.first + 600, reference.first + 3600
    answer = reference.get("/api/v1/query_range", query=expr, start=start, end=end, step=60)
    assert answer["status"] == "error", answer
    with pytest.raises(PromQLError):
        evaluate_range(expr, reference.storage, start, end, 60)


def _prom_vector(data: dict[str, Any]) -> dict[Labels, float]:
    if data["resultType"] == "scalar":
        return {Labels(): float(data["result"][1])}
    return {Labels(r["metric"]): float(r["value"][1]) for r in data["result"]}


@pytest.mark.parametrize("offset", ["inside", "gap", "after-end", "lookback-edge"])
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_instant_query_matches_prometheus(reference: Any, expr: str, offset: str) -> None:
    """An instant query at one time gives the same labels and values as Prometheus."""
    t = {"inside": reference.last - 3600.5, "gap": reference.first + 650 * 15 + 7.25,
         "after-end": reference.last + 200,
         # Exactly 5 minutes after unjittered last samples: 2.x's lookback includes its edge.
         "lookback-edge": reference.last + 300}[offset]
    answer = reference.get("/api/v1/query", query=expr, time=t)
    assert answer["status"] == "success", answer
    expected = _prom_vector(answer["data"])
    result = evaluate_instant(expr, reference.storage, t)
    got = ({Labels(): result.data} if result.result_type == "scalar"
           else {s.labels: s.value for s in result.data})
    assert set(got) == set(expected)
    bad = {k: (expected[k], got[k]) for k in expected if not _same(expected[k], got[k])}
    assert not bad


@pytest.mark.parametrize("expr", ["node_load5", "weird", "up offset 3m", "vector(1e-7)",
                                  "-vector(0)", "vector(2^70)", "time()", "temperature"])
def test_range_query_json_matches_prometheus(reference: Any, expr: str) -> None:
    """For raw or literal values, the whole query_range `data` JSON is identical, byte for byte."""
    start, end = reference.first - 607.5, reference.first + 3 * 3600
    answer = reference.get("/api/v1/query_range", query=expr, start=start, end=end, step=30)
    assert answer["status"] == "success", answer
    ours = evaluate_range(expr, reference.storage, start, end, 30).to_api_json()
    assert ours == answer["data"]
