"""`incident checks backtest` agrees exactly with running the real engine at every step."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident import backtest as bt
from incident.checktest import StorageSource
from incident.cli import main
from incident.config import load_project
from incident.engine import Engine
from incident.errors import UsageError
from incident.model import Project
from incident.notify import Notifier
from incident.simulator import Fault, simulate, write_openmetrics
from incident.sources.promql.storage import MemoryStorage
from incident.store import Store

END = datetime(2026, 11, 9, tzinfo=UTC)
M, H, D = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

# Scripted faults in the last day, each aimed at a rule: a plain incident; two bursts 10
# minutes apart (reopened within reopen_window); a 5-hour payment failure (longer than the
# 2-hour lookback: the breach leaves the window while the incident stays open); an instance
# down for 3 hours (no data past the lookback: no_data alert, absent); a database slowdown
# (hysteresis via clear); a load spike; a short outage.
FAULTS = (
    Fault(what="api-errors", target="checkout", magnitude=0.05, start=-23 * H, end=-23 * H + 30 * M),
    Fault(what="api-errors", target="api", magnitude=0.05, start=-21 * H, end=-21 * H + 15 * M),
    Fault(what="api-errors", target="api", magnitude=0.05, start=-21 * H + 25 * M,
          end=-21 * H + 40 * M),
    Fault(what="payment-failure", target="alipay", magnitude=0.7, start=-19 * H, end=-14 * H),
    Fault(what="instance-down", target="web-3", magnitude=1, start=-13 * H, end=-10 * H),
    Fault(what="db-slowdown", target="db-primary", magnitude=8, start=-9 * H, end=-9 * H + 40 * M),
    Fault(what="load-spike", target="web-2", magnitude=2, start=-7 * H, end=-7 * H + 40 * M),
    Fault(what="instance-down", target="web-1", magnitude=1, start=-5 * H, end=-5 * H + 20 * M),
)

CHECKS = """
- name: api-success-rate
  query: |
    sum by (service) (rate(http_requests_total{code!~"5.."}[5m]))
      / sum by (service) (rate(http_requests_total[5m]))
  detector: {type: threshold, below: 0.99, for: 5m, clear: 0.995}
  group_by: [service]
- name: payment-success-rate
  query: |
    sum by (provider) (rate(shop_payments_total{status="success"}[5m]))
      / sum by (provider) (rate(shop_payments_total[5m]))
  detector: {type: threshold, below: 0.9, for: 5m}
  group_by: [provider]
  no_data: resolve
- name: server-load
  query: node_load1
  detector: {type: threshold, above: 6, for: 10m, clear: 5}
  group_by: [instance]
  no_data: alert
- name: node-metrics-absent
  query: node_load1
  detector: {type: absent, for: 5m}
  group_by: [instance]
- name: db-query-latency
  query: histogram_quantile(0.99, sum by (le) (rate(pg_query_duration_seconds_bucket[5m])))
  detector: {type: threshold, above: 0.25, for: 5m, clear: 0.1}
"""

Row = tuple[str, datetime, datetime, datetime | None, int]


def make_project(root: Path, checks: str = CHECKS) -> Project:
    """Five shop checks (threshold with and without clear, every no_data rule, absent)."""
    (root / "checks").mkdir(parents=True)
    (root / "runbooks").mkdir()
    (root / "incident.yaml").write_text(
        "sources:\n  local: {type: file, path: data/}\nreopen_window: 30m\n"
        "defaults: {lookback: 2h}\n")
    (root / "checks" / "shop.yaml").write_text(checks)
    return load_project(root, {})


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, StorageSource]]:
    """The project and eight days of simulated shop metrics with the scripted faults."""
    root = tmp_path_factory.mktemp("backtest") / "shop"
    project = make_project(root)
    yield project, StorageSource("local", MemoryStorage(simulate(END, days=8, faults=FAULTS)))


def stepped(project: Project, source: StorageSource, start: datetime, end: datetime,
            tmp: Path) -> dict[str, list[Row]]:
    """Run the real engine (source, detectors, SQLite store) once a minute; incidents per check."""
    store = Store.connect(f"sqlite:///{tmp}/stepped.db", root=tmp)
    try:
        engine = Engine(project, {"local": source}, store, Notifier(project.settings, tmp))
        for now in bt.steps(project.checks[0], start, end):
            engine.run(now)
        out: dict[str, list[Row]] = {}
        for i in store.list(statuses=None, limit=10**6):
            out.setdefault(i.check or "", []).append(
                (i.fingerprint, i.detected_at, i.opened_at, i.resolved_at, i.reopened))
        return {k: sorted(v, key=lambda r: (r[2], r[0])) for k, v in out.items()}
    finally:
        store.close()


def backtested(project: Project, source: StorageSource, start: datetime, end: datetime
               ) -> dict[str, bt.Backtest]:
    """The backtest of every check over [start, end]."""
    return {c.name: bt.backtest(c, source, start, end, project.settings.reopen_window)
            for c in project.checks}


def rows(result: bt.Backtest) -> list[Row]:
    """A backtest's incidents in the shape `stepped` returns."""
    return sorted(((i.fingerprint, i.detected_at, i.opened_at, i.resolved_at, i.reopened)
                   for i in result.incidents), key=lambda r: (r[2], r[0]))


