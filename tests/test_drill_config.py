"""drills/*.yaml validation: each mistake in a scenario gives its exact file:line:col message,
and the sample project's drills load clean."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sampleproject import copy_sample

from incident.config import load_project
from incident.errors import ConfigError
from incident.model import ExpectKind, Project

SAMPLE_DRILLS = ("api-error-spike", "conversion-drop", "database-failure", "network-attack",
                 "payment-failure", "server-down")

# One scenario per case, written as drills/bad.yaml into a copy of the sample project. In the
# expected lines {checks}, {runbooks} and {channels} stand for the sample's names, sorted.
CASES = [
    ("unknown-check-in-inject", """
        name: bad
        duration: 30m
        inject:
          - check: api-succes-rate
            from: 2m
            to: 10m
            fault: {type: set, value: 0.5}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:12: inject[0].check: unknown check 'api-succes-rate' "
              "(known: {checks}); did you mean 'api-success-rate'?"]),
    ("unknown-check-in-expect", """
        name: bad
        duration: 30m
        expect:
          - no_incident: {check: nope}
        """, ["drills/bad.yaml:4:26: expect[0].no_incident.check: unknown check 'nope' "
              "(known: {checks})"]),
    ("unknown-fault-type", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
            fault: {type: mutliply, by: 2}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:7:19: inject[0].fault.type: unknown fault type 'mutliply' "
              "(known: add, drop, flatline, multiply, noise, ramp, set); did you mean 'multiply'?"]),
    ("metric-no-check-reads", """
        name: bad
        duration: 30m
        inject:
          - metric: 'http_request_total{code="500"}'
            from: 2m
            to: 10m
            fault: {type: multiply, by: 2}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:13: inject[0].metric: no check reads metric "
              "'http_request_total' (checks read: http_requests_total, node_cpu_seconds_total, "
              "node_load5, pg_query_duration_seconds_bucket, pg_settings_max_connections, "
              "pg_stat_activity_count, shop_orders_total, shop_payments_total, "
              "shop_sessions_total, up); did you mean 'http_requests_total'?"]),
    ("no-expectations", """
        name: bad
        duration: 30m
        expect: []
        """, ["drills/bad.yaml:3:9: expect: a drill needs at least one expectation, else it "
              "always passes"]),
    ("set-without-value", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
            fault: {type: set}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:7:12: inject[0].fault: a set fault needs 'value'"]),
    ("ramp-with-to-and-by", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
            fault: {type: ramp, to: 0.5, by: 2}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:7:12: inject[0].fault: a ramp fault needs one of 'to' (a level) "
              "or 'by' (a factor)"]),
    ("ramp-with-neither", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
            fault: {type: ramp}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:7:12: inject[0].fault: a ramp fault needs one of 'to' (a level) "
              "or 'by' (a factor)"]),
    ("parameter-the-fault-does-not-take", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
            fault: {type: drop, value: 1}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:7:32: inject[0].fault.value: a drop fault does not take 'value'"]),
    ("noise-without-spread", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
            fault: {type: noise, stddev: 0}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:7:34: inject[0].fault.stddev: must be greater than zero"]),
    ("value-not-a-number", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
            fault: {type: set, value: high}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:7:31: inject[0].fault.value: expected a number, got 'high'"]),
    ("to-before-from", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 10m
            to: 2m
            fault: {type: set, value: 0.5}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:6:9: inject[0].to: must be after 'from'"]),
    ("to-beyond-duration", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 45m
            fault: {type: set, value: 0.5}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:6:9: inject[0].to: must be within the drill's duration"]),
    ("within-beyond-duration", """
        name: bad
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 1h}
        """, ["drills/bad.yaml:4:49: expect[0].incident.within: must be within the drill's "
              "duration"]),
    ("expectation-without-within", """
        name: bad
        duration: 30m
        expect:
          - incident: {check: api-success-rate}
        """, ["drills/bad.yaml:4:15: expect[0].incident: missing required key 'within'"]),
    ("unknown-channel-in-notified", """
        name: bad
        duration: 30m
        expect:
          - notified: {channel: pager, within: 10m}
        """, ["drills/bad.yaml:4:25: expect[0].notified.channel: unknown channel 'pager' "
              "(known: {channels}); did you mean 'managers'?"]),
    ("unknown-runbook", """
        name: bad
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 10m, runbook: api-error}
        """, ["drills/bad.yaml:4:63: expect[0].incident.runbook: unknown runbook 'api-error' "
              "(known: {runbooks}); did you mean 'api-errors'?"]),
    ("unknown-severity", """
        name: bad
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 10m, severity: urgent}
        """, ["drills/bad.yaml:4:64: expect[0].incident.severity: unknown severity 'urgent' "
              "(known: critical, high, low, medium)"]),
    ("unknown-expectation", """
        name: bad
        duration: 30m
        expect:
          - incidnet: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:5: expect[0]: unknown expectation 'incidnet' (known: "
              "acknowledged, incident, no_incident, notified, resolved, steps); did you mean "
              "'incident'?"]),
    ("key-the-expectation-does-not-take", """
        name: bad
        duration: 30m
        expect:
          - no_incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:44: expect[0].no_incident.within: unknown key 'within' "
              "(known: check, labels)"]),
    ("cron-hour-out-of-range", """
        name: bad
        schedule: "0 25 * * 2"
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:2:11: schedule: hour field '25' is outside 0-23"]),
    ("cron-not-five-fields", """
        name: bad
        schedule: every tuesday
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:2:11: schedule: expected 5 fields (minute hour day month weekday), "
              "got 2 in 'every tuesday'"]),
    ("unknown-timezone", """
        name: bad
        timezone: Asia/Shangai
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:2:11: timezone: unknown time zone 'Asia/Shangai' (expected an IANA "
              "name like Asia/Shanghai)"]),
    ("neither-check-nor-metric", """
        name: bad
        duration: 30m
        inject:
          - from: 2m
            to: 10m
            fault: {type: set, value: 0.5}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:5: inject[0]: expected exactly one of 'check' (its evaluated "
              "series) or 'metric' (a raw series selector of a local source)"]),
    ("both-check-and-metric", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            metric: up
            from: 2m
            to: 10m
            fault: {type: set, value: 0.5}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:5: inject[0]: expected exactly one of 'check' (its evaluated "
              "series) or 'metric' (a raw series selector of a local source)"]),
    ("metric-is-an-expression", """
        name: bad
        duration: 30m
        inject:
          - metric: rate(http_requests_total[5m])
            from: 2m
            to: 10m
            fault: {type: multiply, by: 2}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:13: inject[0].metric: expected a plain series selector like "
              'http_requests_total{code="500"}']),
    ("metric-with-offset", """
        name: bad
        duration: 30m
        inject:
          - metric: up offset 5m
            from: 2m
            to: 10m
            fault: {type: drop}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:13: inject[0].metric: expected a plain series selector like "
              'http_requests_total{code="500"}']),
    ("metric-does-not-parse", """
        name: bad
        duration: 30m
        inject:
          - metric: 'http_requests_total{code="500"'
            from: 2m
            to: 10m
            fault: {type: multiply, by: 2}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:13: inject[0].metric: not a series selector: 1:31: unexpected "
              "end of input in label matching"]),
    ("injection-without-fault", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:4:5: inject[0]: missing required key 'fault'"]),
    ("missing-expect", """
        name: bad
        duration: 30m
        """, ["drills/bad.yaml:1:1: missing required key 'expect'"]),
    ("misspelt-key", """
        name: bad
        duration: 30m
        expcet:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:1:1: missing required key 'expect'",
              "drills/bad.yaml:3:1: expcet: unknown key 'expcet' (known: description, duration, "
              "expect, inject, name, real_channels, roles, schedule, timezone); did you mean "
              "'expect'?"]),
    ("misspelt-fault-key", """
        name: bad
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 10m
            fault: {type: set, valeu: 1}
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:7:12: inject[0].fault: a set fault needs 'value'",
              "drills/bad.yaml:7:24: inject[0].fault.valeu: unknown key 'valeu' (known: by, seed, "
              "stddev, to, type, value); did you mean 'value'?"]),
    ("bad-drill-name", """
        name: Bad_Drill
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """, ["drills/bad.yaml:1:7: name: expected lowercase words and dashes, like db-failure"]),
    ("not-a-mapping", """
        - name: bad
          duration: 30m
        """, ["drills/bad.yaml:1:1: expected a mapping, got a list"]),
    ("several-at-once", """
        name: bad
        timezone: Mars/Olympus
        duration: 30m
        inject:
          - check: api-success-rate
            from: 2m
            to: 45m
            fault: {type: set}
        expect:
          - notified: {channel: pager, within: 10m}
        """, ["drills/bad.yaml:2:11: timezone: unknown time zone 'Mars/Olympus' (expected an IANA "
              "name like Asia/Shanghai)",
              "drills/bad.yaml:7:9: inject[0].to: must be within the drill's duration",
              "drills/bad.yaml:8:12: inject[0].fault: a set fault needs 'value'",
              "drills/bad.yaml:10:25: expect[0].notified.channel: unknown channel 'pager' "
              "(known: {channels}); did you mean 'managers'?"]),
]


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The sample project, loaded once (its names fill the `known: …` lists)."""
    return load_project(copy_sample(tmp_path_factory.mktemp("clean") / "shop"), env={})


def problems(root: Path, text: str) -> list[str]:
    """Every problem load_project reports once drills/bad.yaml holds `text`."""
    (root / "drills" / "bad.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    with pytest.raises(ConfigError) as caught:
        load_project(root, env={})
    return [str(p) for p in caught.value.problems]


def known(project: Project) -> dict[str, str]:
    """The sample's names, as an `unknown …` message lists them."""
    return {"checks": ", ".join(sorted(c.name for c in project.checks)),
            "runbooks": ", ".join(sorted(project.runbooks)),
            "channels": ", ".join(sorted(project.settings.channels))}


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES],
                         ids=[c for c, _, _ in CASES])
