"""The on-call commands on a real SQLite store: open, ack, note, resolve, list, show, exit codes."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from incident.cli import main
from incident.timeutil import iso, utcnow

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal project with one runbook and no checks."""
    (tmp_path / "checks").mkdir()
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "payment-failure.md").write_text("---\ntitle: Pay\n---\n1. Switch\n")
    (tmp_path / "incident.yaml").write_text(
        "sources:\n  local: {type: file, path: data/}\n")
    return tmp_path


def cli(project: Path, *args: str, user: str = "alice") -> tuple[int, str, str]:
    """Run `incident --project P ARGS` as `user`; return exit code, stdout, stderr."""
    result = CliRunner().invoke(main, ["--project", str(project), *args],
                                env={"INCIDENT_USER": user})
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def test_manual_incident_lifecycle_is_on_the_timeline(project: Path) -> None:
    """open → ack → note → resolve leaves each step, with who did it, on the timeline."""
    code, out, _ = cli(project, "open", "Card payments failing per support", "--severity",
                       "critical", "--runbook", "payment-failure", "--label", "provider=card")
    assert code == 0 and out.startswith("opened #1")
    assert cli(project, "ack", "1", user="bob")[0] == 0
    assert cli(project, "note", "1", "card acquirer confirms outage")[0] == 0
    assert cli(project, "resolve", "1", "--note", "acquirer recovered")[0] == 0

    code, out, _ = cli(project, "show", "1", "--json")
    shown = json.loads(out)
    assert shown["status"] == "resolved" and shown["manual"] is True
    assert shown["acknowledged_by"] == "bob" and shown["resolved_by"] == "alice"
    assert shown["labels"] == {"provider": "card"} and shown["runbook"] == "payment-failure"
    kinds = [(e["kind"], e["actor"]) for e in shown["timeline"]]
    assert kinds == [("opened", "alice"), ("runbook", "alice"), ("acknowledged", "bob"),
                     ("note", "alice"), ("resolved", "alice")]


def test_list_shows_active_by_default_and_all_with_flag(project: Path) -> None:
    """`list` hides resolved incidents unless --all."""
    cli(project, "open", "first")
    cli(project, "open", "second")
    cli(project, "resolve", "1")
    active = json.loads(cli(project, "list", "--json")[1])
    every = json.loads(cli(project, "list", "--all", "--json")[1])
    assert [i["title"] for i in active] == ["second"]
    assert [i["title"] for i in every] == ["second", "first"]


def test_second_ack_and_second_resolve_change_nothing(project: Path) -> None:
    """Acknowledging or resolving twice is harmless and says so."""
    cli(project, "open", "x")
    assert "acknowledged by" in cli(project, "ack", "1")[1]
    assert "already acknowledged" in cli(project, "ack", "1")[1]
    cli(project, "resolve", "1")
    assert "already resolved" in cli(project, "resolve", "1")[1]


@pytest.mark.parametrize(("args", "code", "message"), [
    (["show", "99"], 5, "error: no incident with id 99"),
    (["ack", "99"], 5, "error: no incident with id 99"),
    (["check", "--at", "yesterday-ish"], 2, "error: not a time: 'yesterday-ish'"),
    (["check", "no-such-check"], 5, "error: no check named 'no-such-check'"),
    (["open", "x", "--runbook", "nope"], 5, "error: no runbook 'nope' in runbooks/"),
    (["open", "x", "--label", "novalue"], 2, "error: --label takes K=V, got 'novalue'"),
    (["query", "up", "--source", "nope"], 2, "error: unknown source 'nope'"),
])
def test_bad_requests_get_one_line_and_their_exit_code(project: Path, args: list[str],
                                                       code: int, message: str) -> None:
    """Mistakes give a one-line error and the documented exit code, never a traceback."""
    got, _, err = cli(project, *args)
    assert got == code
    assert err.startswith(message), err


def test_missing_project_is_a_config_error(tmp_path: Path) -> None:
    """Running outside a project says how to point at one, with exit code 2."""
    code, _, err = cli(tmp_path, "list")
    assert code == 2 and "pass --project DIR or set $INCIDENT_PROJECT" in err


def test_project_comes_from_the_environment(project: Path) -> None:
    """$INCIDENT_PROJECT is used when --project is not given."""
    result = CliRunner().invoke(main, ["open", "from env"],
                                env={"INCIDENT_PROJECT": str(project), "INCIDENT_USER": "a"})
    assert result.exit_code == 0 and (project / ".incident" / "incident.db").exists()


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out += _commands(cmd, f"{prefix}{name} ")
        else:
            out.append((f"{prefix}{name}", cmd))
    return out


