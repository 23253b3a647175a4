"""A valid project parses into the frozen objects the engine relies on; secrets stay hidden."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident.cli import main
from incident.config import load_project, redact_template
from incident.model import NoData, Severity, ThresholdParams

SECRET = "s3cr3t-T0ken-value"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project using env vars, defaults, and a check per file form (list and single)."""
    (tmp_path / "checks").mkdir()
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "api-errors.md").write_text("---\ntitle: API\n---\n1. Look\n")
    (tmp_path / "incident.yaml").write_text("""
store: sqlite:///state/incidents.db
timezone: Asia/Shanghai
default_source: prom
sources:
  prom: {type: prometheus, url: "${PROM_URL:-http://127.0.0.1:9090}", timeout: 4s}
  local: {type: file, path: data/}
channels:
  oncall: "json://127.0.0.1:8080/hook?token=${HOOK_TOKEN}"
  mail: "${MAIL_URL}"
routes:
  - match: {severity: critical, team: payments}
    notify: [oncall, mail]
    repeat: 30m
    escalate: {after: 15m, notify: [mail]}
  - notify: [oncall]
defaults:
  every: 30s
  lookback: 90m
  labels: {team: platform}
""")
    (tmp_path / "checks" / "api.yaml").write_text("""
- name: api-success-rate
  description: |
    Share of API calls that did not fail
  query: sum(rate(http_requests_total{code!~"5.."}[5m])) / sum(rate(http_requests_total[5m]))
  detector: {type: threshold, below: 0.99, for: 5m, clear: 0.995}
  severity: critical
  labels: {category: api}
  runbook: api-errors
  group_by: [service]
  no_data: resolve
""")
    (tmp_path / "checks" / "local.yaml").write_text("""
name: shop-metrics-missing
source: local
query: shop_sessions_total
detector: {type: absent, for: 10m}
""")
    return tmp_path


ENV = {"HOOK_TOKEN": SECRET, "MAIL_URL": f"mailto://ops:{SECRET}@127.0.0.1:2525?from=ops@example.com&to=oncall@example.com"}


def test_valid_project_parses_into_frozen_objects(project: Path) -> None:
    """Every field lands typed, with defaults applied and paths made absolute."""
    p = load_project(project, ENV)
    s = p.settings
    assert s.store == "sqlite:///state/incidents.db" and s.timezone == "Asia/Shanghai"
    assert s.sources["prom"].url == "http://127.0.0.1:9090"
    assert s.sources["prom"].timeout == timedelta(seconds=4)
    assert s.sources["local"].path == (project / "data").resolve()
    assert s.routes[0].escalate is not None and s.routes[0].escalate.notify == ("mail",)
    api = p.check("api-success-rate")
    assert api.detector == ThresholdParams(below=0.99, for_=timedelta(minutes=5), clear=0.995)
    assert api.severity is Severity.CRITICAL and api.no_data is NoData.RESOLVE
    assert api.every == timedelta(seconds=30) and api.lookback == timedelta(minutes=90)
    assert dict(api.labels) == {"team": "platform", "category": "api"}
    assert api.description == "Share of API calls that did not fail"
    assert api.source == "prom" and api.group_by == ("service",)
    assert p.check("shop-metrics-missing").source == "local"
    with pytest.raises(dataclasses.FrozenInstanceError):
        api.name = "x"  # type: ignore[misc]


def test_routes_match_on_severity_and_labels(project: Path) -> None:
    """A route matches when every key of `match` equals the incident's attribute."""
    route = load_project(project, ENV).settings.routes[0]
    assert route.matches({"severity": "critical", "team": "payments", "x": "y"})
    assert not route.matches({"severity": "critical", "team": "platform"})


@pytest.mark.parametrize(("url", "shown"), [
    ("${ONCALL_URL}", "${ONCALL_URL}"),
    ("json://127.0.0.1:8080/hook?token=abc&format=text", "json://127.0.0.1:8080/hook?token=***&format=text"),
    ("mailto://ops:hunter2@smtp.example.com?to=a@b.c", "mailto://ops:***@smtp.example.com?to=a@b.c"),
    ("slack://TokenA/TokenB/TokenC/#ops", "slack://***"),
    ("file://reports/notifications.log", "file://reports/notifications.log"),
    ("${MANAGERS_URL:-json://ops:DEFPASS42@127.0.0.1:1/x}", "${MANAGERS_URL:-json://ops:***@127.0.0.1:1/x}"),
    ("${HOOK:-slack://TokenA/TokenB/TokenC}", "${HOOK:-slack://***}"),
    ("json://127.0.0.1/hook/${KEY:-s3cr3tk3y}", "json://127.0.0.1/hook/${KEY:-***}"),
    ("${ONCALL_URL:-}", "${ONCALL_URL:-}"),
])
def test_channel_urls_are_redacted_for_display(url: str, shown: str) -> None:
    """Passwords, tokens and webhook path secrets never print, not even as a ${VAR:-default}."""
    assert redact_template(url) == shown


def test_secrets_never_reach_json_or_validation_output(project: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """`checks list --json` and `checks validate` show no secret from the environment."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    for args in (["checks", "list", "--json"], ["checks", "validate"], ["checks", "list"]):
        result = runner.invoke(main, ["--project", str(project), *args])
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output
    listed = json.loads(runner.invoke(main, ["--project", str(project), "checks", "list",
                                             "--json"]).stdout)
    assert [c["name"] for c in listed] == ["api-success-rate", "shop-metrics-missing"]
    assert listed[0]["detector"] == {"type": "threshold", "below": 0.99, "for": "5m",
                                     "clear": 0.995}
