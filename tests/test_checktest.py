"""`incident checks test`: the expanding notation, the file format's errors, passing and failing runs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from incident.checktest import expand, parse_file, series_labels
from incident.cli import main
from incident.config import load_project
from incident.errors import ConfigError
from incident.model import Labels
from incident.sources.promql.storage import is_stale

REPO = Path(__file__).resolve().parent.parent

CHECK = """
name: pay
query: min by (provider) (payment_success_ratio)
lookback: 1h
detector: {type: threshold, below: 0.9, for: 5m}
group_by: [provider]
"""

PASSING = """
evaluation_interval: 1m
tests:
  - name: a 10-minute dip opens one incident and recovery resolves it
    input_series:
      - series: 'payment_success_ratio{provider="alipay"}'
        values: '0.99x9 0.5x9 0.99x20'
      - series: 'payment_success_ratio{provider="card"}'
        values: '0.99x39'
    expect:
      - at: 16m
        incidents:
          - {check: pay, labels: {provider: alipay}, status: open, detected_at: 10m, opened_at: 15m}
        firing:
          - {check: pay, labels: {provider: alipay}, value: 0.5}
      - at: 30m
        incidents:
          - {check: pay, labels: {provider: alipay}, status: resolved, resolved_at: 20m}
        firing: []
  - name: a dip shorter than `for` opens nothing; a stale marker is no data, not a breach
    interval: 30s
    input_series:
      - series: 'payment_success_ratio{provider="card"}'
        values: '0.99x19 0.5x5 0.99x9 stale _x10 0.99x30'
    expect:
      - at: 30m
        incidents: []
        firing: []
"""

FAILING_EXPECT = """
      - at: 16m
        incidents:
          - {check: pay, labels: {provider: alipay}, detected_at: 11m}
        firing:
          - {check: pay, labels: {provider: alipay}, value: 0.6}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A one-check project (payments below 0.9 for 5m, by provider) with its tests directory."""
    root = tmp_path / "shop"
    (root / "checks" / "tests").mkdir(parents=True)
    (root / "runbooks").mkdir()
    (root / "incident.yaml").write_text("sources:\n  local: {type: file, path: data/}\n")
    (root / "checks" / "pay.yaml").write_text(CHECK)
    return root


def invoke(root: Path, *args: str) -> tuple[int, str]:
    """`incident --project ROOT ARGS`: exit code and combined output."""
    result = CliRunner().invoke(main, ["--project", str(root), *args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


@pytest.mark.parametrize(("text", "values"), [
    ("0+10x3", [0, 10, 20, 30]),
    ("-2+4x3", [-2, 2, 6, 10]),
    ("1-2x4", [1, -1, -3, -5, -7]),
    ("1x4", [1, 1, 1, 1, 1]),
    ("1 _ 3", [1, None, 3]),
    ("1 _x3 2", [1, None, None, None, 2]),
    ("0.5 1e3 1e+3x1 -Inf", [0.5, 1000, 1000, 1000, -math.inf]),
    ("", []),
])
def test_expanding_notation_matches_promtool(text: str, values: list[float | None]) -> None:
    """a+bxn gives n+1 values, axn repeats, _ is one gap and _xn n gaps, as promtool documents."""
    assert expand(text) == values


def test_stale_is_the_prometheus_stale_marker_and_nan_an_ordinary_value() -> None:
    """`stale` is the exact StaleNaN bit pattern; NaN is a plain NaN sample."""
    values = expand("1 stale NaN")
    assert values[0] == 1
    marks = np.array(values[1:], dtype=np.float64)
    assert is_stale(marks).tolist() == [True, False] and np.isnan(marks).all()


@pytest.mark.parametrize("token", ["1+x3", "abc", "1+2", "_x", "1x"])
def test_unreadable_tokens_are_named(token: str) -> None:
    """A token the notation does not cover is a ValueError that quotes it."""
    with pytest.raises(ValueError, match=re.escape(f"cannot read {token!r}")):
        expand(token)


def test_series_are_plain_selectors() -> None:
    """A series is a metric with equality matchers; anything else is refused."""
    assert series_labels('up{job="node",instance="a"}') == Labels(
        {"__name__": "up", "job": "node", "instance": "a"})
    for bad in ('rate(up[5m])', 'up{job=~"n.*"}', "up offset 5m"):
        with pytest.raises(ValueError):
            series_labels(bad)


def test_every_problem_is_reported_with_file_line_and_column(tmp_path: Path) -> None:
    """Bad durations, series, values, check names, statuses and empty expectations, all at once."""
    path = tmp_path / "bad.yaml"
    path.write_text("""evaluation_interval: soon
tests:
  - name: broken
    input_series:
      - series: 'rate(x[5m])'
        values: '1+x3 2'
      - series: 'ok'
    checks: [pya]
    expect:
      - at: 5m
        incidents: [{check: pay, status: closed}]
      - at: 6m
  - input_series: {}
    expect: []
    extra: 1