def test_bad_drill_gives_exact_messages(tmp_path: Path, sample_project: Project, text: str,
                                        expected: list[str]) -> None:
    """A broken scenario is reported compiler-style, at the line and column of the mistake."""
    root = copy_sample(tmp_path / "shop")
    names = known(sample_project)
    for key, value in names.items():
        expected = [line.replace("{" + key + "}", value) for line in expected]
    assert problems(root, text) == expected


def test_unknown_real_channel_points_at_the_item(tmp_path: Path) -> None:
    """An unknown name in real_channels is reported at that name, not at the start of the list."""
    root = copy_sample(tmp_path / "shop")
    got = problems(root, """
        name: bad
        duration: 30m
        real_channels: [oncall, oncal]
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """)
    assert got == ["drills/bad.yaml:3:25: real_channels[1]: unknown channel 'oncal' "
                   "(known: managers, oncall); did you mean 'oncall'?"]


def test_unknown_real_channel_is_reported(tmp_path: Path) -> None:
    """An unknown name in real_channels is an error naming the known channels (line as today)."""
    root = copy_sample(tmp_path / "shop")
    got = problems(root, """
        name: bad
        duration: 30m
        real_channels: [oncall, oncal]
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """)
    assert [line.split(": ", 1)[1] for line in got] == [
        "real_channels[1]: unknown channel 'oncal' (known: managers, oncall); did you mean "
        "'oncall'?"]
    assert got[0].startswith("drills/bad.yaml:3:")


