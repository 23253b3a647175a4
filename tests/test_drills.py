"""Drills end to end on the sample project: each passes, broken setups fail with the reason,
a drill never pages a real channel, the steady state guards a run, and the journal keeps it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sampleproject import copy_sample

from incident.cli import main
from incident.testing import free_port
from incident.timeutil import iso

SAMPLE_DRILLS = ("api-error-spike", "conversion-drop", "database-failure", "network-attack",
                 "payment-failure", "server-down")


def cli(root: Path, *args: str) -> tuple[int, str]:
    """`incident --project ROOT ARGS`: exit code and output."""
    result = CliRunner().invoke(main, ["--project", str(root), *args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def drill(root: Path, *args: str) -> tuple[int, list[dict]]:
    """`incident drill run ARGS --json`: exit code and the scorecards."""
    code, out = cli(root, "drill", "run", *args, "--json")
    return code, json.loads(out[out.index("["):]) if "[" in out else []


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, datetime]:
    """The sample project's data simulated once, up to the current minute."""
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    root = copy_sample(tmp_path_factory.mktemp("template") / "shop")
    assert cli(root, "simulate", "--end", iso(end) or "")[0] == 0
    return root, end


@pytest.fixture
def shop(simulated: tuple[Path, datetime], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
         ) -> Path:
    """A fresh copy of the simulated sample project."""
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    monkeypatch.delenv("MANAGERS_URL", raising=False)
    root = tmp_path / "shop"
    shutil.copytree(simulated[0], root)
    return root


@pytest.mark.parametrize("name", SAMPLE_DRILLS)
def test_every_sample_drill_passes(shop: Path, name: str) -> None:
    """Each sample drill passes on the sample project, every expectation met."""
    code, cards = drill(shop, name)
    assert code == 0, cards
    card = cards[0]
    assert card["status"] == "passed" and card["aborted_because"] == []
    assert [e["status"] for e in card["expectations"]] == ["passed"] * len(card["expectations"])
    assert Path(card["saved"]).is_file() and Path(card["saved"]).with_suffix(".json").is_file()


def test_sample_drills_cover_every_check_and_runbook(shop: Path) -> None:
    """`drill coverage` on the sample: every check exercised, every runbook rehearsed."""
    code, out = cli(shop, "drill", "coverage", "--json")
    data = json.loads(out)
    assert code == 0 and data["uncovered_checks"] == [] and data["unrehearsed_runbooks"] == []
    assert set(data["checks"]) == {c["name"] for c in json.loads(
        cli(shop, "checks", "list", "--json")[1])}


def test_a_drill_never_pages_a_real_channel(shop: Path) -> None:
    """Drill messages reach the drill stand-in tagged [DRILL]; the real channel gets nothing,
    and the drill's incidents are closed again and kept out of the real list."""
    assert drill(shop, "payment-failure")[0] == 0
    assert not (shop / "reports" / "notifications.log").exists()
    assert not (shop / "reports" / "managers.log").exists()
    sent = (shop / "reports" / "drill-notifications.log").read_text().splitlines()
    assert sent and all("[DRILL]" in line for line in sent)
    assert any("payment-success-rate" in line and "wechat" in line for line in sent)
    listed = json.loads(cli(shop, "list", "--json")[1])
    assert listed == []  # restored: nothing a drill opened is left open
    code, out = cli(shop, "check", "--json")
    assert code == 0 and "drill:" not in out  # the real run never sees drill incidents


def test_threshold_raised_fails_with_the_reason(shop: Path) -> None:
    """A check whose level was raised past the fault no longer fires: the drill says so."""
    path = shop / "checks" / "database.yaml"
    path.write_text(path.read_text().replace("above: 0.2,", "above: 0.5,"))
    code, cards = drill(shop, "database-failure")
    assert code == 1 and cards[0]["status"] == "failed"
    failed = {e["expectation"]: e["reason"] for e in cards[0]["expectations"]
              if e["status"] == "failed"}
    assert failed["incident db-query-latency within 8m"] == (
        "no incident for db-query-latency opened during the drill (its series ranged "
        f"{_range(cards[0])} during the drill; fires above 0.5 for 5m)")
    assert set(failed) == {"incident db-query-latency within 8m",
                           "notified oncall about db-query-latency within 8m",
                           "notified managers about db-query-latency within 8m",
                           "resolved db-query-latency within 25m"}


def _range(card: dict) -> str:
    reason = next(e["reason"] for e in card["expectations"]
                  if e["expectation"].startswith("incident db-query-latency"))
    found = re.search(r"ranged (\S+…0\.45) during", reason)
    assert found, reason
    return found.group(1)


