"""The engine's incident rules on a real SQLite store: grouping, no_data, hysteresis, reopening."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from incident.config import load_project
from incident.engine import Engine, State, fingerprint, judge
from incident.model import Labels, NoData, Status
from incident.notify import Notifier
from incident.store import Store
from incident.testing import FrameSource

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
A = Labels({"provider": "alipay", "instance": "pay-1"})
B = Labels({"provider": "alipay", "instance": "pay-2"})
C = Labels({"provider": "card", "instance": "pay-1"})


def series(**columns: list[float]) -> pd.DataFrame:
    """A one-minute frame from T0; column names a/b/c stand for labels A/B/C."""
    by_name = {"a": A, "b": B, "c": C}
    n = max(len(v) for v in columns.values())
    index = pd.date_range(T0, periods=n, freq="1min", name="time")
    data = {by_name[k]: v + [np.nan] * (n - len(v)) for k, v in columns.items()}
    return pd.DataFrame(data, index=index, dtype=float)


def make(tmp_path: Path, detector: str = "{type: threshold, below: 0.9, for: 5m}",
         no_data: str = "keep", group_by: str = "[provider]", reopen: str = "30m") -> Path:
    """A one-check project (payments below 0.9) with a file channel."""
    for part in ("checks", "runbooks"):
        (tmp_path / part).mkdir(exist_ok=True)
    (tmp_path / "incident.yaml").write_text(f"""
sources:
  fake: {{type: file, path: data/}}
reopen_window: {reopen}
channels:
  oncall: "file://sent.log"
routes:
  - notify: [oncall]
""")
    (tmp_path / "checks" / "pay.yaml").write_text(f"""
