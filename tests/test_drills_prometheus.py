"""A drill over a real Prometheus's history: faults laid over real data, and nothing written."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from test_prometheus_e2e import BREACH, history, project

from incident.cli import main
from incident.testing import PrometheusServer
from incident.timeutil import iso

DRILL = """
name: card-declines
description: The card provider declines half the payments for a quarter of an hour
duration: 30m
inject:
  - check: payment-success-rate
    labels: {provider: card}
    from: 2m
    to: 15m
    fault: {type: set, value: 0.5}
expect:
  - incident: {check: payment-success-rate, labels: {provider: card}, within: 8m, runbook: payment-failure}
  - notified: {channel: oncall, check: payment-success-rate, within: 8m}
  - resolved: {check: payment-success-rate, labels: {provider: card}, within: 20m}
  - no_incident: {check: payment-success-rate, labels: {provider: alipay}}
"""


def api(server: PrometheusServer, path: str, **params: str) -> dict:
    """GET a Prometheus HTTP API path; its `data`."""
    url = f"{server.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


def raw(server: PrometheusServer, t0: datetime) -> tuple[int, list]:
    """What Prometheus holds: its series count and card's samples over the whole history."""
    count = api(server, "query", query='count({__name__=~".+"})', time=iso(t0 + timedelta(
        minutes=170)) or "")["result"][0]["value"][1]
    samples = api(server, "query_range", query='payment_success_ratio{provider="card"}',
                  start=iso(t0) or "", end=iso(t0 + timedelta(minutes=179)) or "", step="60")
    return int(count), samples["result"]


def test_drill_over_real_prometheus(tmp_path: Path,
                                    prometheus_factory: Callable[..., PrometheusServer]) -> None:
    """A drill on real Prometheus history passes, and Prometheus holds exactly what it held."""
    t0 = (datetime.now(UTC) - timedelta(hours=4)).replace(second=0, microsecond=0)
    om = tmp_path / "history.om"
    om.write_text(history(t0))
    server = prometheus_factory(om)
    root = project(tmp_path / "shop", server.url)
    settings = root / "incident.yaml"
    settings.write_text(settings.read_text() + "drills:\n  channels:\n"
                        '    oncall: "file://drill-notifications.log"\n')
    (root / "drills").mkdir()
    (root / "drills" / "card-declines.yaml").write_text(DRILL)
    before = raw(server, t0)

    start = t0 + timedelta(minutes=BREACH.stop + 10)  # healthy history for the whole drill
    result = CliRunner().invoke(main, ["--project", str(root), "drill", "run", "card-declines",
                                       "--at", iso(start) or "", "--json"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)[0]
    assert card["status"] == "passed" and card["deviated"] == []
    assert [e["status"] for e in card["expectations"]] == ["passed"] * 4
    opened = next(e for e in card["expectations"] if e["expectation"].startswith("incident"))
    assert opened["measured_seconds"] == {"detect": 0.0, "open": 300.0}  # `for: 5m`
    assert "[DRILL]" in (root / "drill-notifications.log").read_text()
    assert not (root / "notifications.log").exists()

    after = raw(server, t0)
    assert after == before
    assert {v for _, v in after[1][0]["values"]} == {"0.99"}  # the fault never reached it