def test_runbook_link_removed_fails_with_the_reason(shop: Path) -> None:
    """A check that lost its runbook opens incidents without one: the drill fails on it."""
    path = shop / "checks" / "database.yaml"
    text = path.read_text()
    path.write_text(text.replace("  runbook: database-failure\n", "", 1))
    code, cards = drill(shop, "database-failure")
    assert code == 1
    reasons = {e["expectation"]: e["reason"] for e in cards[0]["expectations"]}
    assert reasons["incident db-query-latency within 8m"] == \
        "runbook (none), expected database-failure"


def test_channel_on_a_closed_port_fails_with_the_reason(shop: Path) -> None:
    """A drill stand-in pointing at a closed port: every delivery fails, and the reason says how."""
    port = free_port()
    path = shop / "incident.yaml"
    path.write_text(path.read_text().replace(
        'oncall: "file://reports/drill-notifications.log"', f'oncall: "json://127.0.0.1:{port}/"'))
    code, cards = drill(shop, "payment-failure")
    assert code == 1
    reasons = {e["expectation"]: e["reason"] for e in cards[0]["expectations"]
               if e["status"] == "failed"}
    assert list(reasons) == [
        'notified oncall about payment-success-rate{provider="wechat"} within 8m']
    reason = next(iter(reasons.values()))
    assert reason.startswith("every delivery to oncall failed (") and "attempts):" in reason
    assert re.search(r"(?i)connect|refused", reason), reason


def test_steady_state_not_met_aborts(shop: Path, simulated: tuple[Path, datetime]) -> None:
    """A drill started while its check already fires on real data is aborted, not scored."""
    end = simulated[1]  # the simulated db slowdown runs from end-3h to end-2h20m
    code, cards = drill(shop, "database-failure", "--at", iso(end - timedelta(minutes=160)) or "")
    assert code == 1
    card = cards[0]
    assert card["status"] == "aborted" and card["expectations"] == []
    assert any(r.startswith("db-query-latency is already firing on the real data")
               for r in card["aborted_because"]), card["aborted_because"]
    assert json.loads(cli(shop, "list", "--all", "--json")[1]) == []  # nothing opened
    code, out = cli(shop, "drill", "history", "database-failure")
    assert "aborted" in out and "already firing" in out


def test_a_drill_where_the_data_is_missing_aborts(shop: Path,
                                                   simulated: tuple[Path, datetime]) -> None:
    """A drill placed where the source has no data (tomorrow, or before its history starts)
    cannot be rehearsed: it is aborted before any replay, naming the checks and the span, and
    journaled as aborted so it never counts as a failed run."""
    end = simulated[1]  # the last simulated minute
    zone = ZoneInfo("Asia/Shanghai")  # the sample's timezone
    for at in (end + timedelta(days=1), end - timedelta(days=30)):
        code, cards = drill(shop, "database-failure", "--at", iso(at) or "")
        assert code == 1
        card = cards[0]
        assert card["status"] == "aborted" and card["expectations"] == [], card
        [reason] = card["aborted_because"]
        a, b = at.astimezone(zone), (at + timedelta(minutes=30)).astimezone(zone)
        assert reason.startswith(
            "db-query-latency, db-latency-anomaly, db-connections and api-success-rate have no "
            f"data between {a:%Y-%m-%d %H:%M} and {b:%H:%M %Z} (source local holds their "
            "series from "), reason
        assert reason.endswith(f" to {end.astimezone(zone):%Y-%m-%d %H:%M %Z})"), reason
    assert json.loads(cli(shop, "list", "--all", "--json")[1]) == []  # nothing was replayed
    history = json.loads(cli(shop, "drill", "history", "database-failure", "--json")[1])
    assert [h["status"] for h in history] == ["aborted", "aborted"]
    assert "have no data between" in cli(shop, "drill", "history", "database-failure")[1]
    data = json.loads(cli(shop, "report", "trends", "--since", "7d", "--json")[1])
    assert data["drills"] == {"run": 0, "passed": 0, "pass_rate": None}


