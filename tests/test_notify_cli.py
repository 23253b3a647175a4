"""The notification commands: route tests, silences, status updates and ack, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from incident.cli import main
from incident.testing import HTTPReceiver


def make(root: Path, oncall: str, managers: str) -> Path:
    """A project with a critical route, a default route and a stakeholders channel."""
    for part in ("checks", "runbooks"):
        (root / part).mkdir(parents=True, exist_ok=True)
    (root / "incident.yaml").write_text(f"""
sources:
  local: {{type: file, path: data/}}
channels:
  oncall: "{oncall}"
  managers: "{managers}"
stakeholders: [managers]
routes:
  - name: payments-critical
    match: {{severity: critical}}
    match_re: {{team: "pay.*"}}
    notify: [oncall, managers]
    escalate: {{after: 15m, notify: [managers]}}
  - notify: [oncall]
""")
    return root


def test_notify_routes_shows_the_route_and_channels_a_hypothetical_incident_reaches(
        tmp_path: Path) -> None:
    """A critical payments incident takes the first route; a low one falls to the default."""
    root = make(tmp_path, "json://127.0.0.1:9/a?token=abcdefsecret", "json://127.0.0.1:9/b")
    r = CliRunner().invoke(main, ["-p", str(root), "notify", "routes", "--severity", "critical",
                                  "--labels", "team=payments", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["channels"] == ["oncall", "managers"]
    assert got["routes"][0]["name"] == "payments-critical"
    assert "abcdefsecret" not in r.output
    r = CliRunner().invoke(main, ["-p", str(root), "notify", "routes", "--severity", "low"])
    assert r.output.strip().splitlines()[-1] == "channels: oncall"


def test_update_and_ack_arrive_and_silences_can_be_added_listed_and_expired(
        tmp_path: Path) -> None:
    """`update` reaches the incident's channels and the stakeholders; `ack` is announced."""
    with HTTPReceiver() as rx, HTTPReceiver() as boss:
        root = make(tmp_path, rx.url(), boss.url("/boss"))
        cli = CliRunner()
        opened = cli.invoke(main, ["-p", str(root), "open", "Card payments failing",
                                   "--severity", "low", "--json"])
        assert opened.exit_code == 0, opened.output
        incident_id = json.loads(opened.output)["id"]
        assert [x["body"]["title"] for x in rx.received] == [
            f"[LOW] OPENED #{incident_id}: Card payments failing"] and boss.received == []
        r = cli.invoke(main, ["-p", str(root), "update", str(incident_id), "Failover done"])
        assert r.exit_code == 0, r.output
        assert ["Failover done" in x["body"]["message"] for x in rx.received[1:] + boss.received] \
            == [True, True]
        r = cli.invoke(main, ["-p", str(root), "ack", str(incident_id), "--by", "ana"])
        assert r.exit_code == 0, r.output
        assert "ACKNOWLEDGED" in rx.received[-1]["body"]["title"]

        r = cli.invoke(main, ["-p", str(root), "silence", "add", "--match", "team=dba",
                              "--match", "service=~db-.*", "--for", "2h", "--comment", "failover"])
        assert r.exit_code == 0 and r.output.startswith("silence #1 (team=dba, service=~db-.*)")
        listed = json.loads(cli.invoke(main, ["-p", str(root), "silence", "list", "--json"]).output)
        assert [s["id"] for s in listed] == [1]
        assert cli.invoke(main, ["-p", str(root), "silence", "expire", "1"]).exit_code == 0
        assert json.loads(cli.invoke(main, ["-p", str(root), "silence", "list", "--json"]
                                     ).output) == []
        everything = cli.invoke(main, ["-p", str(root), "silence", "list", "--all"]).output
        assert everything.startswith("#1 team=dba, service=~db-.* ended ")
        assert "(expired early) by " in everything and " until " not in everything
        pending = cli.invoke(main, ["-p", str(root), "notify", "pending", "--all", "--json"])
        assert {x["status"] for x in json.loads(pending.output)} == {"sent"}


def test_a_manual_incident_is_routed_and_paged_and_a_failed_page_waits_for_the_next_run(
        tmp_path: Path) -> None:
    """`open` pages its route's channels at once; the one that is down gets it from `check`."""
    import time

    with HTTPReceiver() as rx, HTTPReceiver() as boss:
        root = make(tmp_path, rx.url(), boss.url("/boss"))
        settings = root / "incident.yaml"
        settings.write_text(settings.read_text() + "delivery: {backoff: 1s, max_backoff: 1s}\n")
        rx.fail = True
        cli = CliRunner()
        r = cli.invoke(main, ["-p", str(root), "open", "Card payments failing", "--severity",
                              "critical", "--label", "team=payments", "--by", "ana"])
        assert r.exit_code == 0, r.output
        assert r.output == ("opened #1: Card payments failing; notified oncall ✗ (retried by "
                            "the next incident check), managers ✓\n")
        assert rx.received == []
        assert [x["body"]["title"] for x in boss.received] == [
            "[CRITICAL] OPENED #1: Card payments failing"]

        rx.fail = False
        time.sleep(1.5)  # past the retry's 1s backoff
        assert cli.invoke(main, ["-p", str(root), "check"]).exit_code == 0
        assert [x["body"]["title"] for x in rx.received] == [
            "[CRITICAL] OPENED #1: Card payments failing"]
        assert len(boss.received) == 1
        shown = json.loads(cli.invoke(main, ["-p", str(root), "show", "1", "--json"]).output)
        tried = [(e["data"]["channel"], e["data"]["ok"], e["actor"]) for e in shown["timeline"]
                 if e["kind"] == "notified"]
        assert sorted(tried) == sorted([("oncall", False, "ana"), ("oncall", False, "ana"),
                                        ("managers", True, "ana"),
                                        ("oncall", True, "incident check")])