name: pay
query: payment_success_ratio
lookback: 1h
detector: {detector}
group_by: {group_by}
no_data: {no_data}
""")
    return tmp_path


class Harness:
    """A project, a real store and an engine whose source is a scripted frame."""

    def __init__(self, root: Path, frame: pd.DataFrame) -> None:
        self.project = load_project(root, {})
        self.store = Store.connect(self.project.settings.store, root=root)
        self.source = FrameSource("fake", frame)
        self.engine = Engine(self.project, {"fake": self.source}, self.store,
                             Notifier(self.project.settings, root))
        self.root = root

    def at(self, minute: int) -> list[str]:
        """Run every check as of T0 + minute; the actions taken."""
        report = self.engine.run(T0 + timedelta(minutes=minute))
        return [a.kind for r in report.results for a in r.actions]

    def incidents(self) -> list:
        return self.store.list(statuses=None)

    def sent(self) -> list[str]:
        path = self.root / "sent.log"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def harness(tmp_path: Path):
    """Build a Harness for a frame and project options; closes the store afterwards."""
    made: list[Harness] = []

    def build(frame: pd.DataFrame, **options: str) -> Harness:
        h = Harness(make(tmp_path, **options), frame)
        made.append(h)
        return h

    yield build
    for h in made:
        h.store.close()


def test_fingerprint_is_check_name_and_group_values() -> None:
    """group_by labels name the incident; without group_by the check is one incident."""
    assert fingerprint("pay", ("provider",), A) == ('pay{provider="alipay"}',
                                                    Labels({"provider": "alipay"}))
    assert fingerprint("pay", (), A) == ("pay", Labels())


def test_series_of_one_group_make_one_finding() -> None:
    """Two alipay instances breaching are one alipay incident; card stays clear."""
    project = load_project(make_root := make(Path(__import__("tempfile").mkdtemp())), {})
    assert make_root.exists()
    frame = series(a=[0.5] * 10, b=[0.5] * 10, c=[0.99] * 10)
    findings = judge(project.check("pay"), frame, T0 + timedelta(minutes=9))
    assert [(f.fingerprint, f.state) for f in findings] == [
        ('pay{provider="alipay"}', State.FIRING), ('pay{provider="card"}', State.CLEAR)]
    assert findings[0].detected_at == T0 and findings[0].fired_at == T0 + timedelta(minutes=5)


@pytest.mark.parametrize(("rule", "status_after_gap"), [
    ("keep", Status.OPEN), ("resolve", Status.RESOLVED)])
def test_missing_data_resolves_only_when_the_check_says_so(harness, rule: str,
                                                          status_after_gap: Status) -> None:
    """An open incident whose series vanishes stays open under keep, resolves under resolve."""
    h = harness(series(a=[0.5] * 10), no_data=rule)
    assert h.at(8) == ["opened"]
    h.at(30)  # the series stopped at minute 9
    [incident] = h.incidents()
    assert incident.status is status_after_gap


def test_no_data_alert_opens_an_incident_for_a_silent_series(harness) -> None:
    """Under no_data: alert, a series that stops reporting is itself an incident."""
    h = harness(series(a=[0.99] * 10, c=[0.99] * 40), no_data="alert")
    assert h.at(20) == ["opened"]
    [incident] = h.incidents()
    assert incident.fingerprint == 'pay{provider="alipay"}'
    assert incident.detected_at == T0 + timedelta(minutes=10)


def test_hysteresis_keeps_an_incident_open_after_its_breach_left_the_window(harness) -> None:
    """Between `clear` and the threshold the incident holds, even two hours later; past clear it resolves."""
    values = [0.5] * 10 + [0.93] * 150 + [0.99] * 5
    h = harness(series(a=values), detector="{type: threshold, below: 0.9, for: 5m, clear: 0.95}")
    assert h.at(9) == ["opened"]
    for minute in (30, 90, 159):
        assert "resolved" not in h.at(minute)
    assert h.incidents()[0].status is Status.OPEN
    assert h.at(161) == ["resolved"]
    assert h.incidents()[0].resolved_at == T0 + timedelta(minutes=160)


def test_between_the_threshold_and_clear_with_nothing_open_is_not_firing(harness) -> None:
    """Hysteresis holds an open incident; it opens none, and a dry run does not predict one."""
    h = harness(series(a=[0.93] * 30), detector="{type: threshold, below: 0.9, for: 5m, clear: 0.95}")
    now = T0 + timedelta(minutes=29)
    for dry_run in (True, False):
        [result] = h.engine.run(now, dry_run=dry_run).results
        assert [(f.state, f.reason) for f in result.findings] == [(State.CLEAR, "")]
        assert result.actions == ()
    assert h.incidents() == []


def test_a_breach_within_the_reopen_window_reopens_the_same_incident(harness) -> None:
    """Flapping reopens the resolved incident; after the window a new one opens."""
    values = [0.5] * 10 + [0.99] * 10 + [0.5] * 10 + [0.99] * 60 + [0.5] * 10
    h = harness(series(a=values))
    assert h.at(9) == ["opened"]
    assert h.at(11) == ["resolved"]
    assert h.at(29) == ["reopened"]
    assert h.at(31) == ["resolved"]
    assert h.at(99) == ["opened"]
    first, second = sorted(h.incidents(), key=lambda i: i.id)
    assert first.reopened == 1 and second.id != first.id
    verbs = [re.search(r"\] (\w+) #", json.loads(s)["title"]).group(1) for s in h.sent()]
    assert verbs == ["OPENED", "RESOLVED", "REOPENED", "RESOLVED", "OPENED"]


def test_dry_run_writes_and_sends_nothing(harness) -> None:
    """--dry-run reports the incident it would open and leaves store and channels alone."""
    h = harness(series(a=[0.5] * 10))
    report = h.engine.run(T0 + timedelta(minutes=9), dry_run=True)
    assert [a.kind for r in report.results for a in r.actions] == ["opened"]
    assert h.incidents() == [] and h.sent() == []


def test_value_jumps_are_recorded_but_small_drifts_are_not(harness) -> None:
    """A 20% move of the breaching value adds a timeline line; a small drift does not."""
    h = harness(series(a=[0.5] * 10 + [0.49] * 2 + [0.2] * 5))
    h.at(9)
    assert h.at(11) == []
    assert h.at(13) == ["updated"]
    [incident] = h.incidents()
    texts = [e.text for e in h.store.get(incident.id).timeline if e.kind.value == "updated"]
    assert texts[-1] == "value 0.49 → 0.2"


def test_no_data_rule_enum_covers_the_design() -> None:
    """keep, alert and resolve are the three rules a check can name."""
    assert [r.value for r in NoData] == ["keep", "alert", "resolve"]


def test_an_open_incident_becomes_more_urgent_with_its_firing(harness) -> None:
    """A slow burn opens a low incident; a fast burn raises it to critical and pages again."""
    ratio = [1.0] * 60 + [0.97] * 40 + [0.5] * 30
    h = harness(series(a=ratio), group_by="[]", detector=(
        "{type: burn_rate, objective: 0.99, windows: ["
        "{long: 10m, short: 2m, burn: 20, severity: critical}, "
        "{long: 30m, short: 5m, burn: 2, severity: low}]}"))
    opened_at = next(m for m in range(60, 100) if "opened" in h.at(m))
    [incident] = h.incidents()
    assert incident.severity.value == "low"
    raised = [m for m in range(opened_at + 1, 130) if "raised" in h.at(m)]
    assert len(raised) == 1 and raised[0] > 100  # once, when the fast pair fires
    [incident] = h.incidents()
    timeline = h.store.get(incident.id).timeline
    assert incident.severity.value == "critical"
    assert [e.text.split(":")[0] for e in timeline if e.kind.value == "escalated"] == [
        "severity low → critical"]
    titles = [json.loads(line)["title"] for line in h.sent()]
    assert titles == [f"[LOW] OPENED #{incident.id}: pay",
                      f"[CRITICAL] MORE URGENT #{incident.id}: pay"]