def test_a_check_the_source_has_no_series_for_aborts(shop: Path,
                                                      simulated: tuple[Path, datetime]) -> None:
    """Only the check without data is named, and a local source says it holds none of it."""
    (shop / "checks" / "replica.yaml").write_text("""
- name: replica-lag
  query: pg_replication_lag_seconds{instance="db-replica"}
  every: 1m
  lookback: 2h
  detector: {type: threshold, above: 30, for: 5m}
  severity: high
""")
    (shop / "drills" / "replica.yaml").write_text("""
name: replica-behind
duration: 20m
inject:
  - {check: replica-lag, from: 2m, to: 15m, fault: {type: set, value: 120}}
  - {check: db-query-latency, from: 2m, to: 15m, fault: {type: set, value: 0.45}}
expect:
  - incident: {check: replica-lag, within: 10m}
  - incident: {check: db-query-latency, within: 10m}
""")
    code, cards = drill(shop, "replica-behind", "--at", iso(simulated[1] - timedelta(hours=1)) or "")
    assert code == 1 and cards[0]["status"] == "aborted"
    [reason] = cards[0]["aborted_because"]
    assert reason.startswith("replica-lag has no data between "), reason
    assert reason.endswith(" (source local holds none of its series)"), reason


def test_open_real_incident_aborts(shop: Path) -> None:
    """A real incident open for the drill's check means no steady state: the drill aborts."""
    assert cli(shop, "check")[0] == 0  # opens payment-success-rate{provider="alipay"}
    (shop / "drills" / "alipay.yaml").write_text("""
name: alipay-down
duration: 10m
inject:
  - check: payment-success-rate
    labels: {provider: alipay}
    from: 1m
    to: 8m
    fault: {type: set, value: 0.1}
expect:
  - incident: {check: payment-success-rate, labels: {provider: alipay}, within: 8m}
""")
    code, cards = drill(shop, "alipay-down")
    assert code == 1 and cards[0]["status"] == "aborted"
    firing, real = cards[0]["aborted_because"]
    assert firing.startswith('payment-success-rate{provider="alipay"} is already firing on the '
                             "real data (") and firing.endswith(" < 0.9 for 5m)")
    assert real == 'real incident #1 payment-success-rate{provider="alipay"} is open'
    code, cards = drill(shop, "payment-failure")  # wechat: not what the real incident is about
    assert code == 0 and cards[0]["status"] == "passed"


def test_due_list_and_history(shop: Path) -> None:
    """`drill due` runs what came due once; `list` and `history` show the journal."""
    for path in (shop / "drills").glob("*.yaml"):
        if path.stem != "server-down":
            path.unlink()
    path = shop / "drills" / "server-down.yaml"
    path.write_text(path.read_text().replace('schedule: "0 10 * * 2"', 'schedule: "0 0 * * *"'))
    code, cards = cli(shop, "drill", "due", "--json")
    assert code == 0 and [c["drill"] for c in json.loads(cards)] == ["server-down"]
    code, out = cli(shop, "drill", "due")
    assert code == 0 and out == "no drill is due\n"
    listed = json.loads(cli(shop, "drill", "list", "--json")[1])
    assert [(d["drill"], d["last_result"], d["due"]) for d in listed] == [
        ("server-down", "passed", False)]
    history = json.loads(cli(shop, "drill", "history", "server-down", "--json")[1])
    assert [(h["status"], h["mode"]) for h in history] == [("passed", "replay")]
    assert len(history[0]["scorecard"]["expectations"]) == 5


def test_generated_drill_breaches_its_check(shop: Path) -> None:
    """`drill generate CHECK --write` writes a scenario that runs and passes."""
    code, out = cli(shop, "drill", "generate", "db-connections", "--write")
    assert code == 0 and "drills/db-connections-drill.yaml" in out
    code, cards = drill(shop, "db-connections-drill")
    assert code == 0, cards
    assert cli(shop, "drill", "generate", "db-connections", "--write")[0] == 2  # no overwrite


def test_unknown_drill_is_a_usage_error(shop: Path) -> None:
    """An unknown drill name lists the known ones and exits 2."""
    code, out = cli(shop, "drill", "run", "nope")
    assert code == 2 and "unknown drill 'nope' (known: api-error-spike" in out


def test_trends_count_drills_from_the_journal(shop: Path) -> None:
    """The trends report counts drill runs and passes from the journal, not from incidents."""
    drill(shop, "payment-failure")
    path = shop / "checks" / "database.yaml"
    path.write_text(path.read_text().replace("above: 0.2,", "above: 0.5,"))
    drill(shop, "database-failure")
    data = json.loads(cli(shop, "report", "trends", "--since", "7d", "--json")[1])
    assert data["drills"] == {"run": 2, "passed": 1, "pass_rate": 0.5}
    assert data["incidents"] == 0  # drill incidents stay out of the real numbers


