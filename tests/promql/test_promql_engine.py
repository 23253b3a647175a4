"""The evaluator on small in-memory data with hand-computed expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from incident.model import Labels
from incident.sources.promql import PromQLError, evaluate_instant, evaluate_range
from incident.sources.promql.format import format_value, format_value_label
from incident.sources.promql.storage import STALE_NAN, MemoryStorage, RawSeries


def _series(name: str, labels: dict[str, str], points: list[tuple[float, float]]) -> RawSeries:
    t, v = zip(*points, strict=True) if points else ((), ())
    return RawSeries(Labels({"__name__": name, **labels}), np.array(t, float), np.array(v, float))


STORE = MemoryStorage([
    # A counter growing 1/s, sampled every 15 s from t=0 to t=600.
    _series("lin", {"job": "a"}, [(t, t) for t in range(0, 601, 15)]),
    # A counter that starts late at t=100 with value 10.
    _series("late", {}, [(100, 10), (115, 25), (130, 40)]),
    # A counter with one reset.
    _series("reset", {}, [(0, 5), (15, 10), (30, 2), (45, 6)]),
    # A gauge that is marked stale at t=30.
    _series("g", {"i": "1"}, [(0, 1), (15, 2), (30, STALE_NAN)]),
    _series("g", {"i": "2"}, [(0, 3), (15, 4), (30, 5)]),
    _series("once", {}, [(0, 7)]),
    _series("a", {"x": "1", "y": "a"}, [(0, 1)]),
    _series("a", {"x": "1", "y": "b"}, [(0, 2)]),
    _series("b", {"x": "1"}, [(0, 10)]),
    *(_series("h_bucket", {"le": le}, [(0, c)]) for le, c in
      (("0.1", 2), ("0.5", 6), ("1", 8), ("+Inf", 10))),
    *(_series("bad_bucket", {"le": le}, [(0, c)]) for le, c in
      (("0.1", 3), ("0.5", 2), ("1", 8), ("+Inf", 10))),
    *(_series("noinf_bucket", {"le": le}, [(0, c)]) for le, c in (("0.1", 3), ("1", 8))),
    _series("nan_gauge", {}, [(0, math.nan), (15, 1.0), (30, 3.0)]),
])


def _instant(expr: str, t: float) -> dict[Labels, float]:
    result = evaluate_instant(expr, STORE, t)
    if result.result_type == "scalar":
        return {Labels(): result.data}
    return {s.labels: s.value for s in result.data}


@pytest.mark.parametrize(("expr", "t", "expected"), [
    # Closed window [t-1m, t]: 5 samples at 60..120; boundaries hit exactly, no extrapolation.
    ("rate(lin[1m])", 120, {Labels({"job": "a"}): 1.0}),
    ("count_over_time(lin[1m])", 120, {Labels({"job": "a"}): 5.0}),
    ("increase(lin[1m])", 130, {Labels({"job": "a"}): 60.0}),
    # Extrapolation toward the start stops where the counter would reach zero (10 s back).
    ("increase(late[1m])", 130, {Labels(): 40.0}),
    ("rate(late[1m])", 130, {Labels(): 40.0 / 60}),
    # delta does not zero-clip: the start is 30 s away (> 1.1 × 15 s), so it adds 7.5 s.
    ("delta(late[1m])", 130, {Labels(): 37.5}),
    # A reset adds the value before it: 6 - 5 + 10 = 11 over 45 s, extrapolated to 60 s.
    ("increase(reset[1m])", 45, {Labels(): 11 * 60 / 45}),
    ("resets(reset[1m])", 45, {Labels(): 1.0}),
    ("changes(reset[1m])", 45, {Labels(): 3.0}),
    ("irate(reset[1m])", 45, {Labels(): 4 / 15}),
    ("irate(reset[1m])", 30, {Labels(): 2 / 15}),
    ("idelta(reset[1m])", 30, {Labels(): -8.0}),
    ("deriv(lin[1m])", 120, {Labels({"job": "a"}): 1.0}),
    ("predict_linear(lin[1m], 60)", 120, {Labels({"job": "a"}): 180.0}),
    # The 5-minute lookback is closed at its left edge in Prometheus 2.x.
    ("once", 300, {Labels({"__name__": "once"}): 7.0}),
    ("once", 300.001, {}),
    # A stale marker hides the series at once; the other one is unaffected.
    ("g", 20, {Labels({"__name__": "g", "i": "1"}): 2.0, Labels({"__name__": "g", "i": "2"}): 4.0}),
    ("g", 31, {Labels({"__name__": "g", "i": "2"}): 5.0}),
    ("count_over_time(g[1m])", 60, {Labels({"i": "1"}): 2.0, Labels({"i": "2"}): 3.0}),
    ("last_over_time(g[1m])", 60, {Labels({"__name__": "g", "i": "1"}): 2.0,
                                   Labels({"__name__": "g", "i": "2"}): 5.0}),
    ("g offset 10s", 25, {Labels({"__name__": "g", "i": "1"}): 2.0,
                          Labels({"__name__": "g", "i": "2"}): 4.0}),
    ("g offset -10s", 5, {Labels({"__name__": "g", "i": "1"}): 2.0,
                          Labels({"__name__": "g", "i": "2"}): 4.0}),
    # NaN is a sample: min/max skip it, sum and avg propagate it.
    ("min_over_time(nan_gauge[1m])", 30, {Labels(): 1.0}),
    ("max_over_time(nan_gauge[1m])", 30, {Labels(): 3.0}),
    ("quantile_over_time(0, nan_gauge[1m])", 30, {Labels(): math.nan}),
    ("quantile_over_time(1, nan_gauge[1m])", 30, {Labels(): 3.0}),
    ("stddev_over_time(g[1m])", 60, {Labels({"i": "1"}): 0.5, Labels({"i": "2"}): math.sqrt(2 / 3)}),
    ("sum(g)", 20, {Labels(): 6.0}),
    ("avg without (i) (g)", 20, {Labels(): 3.0}),
    ("max by (i) (g)", 20, {Labels({"i": "1"}): 2.0, Labels({"i": "2"}): 4.0}),
    ("quantile(0.5, g)", 20, {Labels(): 3.0}),
    ("topk(1, g)", 20, {Labels({"__name__": "g", "i": "2"}): 4.0}),
    ("bottomk(1, g)", 20, {Labels({"__name__": "g", "i": "1"}): 2.0}),
    ('count_values("v", g)', 20, {Labels({"v": "2"}): 1.0, Labels({"v": "4"}): 1.0}),
    ("stdvar(g)", 20, {Labels(): 1.0}),
    # group_left copies the "one" side's value; on() one-to-one would be ambiguous here.
    ("a * on (x) group_left b", 0, {Labels({"x": "1", "y": "a"}): 10.0,
                                    Labels({"x": "1", "y": "b"}): 20.0}),
    ("b / on (x) group_right a", 0, {Labels({"x": "1", "y": "a"}): 10.0,
                                     Labels({"x": "1", "y": "b"}): 5.0}),
    ("a > 1", 0, {Labels({"__name__": "a", "x": "1", "y": "b"}): 2.0}),
    ("a > bool 1", 0, {Labels({"x": "1", "y": "a"}): 0.0, Labels({"x": "1", "y": "b"}): 1.0}),
    ("a and on (y) a{y=\"a\"}", 0, {Labels({"__name__": "a", "x": "1", "y": "a"}): 1.0}),
    ("a unless on (y) a{y=\"a\"}", 0, {Labels({"__name__": "a", "x": "1", "y": "b"}): 2.0}),
    ("b or a", 0, {Labels({"__name__": "b", "x": "1"}): 10.0,
                   Labels({"__name__": "a", "x": "1", "y": "a"}): 1.0,
                   Labels({"__name__": "a", "x": "1", "y": "b"}): 2.0}),
    # Interpolation inside the bucket (0.1, 0.5]: 0.1 + 0.4 × (5 - 2) / (6 - 2).
    ("histogram_quantile(0.5, h_bucket)", 0, {Labels(): 0.4}),
    # Past the last finite bucket: its upper bound.
    ("histogram_quantile(0.95, h_bucket)", 0, {Labels(): 1.0}),
    ("histogram_quantile(2, h_bucket)", 0, {Labels(): math.inf}),
    ("histogram_quantile(-1, h_bucket)", 0, {Labels(): -math.inf}),
    # A decreasing bucket is raised to its predecessor (3), then 0.1 × 2.5 / 3.
    ("histogram_quantile(0.25, bad_bucket)", 0, {Labels(): 0.1 * 2.5 / 3}),
    ("histogram_quantile(0.5, noinf_bucket)", 0, {Labels(): math.nan}),
    # The subquery grid is aligned to multiples of its step: 20, 40, 60 lie in [10, 70].
    ("count_over_time(vector(1)[1m:20s])", 70, {Labels(): 3.0}),
    ("count_over_time(vector(1)[1m:20s])", 60, {Labels(): 4.0}),
    ("absent(nothing{job=\"x\"})", 0, {Labels({"job": "x"}): 1.0}),
    ("absent(g)", 0, {}),
    ('label_replace(b, "z", "$1-$x", "x", "(.*)")', 0, {Labels({"__name__": "b", "x": "1",
                                                              "z": "1-"}): 10.0}),
    ('label_join(a, "j", ",", "x", "y")', 0, {
        Labels({"__name__": "a", "x": "1", "y": "a", "j": "1,a"}): 1.0,
        Labels({"__name__": "a", "x": "1", "y": "b", "j": "1,b"}): 2.0}),
    ("round(vector(2.5))", 0, {Labels(): 3.0}),
    ("round(vector(-2.5))", 0, {Labels(): -2.0}),
    ("clamp(g, 2.5, 3.5)", 20, {Labels({"i": "1"}): 2.5, Labels({"i": "2"}): 3.5}),
    ("timestamp(g)", 20, {Labels({"i": "1"}): 15.0, Labels({"i": "2"}): 15.0}),
    ("scalar(g)", 20, {Labels(): math.nan}),
    ("day_of_week(vector(86400 * 3))", 0, {Labels(): 0.0}),
    ("days_in_month(vector(2678400))", 0, {Labels(): 28.0}),
    ("2 ^ 3 ^ 2", 0, {Labels(): 512.0}),
    ("-2 ^ 2", 0, {Labels(): -4.0}),
    ("7 % -3", 0, {Labels(): 1.0}),
])
def test_instant_values(expr: str, t: float, expected: dict[Labels, float]) -> None:
    """Each expression gives the hand-computed series and values at one instant."""
    got = _instant(expr, t)
    assert set(got) == set(expected)
    for labels, value in expected.items():
        if math.isnan(value):
            assert math.isnan(got[labels])
        else:
            assert got[labels] == pytest.approx(value, rel=1e-12)


def test_range_query_grid_and_missing_points() -> None:
    """Range steps run start, start+step, … ≤ end; absent steps are NaN and flagged absent."""
    result = evaluate_range("g", STORE, 0, 40, 10)
    assert list(result.timestamps) == [0, 10, 20, 30, 40]
    (l1, v1), (_, v2) = result.series
    assert l1 == Labels({"__name__": "g", "i": "1"})
    assert np.array_equal(v1, [1, 1, 2, np.nan, np.nan], equal_nan=True)
    assert list(v2) == [3, 3, 4, 5, 5]
    assert list(result.present[0]) == [True, True, True, False, False]


def test_scalar_range_query_is_one_unlabelled_series() -> None:
    """A scalar expression in a range query comes back as a matrix with one empty-label series."""
    result = evaluate_range("time() * 2", STORE, 0, 20, 10)
    assert result.result_type == "matrix"
    assert [(labels, list(v)) for labels, v in result.series] == [(Labels(), [0, 20, 40])]
    assert result.to_api_json() == {"resultType": "matrix", "result": [
        {"metric": {}, "values": [[0, "0"], [10, "20"], [20, "40"]]}]}


def test_instant_result_json_shapes() -> None:
    """Instant results render like the Prometheus API for each result type."""
    assert evaluate_instant("1.5", STORE, 10).to_api_json() == {
        "resultType": "scalar", "result": [10, "1.5"]}
    assert evaluate_instant('"hi"', STORE, 10.5).to_api_json() == {
        "resultType": "string", "result": [10.5, "hi"]}
    assert evaluate_instant("g{i=\"2\"}[20s]", STORE, 30).to_api_json() == {
        "resultType": "matrix", "result": [
            {"metric": {"__name__": "g", "i": "2"}, "values": [[15, "4"], [30, "5"]]}]}
    assert evaluate_instant("sort_desc(g)", STORE, 20).to_api_json() == {
        "resultType": "vector", "result": [
            {"metric": {"__name__": "g", "i": "2"}, "value": [20, "4"]},
            {"metric": {"__name__": "g", "i": "1"}, "value": [20, "2"]}]}


@pytest.mark.parametrize(("value", "point", "label"), [
    (1.0, "1", "1"), (0.5, "0.5", "0.5"), (1e6, "1000000", "1000000"),
    (1e-7, "1e-07", "0.0000001"), (2.0**70, "1.1805916207174113e+21", "1180591620717411300000"),
    (-0.0, "-0", "-0"), (math.nan, "NaN", "NaN"), (math.inf, "+Inf", "+Inf"),
    (-math.inf, "-Inf", "-Inf"), (0.1 + 0.2, "0.30000000000000004", "0.30000000000000004"),
])
def test_value_formatting(value: float, point: str, label: str) -> None:
    """Points print like Prometheus's JSON (e-notation outside [1e-6, 1e21)); labels like Go's 'f'."""
    assert format_value(value) == point
    assert format_value_label(value) == label


@pytest.mark.parametrize(("expr", "message"), [
    ("a * on (x) b", "multiple matches for labels: many-to-one matching must be explicit "
                     "(group_left/group_right)"),
    ("b * on (x) group_left a", "found duplicate series for the match group"),
    ('label_replace(g, "i", "", "i", ".*")', "vector cannot contain metrics with the same "
                                             "labelset"),
    ('count_values("1x", g)', 'invalid label name "1x"'),
    ("rate(lin[5m]) @ 10", "unsupported: @ modifier"),
])
def test_runtime_errors(expr: str, message: str) -> None:
    """Ambiguous matches and label collisions are errors, never a silently wrong answer."""
    with pytest.raises(PromQLError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate_range(expr, STORE, 0, 20, 10)


def test_range_vector_is_not_a_range_query() -> None:
    """A range vector at the top of a range query is refused, as Prometheus does."""
    with pytest.raises(PromQLError, match='invalid expression type "range vector"'):
        evaluate_range("g[1m]", STORE, 0, 20, 10)


@pytest.mark.parametrize(("pattern", "value", "hit"), [
    (r"5\d\d", "503", True),
    (r"5\d\d", "5٠٣", False),  # Go's \d is ASCII only
    ("[[:alpha:]]+", "abc", True),
    ("[[:alpha:]]+", "a1", False),
    ("a.c", "a\nc", False),  # 2.42: '.' does not match a newline
    ("(?i)api", "API", True),
    ("a|b", "ab", False),  # anchored around the whole alternation
    (r"\Qa.b\E", "a.b", True),
    (r"\Qa.b\E", "axb", False),
    ("[^]a]", "]", False),
])
def test_regex_matchers_follow_go_re2(pattern: str, value: str, hit: bool) -> None:
    """Label regexes mean what they mean in Prometheus (RE2, fully anchored)."""
    from incident.sources.promql.storage import Matcher, MatchOp

    assert Matcher("l", MatchOp.RE, pattern).matches(Labels({"l": value})) is hit


def test_equal_labels_at_different_steps_merge() -> None:
    """Series whose labels become equal join into one series when they never overlap in time."""
    store = MemoryStorage([
        _series("m1", {"a": "1"}, [(t, t) for t in range(0, 61, 15)]),
        _series("m2", {"a": "1"}, [(t, t) for t in range(400, 461, 15)]),
    ])
    result = evaluate_range('rate({__name__=~"m1|m2"}[1m])', store, 0, 460, 20)
    assert [labels for labels, _ in result.series] == [Labels({"a": "1"})]
    present = result.timestamps[result.present[0]]
    assert present.min() == 20 and present.max() == 460 and 200 not in present


def test_equal_labels_at_the_same_step_are_an_error() -> None:
    """Two series that collide at one step make the query fail, as in Prometheus."""
    store = MemoryStorage([
        _series("m1", {"a": "1"}, [(0, 1)]),
        _series("m2", {"a": "1"}, [(0, 2)]),
    ])
    with pytest.raises(PromQLError, match="same labelset"):
        evaluate_range('{__name__=~"m1|m2"} * 2', store, 0, 0, 1)


@pytest.mark.parametrize(("values", "expected"), [
    ([1.0, 2.0, 6.0], 3.0),
    ([math.inf, 1.0, 2.0], math.inf),
    ([math.inf, -math.inf], math.nan),  # Inf + (-Inf/2 - Inf/2)
    ([-math.inf, 5.0, math.inf], math.nan),
    ([1e308, 1e308], 1e308),  # no overflow: the running mean never forms the sum
    ([math.inf, math.nan], math.nan),
])
def test_avg_follows_prometheus_running_mean(values: list[float], expected: float) -> None:
    """avg and avg_over_time treat infinities and overflow like Prometheus 2.42."""
    store = MemoryStorage([_series("v", {"i": str(i)}, [(0, v)]) for i, v in enumerate(values)]
                          + [_series("w", {}, [(i, v) for i, v in enumerate(values)])])
    avg = _instant_in(store, "avg(v)", 0)
    over_time = _instant_in(store, "avg_over_time(w[1m])", len(values) - 1)
    for got in (avg, over_time):
        assert (math.isnan(got) if math.isnan(expected) else got == expected), got


def _instant_in(store: MemoryStorage, expr: str, t: float) -> float:
    (sample,) = evaluate_instant(expr, store, t).data
    return float(sample.value)