def test_backtest_agrees_with_the_engine_run_every_minute(shop, tmp_path: Path) -> None:
    """Over a day holding every scripted fault, 1,441 engine runs and one backtest agree exactly."""
    project, source = shop
    start = END - D
    engine = stepped(project, source, start, END, tmp_path)
    results = backtested(project, source, start, END)
    for check in project.checks:
        assert rows(results[check.name]) == engine.get(check.name, []), check.name

    # The rules that make one pass hard were all exercised.
    api = {r[0]: r for r in engine["api-success-rate"]}
    assert api['api-success-rate{service="api"}'][4] == 1  # reopened within reopen_window
    assert results["payment-success-rate"].judged > 0  # an episode longer than the lookback
    [payment] = engine["payment-success-rate"]
    assert payment[3] is not None and payment[3] - payment[2] > 2 * H
    assert 'server-load{instance="web-3"}' in {r[0] for r in engine["server-load"]}  # no_data alert
    assert {r[0] for r in engine["node-metrics-absent"]} == {
        'node-metrics-absent{instance="web-1"}', 'node-metrics-absent{instance="web-3"}'}
    assert len(engine["db-query-latency"]) == 1


@pytest.mark.skipif(os.environ.get("INCIDENT_SLOW_TESTS") != "1",
                    reason="10,081 engine runs take about 3.5 minutes; set INCIDENT_SLOW_TESTS=1")
def test_backtest_agrees_with_the_engine_over_a_week(shop, tmp_path: Path) -> None:
    """A week at one-minute steps: the engine run 10,081 times and the backtest give the same incidents."""
    project, source = shop
    start = END - 7 * D
    engine = stepped(project, source, start, END, tmp_path)
    for name, result in backtested(project, source, start, END).items():
        assert result.steps == 10_081
        assert rows(result) == engine.get(name, []), name


def test_a_week_backtest_is_one_read_and_the_same_as_its_days(shop) -> None:
    """A week backtest reads history once, in Prometheus-sized chunks, and finds the day's incidents."""
    project, source = shop
    calls: list[tuple[datetime, datetime]] = []

    class Counting(StorageSource):
        def query_range(self, query, start, end, step):  # type: ignore[no-untyped-def]
            calls.append((start, end))
            return super().query_range(query, start, end, step)

    counting = Counting("local", source.storage)
    week = backtested(project, counting, END - 7 * D, END)
    day = backtested(project, source, END - D, END)
    assert len(calls) == 2 * len(project.checks)  # 10,201 points: two chunks of ≤ 10,000
    for name in day:
        assert [r for r in rows(week[name]) if r[2] >= END - D] == rows(day[name]), name


def test_steps_are_the_aligned_run_times_in_the_range(shop) -> None:
    """Runs fall on whole multiples of `every`, from the first at or after --from to --to."""
    project, _ = shop
    check = project.checks[0]
    t = bt.steps(check, END - 90 * timedelta(seconds=1), END + timedelta(seconds=30))
    assert t == [END - M, END]


def test_runs_that_saw_no_data_are_counted_and_a_reversed_period_is_refused(shop) -> None:
    """A period before the data starts is no all-clear: every run is counted as blind."""
    project, source = shop
    check = project.check("payment-success-rate")
    before = bt.backtest(check, source, END - 30 * D, END - 29 * D, project.settings.reopen_window)
    assert (before.incidents, before.blind, before.steps) == ((), 1441, 1441)
    edge = bt.backtest(check, source, END - 8 * D - H, END - 8 * D + H, project.settings.reopen_window)
    assert 0 < edge.blind < edge.steps
    assert bt.backtest(check, source, END - D, END, project.settings.reopen_window).blind == 0
    with pytest.raises(UsageError, match=r"the period ends \(2026-11-08T00:00:00Z\) before it starts"):
        bt.backtest(check, source, END, END - D, project.settings.reopen_window)


def test_cli_backtest_warns_on_stderr_when_runs_saw_no_data(tmp_path: Path) -> None:
    """The summary says 0 incidents; stderr says why that is no all-clear; --json stays JSON."""
    root = tmp_path / "shop"
    make_project(root)
    write_openmetrics(simulate(END, days=1), root / "data" / "shop.om")
    for extra in ([], ["--json"]):
        result = CliRunner().invoke(main, ["--project", str(root), "checks", "backtest",
                                           "payment-success-rate", "--from", "2026-10-01T00:00:00Z",
                                           "--to", "2026-10-01T01:00:00Z", *extra])
        assert result.exit_code == 0, result.output
        assert result.stderr == ("warning: 61 of 61 runs saw no data for payment-success-rate in "
                                 "their lookback: the source may not hold this period\n")
    assert json.loads(result.stdout) == []


