"""The notification pipeline against real receivers on 127.0.0.1: what ARRIVED, exactly once."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from incident.config import load_project
from incident.engine import Engine
from incident.model import Labels
from incident.notify import Notifier
from incident.notify.actions import acknowledge
from incident.store import Store
from incident.testing import FrameSource, HTTPReceiver, SMTPReceiver

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
MINUTES = 30


def frame(n: int, start: list[int] | None = None) -> pd.DataFrame:
    """n series of node load; series i breaches (5.0) from minute start[i] on, else 0.5."""
    start = start or [0] * n
    index = pd.date_range(T0, periods=MINUTES, freq="1min", name="time")
    data = {Labels({"instance": f"web-{i:03d}"}):
            np.where(np.arange(MINUTES) >= start[i], 5.0, 0.5) for i in range(n)}
    return pd.DataFrame(data, index=index, dtype=float)


def project(root: Path, channels: dict[str, str], extra: str = "",
            route: str = "  - notify: [oncall]") -> Path:
    """A one-check project (load above 1, one incident per instance) notifying `channels`."""
    for part in ("checks", "runbooks"):
        (root / part).mkdir(parents=True, exist_ok=True)
    chans = "".join(f'  {k}: "{v}"\n' for k, v in channels.items())
    (root / "incident.yaml").write_text(
        f"sources:\n  fake: {{type: file, path: data/}}\nchannels:\n{chans}routes:\n{route}\n"
        + extra)
    (root / "checks" / "load.yaml").write_text(
        "name: load\nquery: node_load1\nlookback: 30m\nseverity: critical\n"
        "detector: {type: threshold, above: 1}\ngroup_by: [instance]\n")
    return root


class Runner:
    """One engine with its own store connection (a second Runner is a second cron host)."""

    def __init__(self, root: Path, data: pd.DataFrame) -> None:
        self.project = load_project(root, {})
        self.store = Store.connect(self.project.settings.store, root=root)
        self.engine = Engine(self.project, {"fake": FrameSource("fake", data)}, self.store,
                             Notifier(self.project.settings, root))

    def at(self, minute: float) -> None:
        """Run every check as of T0 + minute."""
        self.engine.run(T0 + timedelta(minutes=minute))


def ids_in(received: list[dict]) -> Counter[int]:
    """How many times each incident id arrived (a digest line counts for its incident)."""
    found: Counter[int] = Counter()
    for r in received:
        found.update(int(x) for x in re.findall(r"#(\d+):", r["body"]["title"] + "\n"
                                                 + r["body"]["message"]))
    return found


DELIVERY = "delivery: {attempts: 20, backoff: 30s, max_backoff: 1m, rate_limit: 10000/1m}\n"


@pytest.mark.parametrize(("group_over", "messages"), [(None, 1), (1000, 200)])
def test_receiver_down_for_five_runs_while_200_open_then_everything_arrives_once(
        tmp_path: Path, group_over: int | None, messages: int) -> None:
    """200 incidents open over 5 runs with the receiver down; once up, each arrives exactly once.

    By default the 200 then due at once are one digest; `group_over: 1000` sends them one by one.
    """
    delivery = DELIVERY if group_over is None else DELIVERY.replace(
        "}", f", group_over: {group_over}}}")
    with HTTPReceiver() as rx:
        root = project(tmp_path, {"oncall": rx.url().replace("cto=2&rto=2", "cto=1&rto=1")},
                       delivery)
        runner = Runner(root, frame(200, [i // 40 for i in range(200)]))
        rx.fail = True
        for minute in range(5):
            runner.at(minute)
        assert rx.received == []
        assert len(runner.store.outbox(statuses=["pending"])) == 200
        rx.fail = False
        runner.at(5)
        runner.at(6)
        assert ids_in(rx.received) == Counter({i.id: 1 for i in runner.store.list(limit=1000)})
        assert len(rx.received) == messages
        first = runner.store.get(min(i.id for i in runner.store.list(limit=1000)))
        notes = [e.text for e in first.timeline if e.kind.value == "notified"]
        assert len(notes) == 11 and notes[-1].endswith("delivered (attempt 11)")
        assert all("failed" in n for n in notes[:-1])
        runner.store.close()


def test_two_runners_racing_deliver_every_notification_exactly_once(tmp_path: Path) -> None:
    """Two engines on one store, each with its own connection, race through outage and recovery."""
    with HTTPReceiver() as rx:
        root = project(tmp_path, {"oncall": rx.url().replace("cto=2&rto=2", "cto=1&rto=1")},
                       DELIVERY)
        data = frame(60, [i // 20 for i in range(60)])
        runners = [Runner(root, data), Runner(root, data)]
        for minute in range(6):
            rx.fail = minute < 3
            threads = [threading.Thread(target=r.at, args=(minute,)) for r in runners]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        incidents = runners[0].store.list(limit=1000)
        assert len(incidents) == 60
        assert ids_in(rx.received) == Counter({i.id: 1 for i in incidents})
        assert runners[0].store.outbox(statuses=["pending", "dead"]) == []
        for r in runners:
            r.store.close()


def test_a_storm_of_50_is_one_message_per_channel(tmp_path: Path) -> None:
    """50 incidents opening in one run reach each channel as one digest with a line per incident."""
    with HTTPReceiver() as rx, SMTPReceiver() as mail:
        root = project(tmp_path, {"oncall": rx.url(), "mail": mail.url()},
                       route="  - notify: [oncall, mail]")
        runner = Runner(root, frame(50))
        runner.at(1)
        assert len(rx.received) == 1 and len(mail.messages) == 1
        assert set(ids_in(rx.received)) == {i.id for i in runner.store.list(limit=100)}
        assert rx.received[0]["body"]["title"].startswith("50 incident notifications: 50 opened")
        text = mail.messages[0].get_payload(decode=True).decode()
        assert text.count("OPENED #") == 50
        runner.store.close()


def test_dead_after_the_attempt_limit_then_the_fallback_channel_gets_it(tmp_path: Path) -> None:
    """Two failed attempts make the row dead; the fallback channel receives the message."""
    with HTTPReceiver() as down, HTTPReceiver() as backup:
        root = project(tmp_path, {"oncall": down.url(), "backup": backup.url("/backup")},
                       "delivery: {attempts: 2, fallback: backup}\n")
        down.fail = True
        runner = Runner(root, frame(1))
        runner.at(1)
        assert down.received == []
        [got] = backup.received
        assert "OPENED" in got["body"]["title"]
        assert got["body"]["message"].startswith("Sent here because oncall failed 2 times: ")
        [dead] = runner.store.outbox(statuses=["dead"])
        assert dead.attempts == 2 and dead.envelope.channel == "oncall"
        runner.store.close()


def test_a_digest_of_fallbacks_still_says_why_they_came(tmp_path: Path) -> None:
    """Two pages dead at once reach the fallback as one digest, which says whose they were."""
    with HTTPReceiver() as down, HTTPReceiver() as backup:
        root = project(tmp_path, {"oncall": down.url(), "backup": backup.url("/backup")},
                       "delivery: {attempts: 1, fallback: backup}\n")
        down.fail = True
        runner = Runner(root, frame(2))
        runner.at(1)
        [got] = backup.received
        assert got["body"]["title"] == "2 incident notifications: 2 opened"
        lines = got["body"]["message"].splitlines()
        assert lines[0].startswith("Sent here because oncall failed once: ")
        assert sum(line.startswith("Sent here") for line in lines) == 1
        assert ids_in(backup.received) == Counter({i.id: 1 for i in runner.store.list()})
        runner.store.close()


def test_repeat_and_escalation_until_acknowledged(tmp_path: Path) -> None:
    """Reminders every 10m and one escalation after 15m; acknowledging stops both and is announced."""
    with HTTPReceiver() as rx, HTTPReceiver() as boss:
        route = ("  - notify: [oncall]\n    repeat: 10m\n"
                 "    escalate: {after: 15m, notify: [managers]}")
        root = project(tmp_path, {"oncall": rx.url(), "managers": boss.url("/boss")},
                       route=route)
        runner = Runner(root, frame(1))
        for minute in range(0, 22):
            runner.at(minute)
        titles = [r["body"]["title"] for r in rx.received]
        assert [t.split("]")[1].split("#")[0].strip() for t in titles] == [
            "OPENED", "STILL OPEN, not acknowledged", "STILL OPEN, not acknowledged"]
        assert ["ESCALATED" in r["body"]["title"] for r in boss.received] == [True]
        [incident] = runner.store.list()
        acknowledge(runner.project, runner.store, incident.id, actor="ana",
                    now=T0 + timedelta(minutes=22))
        assert "ACKNOWLEDGED" in rx.received[-1]["body"]["title"]
        # The escalation asked the managers to take it: they hear that someone did.
        assert "ACKNOWLEDGED" in boss.received[-1]["body"]["title"]
        for minute in range(22, 45):
            runner.at(minute)
        assert len(rx.received) == 4 and len(boss.received) == 2
        runner.store.close()


def test_a_silenced_incident_opens_and_is_recorded_but_does_not_page(tmp_path: Path) -> None:
    """A silence on instance=~web-00.* keeps web-000 quiet; its timeline says why."""
    with HTTPReceiver() as rx:
        root = project(tmp_path, {"oncall": rx.url()})
        runner = Runner(root, frame(1))
        runner.store.add_silence(match={}, match_re={"instance": "web-00.*"}, starts_at=T0,
                                 ends_at=T0 + timedelta(hours=2), comment="deploy",
                                 created_by="ana", at=T0)
        runner.at(1)
        [incident] = runner.store.list()
        assert rx.received == []
        notes = [e.text for e in runner.store.get(incident.id).timeline
                 if e.kind.value == "notified"]
        assert notes == ["not sent: silence #1 (deploy)"]
        runner.store.close()


def test_an_incident_still_open_when_its_silence_ends_pages_then_once(tmp_path: Path) -> None:
    """Silenced at its opening, expired early while it is still open: the next run pages it."""
    with HTTPReceiver() as rx:
        root = project(tmp_path, {"oncall": rx.url()})
        runner = Runner(root, frame(1))
        silence = runner.store.add_silence(match={}, match_re={"instance": "web-00.*"},
                                           starts_at=T0, ends_at=T0 + timedelta(hours=2),
                                           comment="deploy", created_by="ana", at=T0)
        runner.at(1)
        runner.at(2)
        assert rx.received == []
        runner.store.expire_silence(silence.id, at=T0 + timedelta(minutes=2, seconds=30))
        for minute in (3, 4, 5):
            runner.at(minute)
        [page] = rx.received
        assert page["body"]["title"].startswith("[CRITICAL] OPENED #1: load")
        assert "held back when it opened (silence or maintenance window)" in page["body"]["message"]
        runner.store.close()


def test_a_failed_delivery_never_shows_the_channel_secret(tmp_path: Path) -> None:
    """The token in a failing channel URL is on no timeline line and in no outbox error."""
    with HTTPReceiver() as rx:
        rx.fail = True
        secret = "s3cr3t-t0ken-abcdef123456"
        url = f"json://bot:{secret}@127.0.0.1:{rx.port}/hook?cto=1&rto=1"
        root = project(tmp_path, {"oncall": url})
        runner = Runner(root, frame(1))
        runner.at(1)
        [incident] = runner.store.list()
        texts = [e.text + str(e.data) for e in runner.store.get(incident.id).timeline]
        errors = [i.last_error or "" for i in runner.store.outbox()]
        assert any("failed" in t for t in texts)
        assert not any(secret in t for t in texts + errors)
        runner.store.close()


def test_drill_incidents_never_reach_real_channels(tmp_path: Path) -> None:
    """A drill incident is routed to drill: channels, which a real runner never delivers."""
    with HTTPReceiver() as rx:
        root = project(tmp_path, {"oncall": rx.url()})
        runner = Runner(root, frame(1))
        from incident.model import Severity

        runner.store.open_incident(
            fingerprint="drill:x", check=None, title="drill", severity=Severity.CRITICAL,
            labels={}, runbook=None, detected_at=T0, at=T0, value=None,
            reopen_window=timedelta(0), actor="drill", drill=True,
            notifications=runner.engine.pipeline.on("opened", T0))
        assert runner.engine.pipeline.deliver(T0) == []
        assert rx.received == []
        assert [(o.envelope.channel, o.status) for o in runner.store.outbox()] == [
            ("drill:oncall", "pending")]
        runner.store.close()


@pytest.mark.parametrize(("extra", "messages"), [("", 1), ("delivery: {group_over: 2}\n", 2)])
def test_two_incidents_opening_in_one_run_are_one_message_unless_group_over_is_raised(
        tmp_path: Path, extra: str, messages: int) -> None:
    """By default any two opens due together for a channel are one digest; group_over splits."""
    with HTTPReceiver() as rx:
        root = project(tmp_path, {"oncall": rx.url()}, extra)
        runner = Runner(root, frame(2))
        runner.at(1)
        assert len(rx.received) == messages
        assert ids_in(rx.received) == Counter({i.id: 1 for i in runner.store.list()})
        if messages == 1:
            assert rx.received[0]["body"]["title"] == "2 incident notifications: 2 opened"
        runner.store.close()


def test_a_status_update_is_never_folded_into_a_digest(tmp_path: Path) -> None:
    """Retries due with an update go out as one digest; the update keeps its own message."""
    from incident.notify.actions import post_update

    with HTTPReceiver() as rx:
        root = project(tmp_path, {"oncall": rx.url()}, DELIVERY)
        runner = Runner(root, frame(2))
        rx.fail = True
        runner.at(1)
        rx.fail = False
        first = min(i.id for i in runner.store.list())
        post_update(runner.project, runner.store, first, "Failover started", actor="ana",
                    now=T0 + timedelta(minutes=5))
        titles = sorted(r["body"]["title"] for r in rx.received)
        assert titles == ["2 incident notifications: 2 opened",
                          f"[CRITICAL] UPDATE #{first}: load (instance=web-000)"]
        runner.store.close()


def test_group_over_below_one_is_refused_with_the_field(tmp_path: Path) -> None:
    """`delivery.group_over: 0` names the field and the rule."""
    from incident.errors import ConfigError

    root = project(tmp_path, {"oncall": "json://127.0.0.1:9/x"}, "delivery: {group_over: 0}\n")
    with pytest.raises(ConfigError, match=r"delivery.group_over: expected a whole number ≥ 1"):
        load_project(root, {})


def test_a_reopened_incident_reminds_and_escalates_counting_from_the_reopen(
        tmp_path: Path) -> None:
    """Open at 0, resolved at 25, reopened at 30: reminders at 10, 20, 40, 50; escalations 15, 45."""
    with HTTPReceiver() as rx, HTTPReceiver() as boss:
        route = ("  - notify: [oncall]\n    repeat: 10m\n"
                 "    escalate: {after: 15m, notify: [managers]}")
        root = project(tmp_path, {"oncall": rx.url(), "managers": boss.url("/boss")},
                       "reopen_window: 30m\n", route=route)
        index = pd.date_range(T0, periods=60, freq="1min", name="time")
        values = np.where((np.arange(60) < 25) | (np.arange(60) >= 30), 5.0, 0.5)
        runner = Runner(root, pd.DataFrame({Labels({"instance": "web-000"}): values},
                                           index=index))
        seen: list[tuple[int, str]] = []  # (minute, what arrived), both channels
        for minute in range(56):
            before = len(rx.received), len(boss.received)
            runner.at(minute)
            seen += [(minute, r["body"]["title"].split("]")[1].split("#")[0].strip())
                     for r in rx.received[before[0]:] + boss.received[before[1]:]]
        reminder = "STILL OPEN, not acknowledged"
        # Escalated at 15, the managers hear the resolution at 25 too; not the reopen.
        assert seen == [(0, "OPENED"), (10, reminder), (15, "ESCALATED"), (20, reminder),
                        (25, "RESOLVED"), (25, "RESOLVED"), (30, "REOPENED"), (40, reminder),
                        (45, "ESCALATED"), (50, reminder)]
        keys = sorted(i.envelope.event_key for i in runner.store.outbox()
                      if i.envelope.event in ("reminder", "escalated"))
        assert keys == ["escalated", "escalated:1", "reminder:1", "reminder:1:1", "reminder:1:2",
                        "reminder:2"]
        runner.store.close()


def test_an_escalation_of_an_earlier_episode_does_not_make_the_managers_hear_this_ack(
        tmp_path: Path) -> None:
    """Escalated at 15, resolved at 25, reopened at 30 and acknowledged at 35: only oncall hears
    the ack, for the managers were not paged about this episode."""
    with HTTPReceiver() as rx, HTTPReceiver() as boss:
        route = "  - notify: [oncall]\n    escalate: {after: 15m, notify: [managers]}"
        root = project(tmp_path, {"oncall": rx.url(), "managers": boss.url("/boss")},
                       "reopen_window: 30m\n", route=route)
        index = pd.date_range(T0, periods=60, freq="1min", name="time")
        values = np.where((np.arange(60) < 25) | (np.arange(60) >= 30), 5.0, 0.5)
        runner = Runner(root, pd.DataFrame({Labels({"instance": "web-000"}): values},
                                           index=index))
        for minute in range(35):
            runner.at(minute)
        [incident] = runner.store.list()
        acknowledge(runner.project, runner.store, incident.id, actor="ana",
                    now=T0 + timedelta(minutes=35))
        for minute in range(35, 55):
            runner.at(minute)
        verbs = [r["body"]["title"].split("]")[1].split("#")[0].strip() for r in boss.received]
        assert verbs == ["ESCALATED", "RESOLVED"]
        assert "ACKNOWLEDGED" in rx.received[-1]["body"]["title"]
        runner.store.close()


def test_rate_limit_holds_back_and_never_drops(tmp_path: Path) -> None:
    """Five messages at 2 a minute go out 2, 2, 1 over three runs; a run at an earlier clock
    does not count later sends against its budget."""
    with HTTPReceiver() as rx:
        root = project(tmp_path, {"oncall": rx.url()},
                       "delivery: {rate_limit: 2/1m, group_over: 1000}\n")
        runner = Runner(root, frame(5))
        sent = []
        for minute in (10, 11, 12):
            runner.at(minute)
            sent.append(len(rx.received))
        assert sent == [2, 4, 5]
        assert ids_in(rx.received) == Counter({i.id: 1 for i in runner.store.list()})
        window = {"since": T0 + timedelta(minutes=9), "until": T0 + timedelta(minutes=10)}
        assert runner.store.sent_messages("oncall", since=window["until"],
                                          until=T0 + timedelta(minutes=11)) == 2
        assert runner.store.sent_messages("oncall", **window) == 2
        earlier = {"since": T0, "until": T0 + timedelta(minutes=1)}
        assert runner.store.sent_messages("oncall", **earlier) == 0
        runner.store.close()
