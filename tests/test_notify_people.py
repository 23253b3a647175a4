"""What the people paged about an incident hear: a resolve by hand, the end of an escalation,
and why a fallback channel got someone else's page. Real receivers on 127.0.0.1, the real CLI."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner

from incident.cli import main
from incident.config import load_project
from incident.manual import open_manual
from incident.model import Severity
from incident.store import Store
from incident.testing import HTTPReceiver
from incident.timeutil import utcnow

ESCALATING = ("  - match: {team: payments}\n    notify: [oncall]\n    repeat: 1m\n"
              "    escalate: {after: 90s, notify: [mgr]}\n")


def make(root: Path, channels: dict[str, str], routes: str = ESCALATING, extra: str = "") -> Path:
    """A project without checks: its incidents are opened by hand."""
    for part in ("checks", "runbooks"):
        (root / part).mkdir(parents=True, exist_ok=True)
    chans = "".join(f'  {k}: "{v}"\n' for k, v in channels.items())
    (root / "incident.yaml").write_text(
        f"sources:\n  local: {{type: file, path: data/}}\nchannels:\n{chans}routes:\n{routes}"
        + extra)
    return root


def titles(rx: HTTPReceiver) -> list[str]:
    """The titles that arrived, in order."""
    return [x["body"]["title"] for x in rx.received]


def opened_minutes_ago(root: Path, minutes: float, *, drill: bool = False) -> int:
    """Open a payments incident as if by `incident open` that long ago; its id."""
    project = load_project(root, {})
    with Store.connect(project.settings.store, root=root) as store:
        if drill:
            from incident.notify import Notifier
            from incident.notify.pipeline import Pipeline

            at = utcnow() - timedelta(minutes=minutes)
            incident, _ = store.open_incident(
                fingerprint="drill:x", check=None, title="Card payments failing",
                severity=Severity.HIGH, labels={"team": "payments"}, runbook=None, detected_at=at,
                at=at, value=None, reopen_window=timedelta(0), actor="drill", drill=True,
                notifications=Pipeline(project, store, Notifier(project.settings, root)).on(
                    "opened", at))
            return incident.id
        incident, _ = open_manual(project, store, title="Card payments failing",
                                  severity=Severity.HIGH, labels={"team": "payments"},
                                  runbook=None, actor="ana",
                                  now=utcnow() - timedelta(minutes=minutes))
        return incident.id


def test_resolving_by_hand_is_announced_and_a_failed_channel_gets_it_from_the_next_check(
        tmp_path: Path) -> None:
    """`resolve` tells the incident's channels, with the note; one that is down gets it later."""
    with HTTPReceiver() as rx, HTTPReceiver() as boss:
        root = make(tmp_path, {"oncall": rx.url(), "managers": boss.url("/boss")},
                    "  - notify: [oncall, managers]\n",
                    "delivery: {backoff: 1s, max_backoff: 1s}\n")
        cli = CliRunner()
        r = cli.invoke(main, ["-p", str(root), "open", "Card payments failing", "--by", "ana"])
        assert r.exit_code == 0, r.output
        rx.fail = True
        r = cli.invoke(main, ["-p", str(root), "resolve", "1", "--by", "bo", "--note",
                              "failed over to the backup acquirer"])
        assert r.exit_code == 0 and r.output == "#1 resolved by bo\n", r.output
        assert titles(boss) == ["[HIGH] OPENED #1: Card payments failing",
                                "[HIGH] RESOLVED #1: Card payments failing"]
        assert "failed over to the backup acquirer" in boss.received[-1]["body"]["message"]
        assert "Resolved" in boss.received[-1]["body"]["message"]

        rx.fail = False
        time.sleep(1.5)  # past the retry's 1s backoff
        assert cli.invoke(main, ["-p", str(root), "check"]).exit_code == 0
        assert titles(rx) == ["[HIGH] OPENED #1: Card payments failing",
                              "[HIGH] RESOLVED #1: Card payments failing"]
        again = cli.invoke(main, ["-p", str(root), "resolve", "1", "--by", "bo"])
        assert again.output == "#1 was already resolved\n"
        assert cli.invoke(main, ["-p", str(root), "check"]).exit_code == 0
        assert len(rx.received) == 2 and len(boss.received) == 2
        rows = json.loads(cli.invoke(main, ["-p", str(root), "notify", "pending", "--all",
                                            "--json"]).output)
        assert sorted((x["channel"], x["event"], x["status"]) for x in rows) == [
            ("managers", "opened", "sent"), ("managers", "resolved:0", "sent"),
            ("oncall", "opened", "sent"), ("oncall", "resolved:0", "sent")]


def test_a_silenced_resolve_by_hand_says_so_on_the_timeline(tmp_path: Path) -> None:
    """Resolved under a silence: nothing is sent, and the timeline says which silence held it."""
    with HTTPReceiver() as rx:
        root = make(tmp_path, {"oncall": rx.url()}, "  - notify: [oncall]\n")
        cli = CliRunner()
        assert cli.invoke(main, ["-p", str(root), "open", "Card payments failing", "--label",
                                 "team=payments", "--by", "ana"]).exit_code == 0
        r = cli.invoke(main, ["-p", str(root), "silence", "add", "--match", "team=payments",
                              "--for", "1h", "--comment", "card network maintenance"])
        assert r.exit_code == 0, r.output
        assert cli.invoke(main, ["-p", str(root), "resolve", "1", "--by", "bo"]).exit_code == 0
        assert titles(rx) == ["[HIGH] OPENED #1: Card payments failing"]
        shown = json.loads(cli.invoke(main, ["-p", str(root), "show", "1", "--json"]).output)
        assert [e["text"] for e in shown["timeline"] if e["kind"] == "notified"
                and e["actor"] == "bo"] == ["not sent: silence #1 (card network maintenance)"]