def test_duplicate_drill_name_points_at_the_name_with_a_relative_path(tmp_path: Path) -> None:
    """A second drill with a taken name is reported at its `name:` value, the first file shown
    relative to the project like every other path in a message."""
    root = copy_sample(tmp_path / "shop")
    got = problems(root, """
        name: database-failure
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """)
    assert len(got) == 1
    assert str(root) not in got[0]
    assert got[0].split(": ")[0].endswith(":1:7")


def test_duplicate_drill_name_is_reported(tmp_path: Path) -> None:
    """Two drills with one name are an error naming both files."""
    root = copy_sample(tmp_path / "shop")
    got = problems(root, """
        name: database-failure
        duration: 30m
        expect:
          - incident: {check: api-success-rate, within: 10m}
        """)
    assert len(got) == 1
    assert got[0].startswith("drills/database-failure.yaml:1:")
    assert "duplicate drill name 'database-failure'" in got[0] and "bad.yaml" in got[0]


def test_sample_drills_load_clean(sample_project: Project) -> None:
    """The sample project's drills load with no problem, under their expected names."""
    assert tuple(sorted(sample_project.drills)) == SAMPLE_DRILLS
    for name, drill in sample_project.drills.items():
        assert drill.path is not None and drill.path.stem == name
        assert drill.expect, name
        assert drill.schedule == "0 10 * * 2"
        assert drill.timezone == sample_project.settings.timezone  # inherited from incident.yaml


def test_sample_drill_is_parsed_into_typed_parts(sample_project: Project) -> None:
    """One sample scenario read field by field: injections, fault and expectations."""
    drill = sample_project.drills["payment-failure"]
    [inj] = drill.inject
    assert (inj.check, dict(inj.labels), inj.start.total_seconds(), inj.end.total_seconds()) == (
        "payment-success-rate", {"provider": "wechat"}, 120.0, 1200.0)
    assert (inj.fault.type, inj.fault.value) == ("set", 0.55)
    assert [e.kind for e in drill.expect] == [ExpectKind.INCIDENT, ExpectKind.NOTIFIED,
                                              ExpectKind.NOTIFIED, ExpectKind.RESOLVED,
                                              ExpectKind.NO_INCIDENT]
    assert [e.channel for e in drill.expect if e.kind is ExpectKind.NOTIFIED] == ["oncall",
                                                                                  "managers"]
    assert drill.duration.total_seconds() == 1800