@pytest.mark.parametrize(("name", "cmd"), _commands(main))
def test_every_command_has_help_with_an_example_and_is_in_the_readme(
        name: str, cmd: click.Command) -> None:
    """A command without help, an example, or a place in the README fails the build."""
    assert cmd.help and "Example" in cmd.help, f"incident {name} needs help with an example"
    readme = (REPO / "README.md").read_text()
    assert re.search(rf"incident (--project \S+ )?{re.escape(name)}\b", readme), (
        f"incident {name} is not in README.md")


# ---------------------------------------------------------------- bad input: exit 2, a clear message


def _no_incidents(root: Path) -> bool:
    return json.loads(cli(root, "list", "--all", "--json")[1]) == []


@pytest.mark.parametrize(("args", "message"), [
    (["list", "--limit", "-1"], "Invalid value for '--limit': -1 is not in the range x>=1."),
    (["list", "--limit", "0"], "Invalid value for '--limit': 0 is not in the range x>=1."),
    (["runbook", "show", "payment-failure", "--history", "0"],
     "Invalid value for '--history': 0 is not in the range x>=1."),
    (["drill", "history", "any", "--limit", "-1"],
     "Invalid value for '--limit': -1 is not in the range x>=1."),
    (["simulate", "--days", "0"], "Invalid value for '--days': 0.0 is not in the range x>0."),
    (["silence", "add", "--match", "team=dba", "--for", "0s"],
     "error: --for must be longer than zero, got '0s'"),
    (["report", "trends", "--since", "0m"], "error: --since must be longer than zero, got '0m'"),
    (["query", "up", "--start", "-1h", "--step", "0s"],
     "error: --step must be longer than zero, got '0s'"),
])
def test_counts_and_durations_of_zero_or_less_are_usage_errors(project: Path,
                                                               args: list[str], message: str) -> None:
    """A limit, history, day count or duration of zero or less is refused, never a traceback."""
    code, _, err = cli(project, *args)
    assert code == 2 and message in err, err


def test_list_limit_still_limits(project: Path) -> None:
    """A positive --limit is taken as before."""
    cli(project, "open", "first")
    cli(project, "open", "second")
    assert [i["title"] for i in json.loads(cli(project, "list", "--limit", "1", "--json")[1])] \
        == ["second"]


def test_step_done_and_skip_together_are_refused_and_nothing_is_recorded(
        project: Path) -> None:
    """`step --done --skip` contradicts itself: exit 2, and no step lands on the timeline."""
    cli(project, "open", "x", "--runbook", "payment-failure")
    code, _, err = cli(project, "step", "1", "1", "--done", "--skip")
    assert code == 2 and err == "error: --done and --skip contradict each other: give one of them\n"
    timeline = json.loads(cli(project, "show", "1", "--json")[1])["timeline"]
    assert "step" not in [e["kind"] for e in timeline]
    assert cli(project, "step", "1", "1", "--skip")[1] == "#1: step 1 skipped\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--mitigated-at", "-1h"], "error: --mitigated-at -1h ("),
    (["--mitigated-at", "+1h"], "error: --mitigated-at +1h ("),
    (["--orders-affected", "-5"], "Invalid value for '--orders-affected': -5 is not in the range x>=0."),
    (["--customers-affected", "-1"],
     "Invalid value for '--customers-affected': -1 is not in the range x>=0."),
    (["--revenue-at-risk", "-3"], "Invalid value for '--revenue-at-risk': -3.0 is not in the range x>=0."),
    (["--revenue-at-risk", "nan"],
     "Invalid value for '--revenue-at-risk': nan is not an amount (expected a number of 0 or more)"),
])
def test_edit_refuses_impossible_postmortem_values(project: Path, args: list[str],
                                                   message: str) -> None:
    """A mitigation before the incident began or in the future, or a negative count, is refused."""
    cli(project, "open", "x")
    code, _, err = cli(project, "edit", "1", *args)
    assert code == 2 and message in err, err


