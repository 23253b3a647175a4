"""The whole loop against a real Prometheus with backfilled history: open, dedup, resolve, outage."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident.cli import main
from incident.testing import PrometheusServer
from incident.timeutil import iso

# The history, in minutes after T0: healthy, a 2-minute dip (shorter than `for`),
# healthy, a 20-minute breach on alipay only, healthy again.
SHORT_DIP = range(60, 62)
BREACH = range(80, 100)
MINUTES = 180


def history(t0: datetime) -> str:
    """OpenMetrics text for two providers, one sample a minute, all in the past."""
    lines = ["# TYPE payment_success_ratio gauge"]
    for provider in ("alipay", "card"):
        for m in range(MINUTES):
            bad = provider == "alipay" and (m in SHORT_DIP or m in BREACH)
            value = 0.5 if bad else 0.99
            ts = int((t0 + timedelta(minutes=m)).timestamp())
            lines.append(f'payment_success_ratio{{provider="{provider}"}} {value} {ts}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def project(root: Path, url: str) -> Path:
    """A one-check project reading Prometheus at `url`, notifying a local file."""
    (root / "checks").mkdir(parents=True)
    (root / "runbooks").mkdir()
    (root / "runbooks" / "payment-failure.md").write_text(
        "---\ntitle: Payment channel failure\n---\n1. Switch provider\n")
    (root / "incident.yaml").write_text(f"""
default_source: prom
sources:
  prom: {{type: prometheus, url: "{url}", timeout: 3s}}
channels:
  oncall: "file://notifications.log"
routes:
  - notify: [oncall]
""")
    (root / "checks" / "payments.yaml").write_text("""
name: payment-success-rate
query: min by (provider) (payment_success_ratio)
every: 1m
lookback: 1h
detector: {type: threshold, below: 0.9, for: 5m}
severity: critical
runbook: payment-failure
group_by: [provider]
""")
    return root


@pytest.fixture
def shop(tmp_path: Path, prometheus_factory: Callable[..., PrometheusServer]
         ) -> tuple[Path, PrometheusServer, datetime]:
    """A project wired to a real Prometheus holding three hours of history."""
    t0 = (datetime.now(UTC) - timedelta(hours=4)).replace(second=0, microsecond=0)
    om = tmp_path / "history.om"
    om.write_text(history(t0))
    server = prometheus_factory(om)
    return project(tmp_path / "shop", server.url), server, t0


def run(root: Path, *args: str) -> tuple[int, dict | list]:
    """`incident --project ROOT ARGS --json`, parsed."""
    result = CliRunner().invoke(main, ["--project", str(root), *args, "--json"])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def check_at(root: Path, t: datetime) -> tuple[int, dict]:
    """One cron run as if the clock said `t`."""
    code, out = run(root, "check", "--at", iso(t) or "")
    assert isinstance(out, dict)
    return code, out


def incidents(root: Path) -> list[dict]:
    """Every incident in the store, newest first."""
    code, out = run(root, "list", "--all")
    assert code == 0 and isinstance(out, list)
    return out


@pytest.mark.prometheus
def test_breach_opens_once_stays_one_and_resolves_on_recovery(shop) -> None:
    """A 20-minute breach opens exactly one incident, a second run keeps it, recovery resolves it."""
    root, _, t0 = shop
    code, out = check_at(root, t0 + timedelta(minutes=88))
    assert code == 0
    assert [a["action"] for a in out["checks"][0]["actions"]] == ["opened"]
    assert out["checks"][0]["firing"] == ['payment-success-rate{provider="alipay"}']

    code, out = check_at(root, t0 + timedelta(minutes=89))
    assert code == 0 and out["checks"][0]["actions"] == []
    [incident] = incidents(root)
    assert incident["status"] == "open"
    assert incident["detected_at"] == iso(t0 + timedelta(minutes=80))
    assert incident["opened_at"] == iso(t0 + timedelta(minutes=88))
    assert incident["runbook"] == "payment-failure"

    code, out = check_at(root, t0 + timedelta(minutes=105))
    assert [a["action"] for a in out["checks"][0]["actions"]] == ["resolved"]
    [incident] = incidents(root)
    assert incident["status"] == "resolved"
    assert incident["resolved_at"] == iso(t0 + timedelta(minutes=100))
    assert incident["resolved_by"] == "incident check"

    sent = [json.loads(line) for line in (root / "notifications.log").read_text().splitlines()]
    assert [("OPENED" in s["title"], "RESOLVED" in s["title"]) for s in sent] == [
        (True, False), (False, True)]


@pytest.mark.prometheus
def test_breach_shorter_than_for_opens_nothing(shop) -> None:
    """A 2-minute dip under a 5-minute `for` is not an incident."""
    root, _, t0 = shop
    for minute in range(60, 70):
        code, out = check_at(root, t0 + timedelta(minutes=minute))
        assert code == 0 and out["checks"][0]["actions"] == []
    assert incidents(root) == []


@pytest.mark.prometheus
def test_prometheus_down_reports_the_source_and_resolves_nothing(shop) -> None:
    """With Prometheus stopped, the run exits 3 naming the source, and the open incident stays."""
    root, server, t0 = shop
    check_at(root, t0 + timedelta(minutes=90))
    server.stop()
    result = CliRunner().invoke(main, ["--project", str(root), "check", "--at",
                                       iso(t0 + timedelta(minutes=110)) or ""])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert "source 'prom'" in result.stdout and "unreachable" in result.stdout
    [incident] = incidents(root)
    assert incident["status"] == "open"


@pytest.mark.prometheus
def test_repeated_outage_opens_a_source_unreadable_incident(shop) -> None:
    """After three failed cycles in a row the platform is blind, and that is an incident itself.

    Two runners share the store: both fail each cycle, and a cycle counts once.
    """
    root, server, t0 = shop
    server.stop()
    for minute in (1, 2):
        for runner in (0, 20):  # seconds into the minute
            code, _ = check_at(root, t0 + timedelta(minutes=120 + minute, seconds=runner))
            assert code == 3
    assert incidents(root) == []
    check_at(root, t0 + timedelta(minutes=123))
    [incident] = incidents(root)
    assert incident["fingerprint"] == 'source-unreadable{source="prom"}'
    assert incident["severity"] == "critical"
    server.start()
    check_at(root, t0 + timedelta(minutes=125))
    [incident] = incidents(root)
    assert incident["status"] == "resolved"


@pytest.mark.prometheus
def test_query_json_is_what_prometheus_returns(shop) -> None:
    """`incident query --json` prints Prometheus's own `data` object."""
    root, _, t0 = shop
    at = iso(t0 + timedelta(minutes=85)) or ""
    code, out = run(root, "query", "min by (provider) (payment_success_ratio)", "--at", at)
    assert code == 0 and isinstance(out, dict)
    assert out["resultType"] == "vector"
    values = {r["metric"]["provider"]: r["value"][1] for r in out["result"]}
    assert values == {"alipay": "0.5", "card": "0.99"}