def test_the_channel_an_escalation_paged_hears_the_ack_and_the_resolve_once(
        tmp_path: Path) -> None:
    """mgr was told to take it: it is told that someone did, and that it is over, once each."""
    with HTTPReceiver() as rx, HTTPReceiver() as mgr:
        root = make(tmp_path, {"oncall": rx.url(), "mgr": mgr.url("/mgr")})
        incident = opened_minutes_ago(root, 5)
        cli = CliRunner()
        assert cli.invoke(main, ["-p", str(root), "check"]).exit_code == 0
        assert [t.split(" #")[0] for t in titles(mgr)] == ["[HIGH] ESCALATED"]
        r = cli.invoke(main, ["-p", str(root), "ack", str(incident), "--by", "bo"])
        assert r.exit_code == 0, r.output
        r = cli.invoke(main, ["-p", str(root), "resolve", str(incident), "--by", "bo"])
        assert r.exit_code == 0, r.output
        assert cli.invoke(main, ["-p", str(root), "check"]).exit_code == 0
        assert cli.invoke(main, ["-p", str(root), "resolve", str(incident)]).exit_code == 0
        assert [t.split(" #")[0] for t in titles(mgr)] == [
            "[HIGH] ESCALATED", "[HIGH] ACKNOWLEDGED", "[HIGH] RESOLVED"]
        assert [t.split(" #")[0] for t in titles(rx)] == [
            "[HIGH] OPENED", "[HIGH] STILL OPEN, not acknowledged", "[HIGH] ACKNOWLEDGED",
            "[HIGH] RESOLVED"]
        assert "bo is on it" in mgr.received[1]["body"]["message"]


def test_an_ack_before_the_escalation_does_not_reach_the_escalation_channel(
        tmp_path: Path) -> None:
    """Nobody paged mgr, so mgr hears neither the ack nor the resolve."""
    with HTTPReceiver() as rx, HTTPReceiver() as mgr:
        root = make(tmp_path, {"oncall": rx.url(), "mgr": mgr.url("/mgr")})
        cli = CliRunner()
        r = cli.invoke(main, ["-p", str(root), "open", "Card payments failing", "--label",
                              "team=payments"])
        assert r.exit_code == 0, r.output
        for command in (["ack", "1"], ["resolve", "1"], ["check"]):
            assert cli.invoke(main, ["-p", str(root), *command]).exit_code == 0
        assert mgr.received == []
        assert [t.split(" #")[0] for t in titles(rx)] == [
            "[HIGH] OPENED", "[HIGH] ACKNOWLEDGED", "[HIGH] RESOLVED"]


def test_a_drill_escalation_is_answered_on_drill_channels_only(tmp_path: Path) -> None:
    """A drill incident escalated to drill:mgr: its ack goes to drill:oncall and drill:mgr."""
    from incident.notify import Notifier
    from incident.notify.actions import acknowledge
    from incident.notify.pipeline import Pipeline

    with HTTPReceiver() as rx, HTTPReceiver() as mgr:
        root = make(tmp_path, {"oncall": rx.url(), "mgr": mgr.url("/mgr")})
        incident = opened_minutes_ago(root, 5, drill=True)
        project = load_project(root, {})
        with Store.connect(project.settings.store, root=root) as store:
            drills = Pipeline(project, store, Notifier(project.settings, root), drills=True)
            assert [e.channel for e in drills.schedule(utcnow()) if e.event == "escalated"] == [
                "drill:mgr"]
            acknowledge(project, store, incident, actor="bo", now=utcnow())
            acks = [i.envelope.channel for i in store.outbox(incident_id=incident)
                    if i.envelope.event == "acknowledged"]
        assert acks == ["drill:oncall", "drill:mgr"]
        assert rx.received == [] and mgr.received == []


def test_the_fallback_copy_says_whom_it_was_meant_for_and_why_without_the_secret(
        tmp_path: Path) -> None:
    """oncall answers 500 twice: fb gets the page, first saying it was meant for oncall and why."""
    with HTTPReceiver() as down, HTTPReceiver() as fb:
        down.fail = True
        secret = "s3cr3t-t0ken-abcdef123456"
        oncall = f"json://bot:{secret}@127.0.0.1:{down.port}/hook/{secret}?cto=2&rto=2"
        root = make(tmp_path, {"oncall": oncall, "fb": fb.url("/fb")}, "  - notify: [oncall]\n",
                    "delivery: {attempts: 2, fallback: fb}\n")
        r = CliRunner().invoke(main, ["-p", str(root), "open", "Card payments failing"])
        assert r.exit_code == 0, r.output
        [got] = fb.received
        assert got["body"]["title"] == "[HIGH] OPENED #1: Card payments failing"
        first, _, rest = got["body"]["message"].partition("\n")
        assert first.startswith("Sent here because oncall failed 2 times: ")
        assert "500" in first
        assert rest.startswith("Card payments failing")
        assert secret not in json.dumps(got)