def test_cli_backtest_prints_the_incidents_as_json(shop, tmp_path: Path) -> None:
    """`incident checks backtest NAME --from --to --json` on the file source: the DESIGN's fields."""
    project, source = shop
    root = tmp_path / "shop"
    make_project(root)
    (root / "data").mkdir()
    write_openmetrics(source.storage.series, root / "data" / "shop.om")
    result = CliRunner().invoke(main, [
        "--project", str(root), "checks", "backtest", "api-success-rate",
        "--from", "2026-11-08T00:00:00Z", "--to", "2026-11-09T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(i["fingerprint"], i["detected_at"], i["opened_at"], i["resolved_at"], i["reopened"])
            for i in out] == [
        (fp, d.isoformat().replace("+00:00", "Z"), o.isoformat().replace("+00:00", "Z"),
         r.isoformat().replace("+00:00", "Z") if r else None, n)
        for fp, d, o, r, n in rows(backtested(project, source, END - D, END)["api-success-rate"])]
    text = CliRunner().invoke(main, ["--project", str(root), "checks", "backtest",
                                     "api-success-rate", "--from", "2026-11-08T00:00:00Z",
                                     "--to", "2026-11-09T00:00:00Z"])
    assert text.exit_code == 0
    assert text.output.splitlines()[-1] == \
        "2 incidents from 1441 runs of api-success-rate, one every 1m"


# Two days of data for change and anomaly checks with a 30-hour lookback. Runs up to 18
# hours before the end see all the data there is (derived from one pass even for anomaly);
# later runs see a window cut out of a longer history. Conversion drops and database
# slowdowns fall on both sides of that line, and a drop in the reference day makes a rise
# a day later.
FAULTS_2D = (
    Fault(what="conversion-drop", magnitude=0.6, start=-D - 16 * H, end=-D - 15 * H),
    Fault(what="conversion-drop", magnitude=0.6, start=-21 * H, end=-20 * H),
    Fault(what="db-slowdown", target="db-primary", magnitude=8, start=-20 * H - 30 * M,
          end=-20 * H),
    Fault(what="conversion-drop", magnitude=0.6, start=-13 * H, end=-11 * H - 30 * M),
    Fault(what="db-slowdown", target="db-primary", magnitude=8, start=-12 * H,
          end=-11 * H - 20 * M),
)

CONVERSION = "sum(rate(shop_orders_total[30m])) / sum(rate(shop_sessions_total[30m]))"
SESSIONS = "sum(increase(shop_sessions_total[30m]))"
BASELINE_CHECKS = f"""
- name: conversion-vs-yesterday
  query: {CONVERSION}
  lookback: 30h
  detector: {{type: change, offset: 1d, percent: 20, for: 15m, total: '{SESSIONS}',
             min_events: 300}}
- name: conversion-anomaly
  query: {CONVERSION}
  lookback: 30h
  detector: {{type: anomaly, season: none, window: 6h, memory: 1d, sensitivity: 5,
             min_deviation: 0.004, direction: down, total: '{SESSIONS}', min_events: 300}}
- name: db-latency-anomaly
  query: histogram_quantile(0.95, sum by (le) (rate(pg_query_duration_seconds_bucket[5m])))
  lookback: 30h
  detector: {{type: anomaly, season: none, window: 6h, memory: 1d, min_deviation: 0.02,
             direction: up, clear_after: 30m}}
"""


def test_change_and_anomaly_backtests_agree_with_the_engine(tmp_path: Path) -> None:
    """Change and anomaly checks: 841 engine runs and one backtest give the same incidents."""
    project = make_project(tmp_path / "shop", BASELINE_CHECKS)
    source = StorageSource("local", MemoryStorage(simulate(END, days=2, faults=FAULTS_2D)))
    start, end = END - 22 * H, END - 8 * H
    engine = stepped(project, source, start, end, tmp_path)
    results = backtested(project, source, start, end)
    for check in project.checks:
        assert rows(results[check.name]) == engine.get(check.name, []), check.name

    # Each fault found, and both ways of getting there exercised: runs derived from the one
    # pass, and runs judged on their own window.
    assert [r[1] for r in engine["db-latency-anomaly"]] == [END - 20 * H - 30 * M,
                                                            END - 11 * H - 41 * M]
    assert [r[1] for r in engine["conversion-vs-yesterday"]] == [  # two drops, one rise
        END - 20 * H - 44 * M, END - 15 * H - 45 * M, END - 12 * H - 44 * M]
    # The drop at -21h is no news to the anomaly detector: one as deep happened within its
    # day of memory. The one at -13h is.
    assert [r[1] for r in engine["conversion-anomaly"]] == [END - 12 * H - 18 * M]
    for result in results.values():
        assert 0 < result.judged < result.steps, result.check


def test_unknown_check_is_not_found(tmp_path: Path) -> None:
    """Backtesting a check that does not exist exits 5 and says how to list checks."""
    root = tmp_path / "p"
    make_project(root)
    result = CliRunner().invoke(main, ["--project", str(root), "checks", "backtest", "nope",
                                       "--from", "-1d"])
    assert result.exit_code == 5 and "incident checks list" in result.output