@pytest.mark.prometheus
def test_bad_promql_is_a_check_error_not_an_outage(shop) -> None:
    """Prometheus rejecting a query reports the check, and never counts toward 'unreadable'.

    The query parses (a syntax error is already a config error): Prometheus refuses it when
    it runs, as both providers' series fall into one match group.
    """
    root, _, t0 = shop
    path = root / "checks" / "payments.yaml"
    path.write_text(path.read_text().replace(
        "min by (provider) (payment_success_ratio)",
        "min by (provider) (payment_success_ratio + on() group_left payment_success_ratio)"))
    for minute in (1, 2, 3, 4):
        code, out = check_at(root, t0 + timedelta(minutes=30 + minute))
        assert code == 3
        assert "rejected the query" in out["checks"][0]["error"]
    assert incidents(root) == []


@pytest.mark.prometheus
def test_a_password_in_the_prometheus_url_never_shows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      prometheus_factory: Callable[..., PrometheusServer]
                                                      ) -> None:
    """Basic-auth credentials in the source URL stay out of output, the store, pages and reports."""
    t0 = (datetime.now(UTC) - timedelta(hours=4)).replace(second=0, microsecond=0)
    om = tmp_path / "history.om"
    om.write_text(history(t0))
    server = prometheus_factory(om)
    secret = "PROMPASS123"
    monkeypatch.setenv("PROM_URL", server.url.replace("http://", f"http://admin:{secret}@"))
    root = project(tmp_path / "shop", "${PROM_URL}")
    assert check_at(root, t0 + timedelta(minutes=90))[0] == 0
    server.stop()
    seen = []
    for minute in (1, 2, 3):
        at = iso(t0 + timedelta(minutes=120 + minute)) or ""
        for extra in ([], ["--json"]):
            result = CliRunner().invoke(main, ["--project", str(root), "check", "--at", at, *extra])
            assert result.exit_code == 3
            seen.append(result.output)
    unreadable = [i for i in incidents(root) if i["fingerprint"].startswith("source-unreadable")]
    assert len(unreadable) == 1
    number = str(unreadable[0]["id"])
    for args in (["show", number, "--json"], ["report", "postmortem", number, "--format", "md"],
                 ["query", "up", "--source", "prom"]):
        seen.append(CliRunner().invoke(main, ["--project", str(root), *args]).output)
    seen += [p.read_text(errors="replace") for p in root.rglob("*") if p.is_file()
             and p.suffix in (".log", ".md", ".html")]
    seen += [p.read_bytes().decode("latin-1") for p in (root / ".incident").glob("*")]
    assert "admin:***@127.0.0.1" in "".join(seen)  # the URL is still shown, without the password
    assert not [text for text in seen if secret in text]