def test_edit_says_why_a_mitigation_time_is_impossible_and_takes_a_possible_one(
        project: Path) -> None:
    """The messages name the incident's start and now; a time in between is stored."""
    cli(project, "open", "x")
    began = json.loads(cli(project, "show", "1", "--json")[1])["detected_at"]
    err = cli(project, "edit", "1", "--mitigated-at", "-1h")[2]
    assert f"is before incident #1 began ({began}): impact cannot stop before it starts" in err
    err = cli(project, "edit", "1", "--mitigated-at", "+1h")[2]
    assert "is in the future (now " in err and "give the time the impact stopped" in err
    code, out, _ = cli(project, "edit", "1", "--mitigated-at", "now", "--orders-affected", "0",
                       "--revenue-at-risk", "12.5")
    assert code == 0 and out == "#1: postmortem updated (mitigated_at, orders_affected, revenue_at_risk)\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--at", "-1h", "--start", "-2h"], "error: --at asks for an instant and --start for a range: "
                                        "give --at T, or --start T [--end T] [--step D], not both"),
    (["--at", "-1h", "--step", "5m"], "error: --at asks for an instant and --step for a range"),
    (["--end", "-1h"], "error: --end needs --start: a range query is --start T [--end T] [--step D]"),
    (["--step", "5m"], "error: --step needs --start"),
    (["--end", "-1h", "--step", "5m"], "error: --end and --step need --start"),
    (["--start", "-1h", "--end", "-2h"], "error: --end -2h ("),
])
def test_query_refuses_mixed_and_orphaned_time_flags(project: Path, args: list[str],
                                                     message: str) -> None:
    """--at is an instant, --start/--end/--step a range: mixing them or a range flag alone is refused."""
    code, _, err = cli(project, "query", "up", *args)
    assert code == 2 and err.startswith(message), err


def test_query_still_answers_at_an_instant_and_over_a_range(project: Path) -> None:
    """Both forms work once the flags agree."""
    now = utcnow().replace(second=0, microsecond=0)
    rows = [f"{iso(now - timedelta(minutes=m))},1" for m in range(60, -1, -1)]
    (project / "data").mkdir()
    (project / "data" / "up.csv").write_text("timestamp,up\n" + "\n".join(rows) + "\n")
    instant = json.loads(cli(project, "query", "up", "--at", "-10m", "--json")[1])
    ranged = json.loads(cli(project, "query", "up", "--start", "-30m", "--end", "-10m",
                            "--step", "5m", "--json")[1])
    assert instant["resultType"] == "vector" and instant["result"][0]["value"][1] == "1"
    assert ranged["resultType"] == "matrix" and len(ranged["result"][0]["values"]) == 5


@pytest.mark.parametrize(("args", "message"), [
    (["open", ""], "error: TITLE is empty (got ''): say what it is about"),
    (["open", "  \t"], "error: TITLE is empty (got '  \\t'): say what it is about"),
    (["note", "1", " "], "error: TEXT is empty (got ' ')"),
    (["update", "1", ""], "error: MESSAGE is empty (got '')"),
    (["action", "add", "1", ""], "error: TEXT is empty (got '')"),
])
def test_blank_titles_and_messages_are_refused(project: Path, args: list[str],
                                               message: str) -> None:
    """A blank title or message would page people or fill the timeline with nothing: exit 2."""
    if args[0] != "open":
        cli(project, "open", "x")
    code, _, err = cli(project, *args)
    assert code == 2 and err.startswith(message), err
    if args[0] == "open":
        assert _no_incidents(project)
    else:
        timeline = json.loads(cli(project, "show", "1", "--json")[1])["timeline"]
        assert [e["kind"] for e in timeline] == ["opened"]


def test_check_refuses_a_future_time_unless_it_only_looks(project: Path) -> None:
    """`check --at +1h` would open incidents stamped ahead and page for them; --dry-run may look."""
    code, out, err = cli(project, "check", "--at", "+1h")
    assert code == 2 and out == ""
    assert "is in the future" in err and "use --dry-run to look ahead" in err
    assert cli(project, "list", "--all", "--json")[1].strip() == "[]"
    assert cli(project, "check", "--at", "+1h", "--dry-run")[0] == 0
    assert cli(project, "check", "--at", "+30s")[0] == 0  # another host's clock, a little ahead


def test_acking_a_resolved_incident_is_a_usage_error(project: Path) -> None:
    """Exit 2 like any request that cannot be done (1 is for the tool failing), one line."""
    cli(project, "open", "Card payments failing")
    cli(project, "resolve", "1")
    code, _, err = cli(project, "ack", "1")
    assert code == 2 and err.startswith("error: incident 1 was resolved") and err.count("\n") == 1
