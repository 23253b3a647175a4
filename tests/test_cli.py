"""The on-call commands on a real SQLite store: open, ack, note, resolve, list, show, exit codes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from incident.cli import main

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
