"""Route tables, cron schedules and maintenance windows, including across clock changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from incident.config import load_project
from incident.cron import next_after, parse
from incident.model import Maintenance
from incident.notify.routing import active_window, channels, matching_routes

ROUTES = """
sources:
  local: {type: file, path: data/}
channels:
  pager: "json://127.0.0.1:9/p"
  payments-chat: "json://127.0.0.1:9/pc"
  managers: "json://127.0.0.1:9/m"
  oncall: "json://127.0.0.1:9/o"
  db-team: "json://127.0.0.1:9/d"
routes:
  - name: payments
    match: {team: payments}
    notify: [payments-chat]
    continue: true
  - name: critical
    match: {severity: critical}
    notify: [pager, managers]
  - name: databases
    match_re: {check: "db-.*", instance: "db-(primary|replica)"}
    notify: [db-team]
  - name: default
    notify: [oncall]
"""


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory):
    """The route table above, parsed by the real config loader."""
    root = tmp_path_factory.mktemp("routes")
    (root / "incident.yaml").write_text(ROUTES)
    return load_project(root, {}).settings.routes


@pytest.mark.parametrize(("attrs", "names", "targets"), [
    ({"severity": "critical", "check": "api"}, ["critical"], ["pager", "managers"]),
    ({"severity": "low", "check": "api"}, ["default"], ["oncall"]),
    ({"severity": "critical", "team": "payments"}, ["payments", "critical"],
     ["payments-chat", "pager", "managers"]),
    ({"severity": "low", "team": "payments"}, ["payments", "default"], ["payments-chat", "oncall"]),
    ({"severity": "high", "check": "db-query-latency", "instance": "db-primary"}, ["databases"],
     ["db-team"]),
    ({"severity": "high", "check": "db-query-latency", "instance": "db-primary-2"}, ["default"],
     ["oncall"]),
    ({"severity": "high", "check": "xdb-query", "instance": "db-primary"}, ["default"], ["oncall"]),
    ({"severity": "critical", "check": "db-query-latency", "instance": "db-replica"},
     ["critical"], ["pager", "managers"]),
])
def test_route_table(routes, attrs: dict[str, str], names: list[str], targets: list[str]) -> None:
    """First match wins; `continue` goes on; regexes are anchored; the empty route is the default."""
    matched = matching_routes(routes, attrs)
    assert [r.name for r in matched] == names
    assert channels(matched) == targets


@pytest.mark.parametrize(("expr", "after", "tz", "expected_local"), [
    ("0 10 * * 2", "2026-11-24T03:00:00Z", "Asia/Shanghai", "2026-12-01 10:00"),
    ("*/15 9-18 * * mon-fri", "2026-11-28T03:00:00Z", "Asia/Shanghai", "2026-11-30 09:00"),
    ("@daily", "2026-11-24T16:30:00Z", "UTC", "2026-11-25 00:00"),
    ("0 0 1,15 * *", "2026-11-02T00:00:00Z", "UTC", "2026-11-15 00:00"),
    ("0 12 13 * 5", "2026-11-01T00:00:00Z", "UTC", "2026-11-06 12:00"),  # day OR weekday
])
def test_cron_next_firing(expr: str, after: str, tz: str, expected_local: str) -> None:
    """Cron expressions fire at the next matching local time."""
    got = next_after(parse(expr), datetime.fromisoformat(after.replace("Z", "+00:00")), tz)
    assert got.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") == expected_local


@pytest.mark.parametrize(("expr", "message"), [
    ("0 10 * *", "expected 5 fields"),
    ("61 * * * *", "minute field '61' is outside 0-59"),
    ("0 10 * * funday", "bad day of week field 'funday'"),
])
def test_bad_cron_expressions_say_which_field(expr: str, message: str) -> None:
    """A broken schedule names the field at fault."""
    with pytest.raises(ValueError, match=message):
        parse(expr)


def test_spring_forward_skips_the_missing_hour_and_keeps_local_time() -> None:
    """02:30 does not exist on 8 March 2026 in New York; the window keeps 02:30 local after it."""
    cron = parse("30 2 * * *")
    t = datetime(2026, 3, 7, 12, tzinfo=UTC)
    fired = []
    for _ in range(3):
        t = next_after(cron, t, "America/New_York")
        fired.append(t.astimezone(ZoneInfo("America/New_York")).strftime("%m-%d %H:%M %Z"))
    assert fired == ["03-09 02:30 EDT", "03-10 02:30 EDT", "03-11 02:30 EDT"]


def test_maintenance_window_across_the_autumn_clock_change() -> None:
    """A 01:00-02:00 local window lasts one real hour and follows local time across DST's end."""
    window = Maintenance(name="backup", schedule="0 1 * * *", duration=timedelta(hours=1),
                         timezone="America/New_York", match={"check": "db-query-latency"})
    attrs = {"check": "db-query-latency", "severity": "high"}
    ny = ZoneInfo("America/New_York")

    def at(local: str, fold: int = 0) -> datetime:
        return datetime.fromisoformat(local).replace(tzinfo=ny, fold=fold).astimezone(UTC)

    # Before the change (EDT): 01:00-02:00 local.
    assert active_window([window], attrs, at("2026-10-31T01:30")) is window
    assert active_window([window], attrs, at("2026-10-31T02:05")) is None
    # 1 November: 01:00 EDT happens, then the clocks go back and 01:00 happens again (EST).
    assert active_window([window], attrs, at("2026-11-01T01:30", fold=0)) is window
    assert active_window([window], attrs, at("2026-11-01T01:30", fold=1)) is None
    # After the change (EST): still 01:00-02:00 local, one hour later in UTC than before.
    assert active_window([window], attrs, at("2026-11-02T01:10")) is window
    assert at("2026-11-02T01:10") - at("2026-10-31T01:10") == timedelta(days=2, hours=1)
    assert active_window([window], {"check": "api", "severity": "high"},
                         at("2026-11-02T01:10")) is None


def test_maintenance_config_errors_are_positioned(tmp_path: Path) -> None:
    """A bad schedule or zone in a window is a config error at its line."""
    (tmp_path / "incident.yaml").write_text("""
sources:
  local: {type: file, path: data/}
maintenance:
  - name: backup
    schedule: "0 25 * * *"
    duration: 30m
    timezone: Mars/Olympus
""")
    from incident.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        load_project(tmp_path, {})
    assert [str(p) for p in err.value.problems] == [
        "incident.yaml:6:15: maintenance[0].schedule: hour field '25' is outside 0-23",
        "incident.yaml:8:15: maintenance[0].timezone: unknown time zone 'Mars/Olympus' "
        "(expected an IANA name like Asia/Shanghai)"]
