"""When drills come due (cron schedule against the journal, in a time zone, across DST), and the
starter scenario `drill generate` writes for each sample check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sampleproject import REPO, copy_sample

from incident.config import load_project
from incident.drills.generate import scenario
from incident.drills.schedule import status
from incident.model import (
    AbsentParams,
    AnomalyParams,
    BurnRateParams,
    ChangeParams,
    Direction,
    Drill,
    DrillRun,
    ExpectKind,
    ThresholdParams,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def run(started: datetime, drill: str = "d") -> DrillRun:
    """A finished journal row for `drill` that started at `started`."""
    return DrillRun(id=1, drill=drill, mode="replay", status="passed", started_at=started,
                    finished_at=started + timedelta(minutes=30), sim_start=started,
                    sim_end=started + timedelta(minutes=30), actor="test")


# 2026-03-03 is a Tuesday. America/New_York falls back on 2026-11-01 (01:00-01:59 twice) and
# springs forward on 2026-03-08 (02:00-02:59 never happens).
@pytest.mark.parametrize(("schedule", "tz", "now", "runs", "due", "next_due"), [
    # never run, and the schedule has passed: due, for the slot it missed
    ("0 10 * * 2", "UTC", utc(2026, 3, 3, 10, 30), [], True, utc(2026, 3, 3, 10)),
    # ran after the last slot: not due until next Tuesday
    ("0 10 * * 2", "UTC", utc(2026, 3, 3, 10, 30), [run(utc(2026, 3, 3, 10, 5))], False,
     utc(2026, 3, 10, 10)),
    # a run that started at the slot itself counts
    ("0 10 * * 2", "UTC", utc(2026, 3, 3, 10, 30), [run(utc(2026, 3, 3, 10))], False,
     utc(2026, 3, 10, 10)),
    # the last run was the week before: this week's slot is due
    ("0 10 * * 2", "UTC", utc(2026, 3, 3, 10, 30), [run(utc(2026, 2, 24, 10, 5))], True,
     utc(2026, 3, 3, 10)),
    # another drill's run does not count for this one
    ("0 10 * * 2", "UTC", utc(2026, 3, 3, 10, 30), [run(utc(2026, 3, 3, 10, 5), "other")], True,
     utc(2026, 3, 3, 10)),
    # the newest row decides (the journal lists runs newest first)
    ("0 10 * * 2", "UTC", utc(2026, 3, 3, 10, 30),
     [run(utc(2026, 3, 3, 10, 5)), run(utc(2026, 2, 24, 10, 5))], False, utc(2026, 3, 10, 10)),
    # Asia/Shanghai (UTC+8): Tuesday 10:00 there is 02:00 UTC; one minute before, not yet due
    ("0 10 * * 2", "Asia/Shanghai", utc(2026, 3, 3, 1, 59), [run(utc(2026, 2, 24, 3))], False,
     utc(2026, 3, 3, 2)),
    ("0 10 * * 2", "Asia/Shanghai", utc(2026, 3, 3, 2), [run(utc(2026, 2, 24, 3))], True,
     utc(2026, 3, 3, 2)),
    # fall back: 01:30 happens twice on 2026-11-01 (05:30 and 06:30 UTC) and fires once, at the
    # first; the next slot is 01:30 EST on 11-02, 06:30 UTC
    ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 5, 29), [run(utc(2026, 10, 31, 5, 31))],
     False, utc(2026, 11, 1, 5, 30)),
    ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 5, 30), [run(utc(2026, 10, 31, 5, 31))],
     True, utc(2026, 11, 1, 5, 30)),
    ("30 1 * * *", "America/New_York", utc(2026, 11, 1, 6, 45), [run(utc(2026, 11, 1, 5, 31))],
     False, utc(2026, 11, 2, 6, 30)),
    # spring forward: 02:30 does not exist on 2026-03-08, so nothing comes due that day
    ("30 2 * * *", "America/New_York", utc(2026, 3, 8, 12), [run(utc(2026, 3, 7, 7, 31))],
     False, utc(2026, 3, 9, 6, 30)),
    # no schedule: never due, no next time
    (None, "UTC", utc(2026, 3, 3, 10, 30), [], False, None),
    (None, "UTC", utc(2026, 3, 3, 10, 30), [run(utc(2025, 1, 1))], False, None),
])
def test_status_against_the_journal(schedule: str | None, tz: str, now: datetime,
                                    runs: list[DrillRun], due: bool, next_due: datetime | None
                                    ) -> None:
    """A drill is due when a slot of its schedule passed since its last run; next_due says when."""
    drill = Drill(name="d", schedule=schedule, timezone=tz, duration=timedelta(minutes=30))
    [line] = status({"d": drill}, runs, now)
    assert (line.due, line.next_due) == (due, next_due)
    assert line.last is next((r for r in runs if r.drill == "d"), None)


def test_status_lists_every_drill_by_name() -> None:
    """One line per drill, sorted by name, each with its own last run."""
    drills = {n: Drill(name=n, schedule="0 10 * * 2", duration=timedelta(minutes=30))
              for n in ("b", "a", "c")}
    runs = [run(utc(2026, 3, 3, 10, 5), "b"), run(utc(2026, 2, 24, 10, 5), "a")]
    lines = status(drills, runs, utc(2026, 3, 3, 10, 30))
    assert [(s.drill.name, s.last is not None, s.due) for s in lines] == [
        ("a", True, True), ("b", True, False), ("c", False, True)]


# ---------------------------------------------------------------- drill generate

SAMPLE = load_project(REPO, env={})


@pytest.mark.parametrize("check_name", [c.name for c in SAMPLE.checks])
def test_generated_scenario_loads_and_breaches_its_detector(tmp_path: Path, check_name: str
                                                            ) -> None:
    """The starter scenario is a valid drill whose fault crosses the check's detector level,
    held past its `for`, with the incident expected while the fault is still on."""
    root = copy_sample(tmp_path / "shop")
    project = load_project(root, env={})
    check = project.check(check_name)
    (root / "drills" / "generated.yaml").write_text(scenario(check, project.settings))
    drill = load_project(root, env={}).drills[f"{check_name}-drill"]

    [inj] = drill.inject
    fault = inj.fault
    incident = next(e for e in drill.expect if e.kind is ExpectKind.INCIDENT)
    assert incident.check == check_name and incident.within is not None
    assert incident.severity is check.severity and incident.runbook == check.runbook
    assert inj.start < incident.within <= inj.end <= drill.duration
    assert [e.kind for e in drill.expect][-1] is ExpectKind.RESOLVED
    assert all(e.channel in project.settings.channels for e in drill.expect
               if e.kind is ExpectKind.NOTIFIED)

    p = check.detector
    if isinstance(p, ThresholdParams):
        assert (inj.check, fault.type) == (check_name, "set")
        assert fault.value is not None
        assert fault.value > p.above if p.above is not None else fault.value < (p.below or 0)
        assert incident.within - inj.start >= p.for_
    elif isinstance(p, AbsentParams):
        assert (inj.check, fault.type) == (check_name, "drop")
        assert inj.end - inj.start >= p.for_
    elif isinstance(p, ChangeParams):
        assert inj.check == check_name and inj.end - inj.start >= p.for_
        if p.percent is not None:
            assert fault.type == "multiply" and fault.by is not None
            change, limit = (fault.by - 1) * 100, p.percent
        else:
            assert fault.type == "add" and fault.value is not None and p.delta is not None
            change, limit = fault.value, p.delta
        assert change <= -limit if p.direction is Direction.DOWN else abs(change) >= limit
    elif isinstance(p, AnomalyParams):
        assert (inj.check, fault.type) == (check_name, "multiply") and fault.by is not None
        assert fault.by < 1 if p.direction is Direction.DOWN else fault.by > 1
    else:
        assert isinstance(p, BurnRateParams)
        # good/total: the good requests are cut, burning the budget faster than any window asks
        assert inj.metric is not None and fault.type == "multiply" and fault.by is not None
        assert 1 - fault.by >= max(w.burn for w in p.windows) * (1 - p.objective)