def test_a_drill_fallback_stays_a_drill_message(shop: Path) -> None:
    """A drill stand-in that gives up falls back to the fallback's stand-in, never the real
    channel, and a real run afterwards delivers nothing of the drill's."""
    path = shop / "incident.yaml"
    path.write_text(path.read_text().replace(
        'oncall: "file://reports/drill-notifications.log"',
        f'oncall: "json://127.0.0.1:{free_port()}/"').replace(
        "routes:", "delivery: {attempts: 1, fallback: managers}\n\nroutes:", 1))
    assert drill(shop, "payment-failure")[0] == 1  # oncall's stand-in is down
    assert cli(shop, "check")[0] == 0
    real = (shop / "reports" / "managers.log").read_text()
    assert "[DRILL]" not in real and "alipay" in real
    stand_in = (shop / "reports" / "drill-notifications.log").read_text()
    assert "[DRILL]" in stand_in and "wechat" in stand_in
    pending = json.loads(cli(shop, "notify", "pending", "--all", "--json")[1])
    assert not [p for p in pending if p["status"] == "pending"]


def test_a_source_that_breaks_leaves_the_run_aborted(shop: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A drill whose check cannot be read exits 3 and journals the run as aborted."""
    monkeypatch.setenv("PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
    path = shop / "checks" / "business.yaml"  # payment-success-rate comes first
    path.write_text(path.read_text().replace("  every: 1m\n", "  source: prom\n  every: 1m\n", 1))
    code, out = cli(shop, "drill", "run", "payment-failure")
    assert code == 3 and out.startswith("error: source 'prom'"), out
    [run] = json.loads(cli(shop, "drill", "history", "payment-failure", "--json")[1])
    assert run["status"] == "aborted"
    assert run["scorecard"]["aborted_because"][0].startswith("the run stopped: source 'prom'")
    path = shop / "checks" / "servers.yaml"
    path.write_text(path.read_text().replace("  every: 1m\n", "  source: prom\n  every: 1m\n"))
    code, out = cli(shop, "drill", "run", "server-down")  # raw-metric faults need local data
    assert code == 2 and "metric faults need a local source" in out


def test_due_drills_run_once_across_hosts(shop: Path) -> None:
    """Two `drill due` processes started together run a due drill once between them."""
    for path in (shop / "drills").glob("*.yaml"):
        if path.stem != "payment-failure":
            path.unlink()
    command = [sys.executable, "-m", "incident", "--project", str(shop), "drill", "due", "--json"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=60)[0] for p in procs]
    assert sorted(len(json.loads(o)) for o in outputs) == [0, 1]
    assert len(json.loads(cli(shop, "drill", "history", "payment-failure", "--json")[1])) == 1


def test_a_run_whose_process_died_is_closed_by_the_next(shop: Path) -> None:
    """A run left `running` long ago is journaled aborted and its incidents resolved."""
    from incident.config import load_project
    from incident.model import Severity
    from incident.store import Store

    project = load_project(shop, {})
    then = datetime.now(UTC) - timedelta(hours=1)
    with Store.connect(project.settings.store, root=shop) as store:
        dead = store.start_drill_run("server-down", mode="replay", at=then, sim_start=then,
                                     sim_end=then + timedelta(minutes=30), actor="cron")
        store.open_incident(fingerprint=dead.fingerprint_prefix + "server-down", check="server-down",
                            title="server-down", severity=Severity.CRITICAL, labels={},
                            runbook=None, detected_at=then, at=then, value=0.0,
                            reopen_window=timedelta(0), actor="incident check", drill=True)
    assert drill(shop, "payment-failure")[0] == 0
    history = json.loads(cli(shop, "drill", "history", "server-down", "--json")[1])
    assert [(h["run"], h["status"]) for h in history] == [(dead.id, "aborted")]
    assert history[0]["scorecard"]["aborted_because"] == [
        "the drill's process stopped before it finished"]
    assert json.loads(cli(shop, "list", "--json")[1]) == []


def test_a_broken_drill_never_stops_monitoring(shop: Path) -> None:
    """A mistake in a drill file fails the drill commands and validate, never `incident check`."""
    (shop / "drills" / "broken.yaml").write_text("name: broken\nduration: 30m\nexpect: []\n")
    assert cli(shop, "check")[0] == 0
    code, out = cli(shop, "checks", "validate")
    assert code == 2 and out.startswith("drills/broken.yaml:3:9: expect: a drill needs at least")
    assert cli(shop, "drill", "list")[0] == 2