""")
    with pytest.raises(ConfigError) as caught:
        parse_file(path, "bad.yaml", ["pay"])
    assert [str(p) for p in caught.value.problems] == [
        "bad.yaml:1:22: evaluation_interval: expected a duration like 30s, 5m, 1h or 7d, "
        "got 'soon'",
        "bad.yaml:5:17: tests[0].input_series[0].series: expected a series like "
        "name{label=\"value\"}, got 'rate(x[5m])'",
        "bad.yaml:6:17: tests[0].input_series[0].values: cannot read '1+x3' (expected a number, "
        "a+bxn, a-bxn, axn, _, _xn or stale)",
        "bad.yaml:7:9: tests[0].input_series[1]: missing required key 'values'",
        "bad.yaml:8:14: tests[0].checks: unknown check 'pya' (known: pay); did you mean 'pay'?",
        "bad.yaml:11:42: tests[0].expect[0].incidents[0].status: unknown status 'closed' "
        "(known: open, resolved)",
        "bad.yaml:12:9: tests[0].expect[1]: expected 'incidents', 'firing' or both",
        "bad.yaml:15:5: tests[1].extra: unknown key 'extra' (known: checks, expect, input_series, "
        "interval, name)",
        "bad.yaml:13:19: tests[1].input_series: expected a list",
    ]


def test_invalid_yaml_is_a_positioned_problem(tmp_path: Path) -> None:
    """YAML that does not parse names the line and column, like the check files."""
    path = tmp_path / "broken.yaml"
    path.write_text("tests:\n  - name: [unclosed\n")
    with pytest.raises(ConfigError) as caught:
        parse_file(path, "broken.yaml")
    [problem] = caught.value.problems
    assert str(problem).startswith("broken.yaml:3:1: invalid YAML: ")


def test_a_passing_file_passes_through_the_real_engine(project: Path) -> None:
    """Both tests pass: incidents opened, resolved, and a short dip and a stale gap ignored."""
    (project / "checks" / "tests" / "pay.yaml").write_text(PASSING)
    code, out = invoke(project, "checks", "test", str(project / "checks" / "tests" / "pay.yaml"))
    assert code == 0, out
    assert out.splitlines()[1:] == [
        "  PASS  a 10-minute dip opens one incident and recovery resolves it",
        "  PASS  a dip shorter than `for` opens nothing; a stale marker is no data, not a breach",
        "  2 tests, all passed",
    ]


def test_a_failing_file_shows_expected_and_got_and_exits_1(project: Path) -> None:
    """Each failed expectation prints what was expected and what the engine produced."""
    failing = PASSING.replace(PASSING[PASSING.index("      - at: 16m"):
                                      PASSING.index("      - at: 30m")], FAILING_EXPECT)
    path = project / "checks" / "tests" / "pay.yaml"
    path.write_text(failing)
    code, out = invoke(project, "checks", "test", str(path))
    assert code == 1
    assert out == f"""{path}
  FAIL  a 10-minute dip opens one incident and recovery resolves it
        at 16m ({path}:12:9): incidents differ
          expected:
            pay{{provider="alipay"}} open detected_at=11m
          got:
            pay{{provider="alipay"}} open detected_at=10m opened_at=15m reopened=0
        at 16m ({path}:12:9): firing differ
          expected:
            pay{{provider="alipay"}} value=0.6
          got:
            pay{{provider="alipay"}} value=0.5
  PASS  a dip shorter than `for` opens nothing; a stale marker is no data, not a breach
  2 tests, 1 failed
"""


def test_json_output_and_tests_are_not_read_as_checks(project: Path) -> None:
    """--json reports each test; a file under checks/tests/ is never loaded as a check."""
    path = project / "checks" / "tests" / "pay.yaml"
    path.write_text(PASSING)
    assert [c.name for c in load_project(project, {}).checks] == ["pay"]
    code, out = invoke(project, "checks", "test", str(path), "--json")
    import json

    [report] = json.loads(out)
    assert code == 0 and report["passed"] and [t["passed"] for t in report["tests"]] == [True, True]


def test_a_bad_test_file_exits_2_with_every_problem(project: Path) -> None:
    """A malformed test file is a configuration error (exit 2), every problem printed."""
    path = project / "checks" / "tests" / "pay.yaml"
    path.write_text("tests:\n  - input_series: []\n    expect: [{at: 1m, incidents: [{check: nope}]}]\n")
    code, out = invoke(project, "checks", "test", str(path))
    assert code == 2
    assert f"{path}:3:43: tests[0].expect[0].incidents[0].check: unknown check 'nope'" in out


def test_the_sample_project_checks_pass_their_tests(tmp_path: Path) -> None:
    """Every sample check has tests under checks/tests/, and they all pass."""
    files = sorted((REPO / "checks" / "tests").glob("*.yaml"))
    if not files:
        pytest.skip("the sample project has no check tests yet")
    code, out = invoke(REPO, "checks", "test", *map(str, files))
    assert code == 0, out
    tested = {line for f in files for line in f.read_text().splitlines()}
    for check in load_project(REPO, {}).checks:
        assert any(f"check: {check.name}" in line or check.name in line for line in tested), \
            f"sample check {check.name} has no test in checks/tests/"
