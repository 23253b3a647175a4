"""Runbooks: steps from Markdown, front matter errors, lint, step state and the knowledge base."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident.cli import main
from incident.config import load_project
from incident.errors import ConfigError
from incident.runbooks import lint, parse_steps, search

GOLDEN = Path(__file__).parent / "golden" / "runbooks"

BODY = """Symptoms: checkout slow.

1. Confirm: `psql -h db-primary -c 'select 1'`
2. Check replication lag
   1. on the replica dashboard
   2. with SQL:
      ```sql
      1. this is code, not a step
      select now() - pg_last_xact_replay_timestamp();
      ```
3) Fail over
   with the platform team on the bridge

## After the incident
Tell customers through the status page.
"""


def test_steps_are_the_numbered_items_with_nested_substeps() -> None:
    """Top-level items are 1, 2, 3; nested ones 2.1, 2.2; code stays inside its step."""
    steps = parse_steps(BODY)
    assert [(s.number, s.text) for s in steps] == [
        ("1", "Confirm: `psql -h db-primary -c 'select 1'`"),
        ("2", "Check replication lag"),
        ("2.1", "on the replica dashboard"),
        ("2.2", "with SQL:"),
        ("3", "Fail over with the platform team on the bridge"),
    ]
    sql_step = steps[3]
    assert sql_step.body.splitlines() == [
        "with SQL:", "```sql", "1. this is code, not a step",
        "select now() - pg_last_xact_replay_timestamp();", "```"]
    assert steps[4].body == "Fail over\nwith the platform team on the bridge"


@pytest.mark.parametrize(("body", "numbers"), [
    ("no list here\n", []),
    ("```\n1. code\n2. code\n```\n", []),
    ("    1. indented code block\n", []),
    ("1. a\n\n   still a\n2. b\n", ["1", "2"]),
    ("Intro\n\n1. a\n2. b\n\nOutro paragraph\n\n1. new list\n", ["1", "2", "3"]),
])
def test_step_parsing_edge_cases(body: str, numbers: list[str]) -> None:
    """Code and prose are not steps; blank lines inside an item keep it going."""
    assert [s.number for s in parse_steps(body)] == numbers


@pytest.mark.parametrize("case", sorted(p.name for p in GOLDEN.iterdir()
                                        if (p / "expected.txt").exists()
                                        and p.name.startswith("bad-")))
def test_front_matter_errors_name_file_and_line(case: str) -> None:
    """A broken front matter is a config error with runbooks/NAME.md:line:col."""
    with pytest.raises(ConfigError) as err:
        load_project(GOLDEN / case, {})
    assert str(err.value) + "\n" == (GOLDEN / case / "expected.txt").read_text()


def test_lint_finds_each_kind_of_problem_in_the_golden_project() -> None:
    """No runbook, unknown check, no steps, overdue review, never reviewed, broken link."""
    project = load_project(GOLDEN / "lint", {})
    found = [str(p) for p in lint(project.runbooks, project.checks, project.root,
                                  date(2026, 11, 24))]
    assert found == (GOLDEN / "lint" / "expected.txt").read_text().splitlines()


def test_search_ranks_title_and_tags_above_body() -> None:
    """A word in the title beats the same word in another runbook's body."""
    project = load_project(GOLDEN / "lint", {})
    assert [rb.name for _, rb in search(project.runbooks, ["failover"])] == [
        "failover", "database-failure"]
    assert [rb.name for _, rb in search(project.runbooks, ["replica"])] == [
        "database-failure", "failover", "no-steps"]
    assert search(project.runbooks, ["replica", "nonexistentword"]) == []


def cli(root: Path, *args: str, user: str = "alice") -> str:
    """Run the CLI on `root`; fail on a non-zero exit."""
    result = CliRunner().invoke(main, ["--project", str(root), *args],
                                env={"INCIDENT_USER": user})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the golden lint project, to open incidents in."""
    root = tmp_path / "p"
    shutil.copytree(GOLDEN / "lint", root)
    return root


def test_step_state_is_recorded_on_the_timeline_and_shown(project: Path) -> None:
    """`incident step` marks steps done or skipped; `show` lists every step with its state."""
    cli(project, "open", "Primary DB down", "--runbook", "database-failure")
    cli(project, "step", "1", "1", "--done", user="bob")
    cli(project, "step", "1", "2.1", "--skip", "--note", "dashboard down too")
    shown = json.loads(cli(project, "show", "1", "--json"))
    assert [(s["number"], s["state"], s["by"]) for s in shown["steps"]] == [
        ("1", "done", "bob"), ("2", "pending", ""), ("2.1", "skipped", "alice"),
        ("2.2", "pending", ""), ("3", "pending", "")]
    assert [e["kind"] for e in shown["timeline"]] == ["opened", "runbook", "step", "step"]
    text = cli(project, "show", "1")
    assert "[x] 1. Confirm the primary is down  (done by bob)" in text
    assert "  [-] 2.1. on the replica dashboard  (skipped by alice: dashboard down too)" in text


def test_unknown_step_is_refused(project: Path) -> None:
    """A step number the runbook does not have is an error listing the real ones."""
    cli(project, "open", "x", "--runbook", "database-failure")
    result = CliRunner().invoke(main, ["--project", str(project), "step", "1", "9", "--done"])
    assert result.exit_code == 5
    assert "has no runbook step '9' (steps: 1, 2, 2.1, 2.2, 3)" in result.stderr


def test_history_after_two_incidents_shows_times_notes_skips_and_lessons(project: Path
                                                                         ) -> None:
    """`runbook show` ends with each incident that used it: resolve time, notes, skips, lessons."""
    cli(project, "open", "DB slow", "--runbook", "database-failure")
    cli(project, "note", "1", "replica lag 3s")
    cli(project, "step", "1", "3", "--skip", "--note", "recovered by itself")
    cli(project, "resolve", "1", "--learned", "check autovacuum before failing over")
    cli(project, "open", "DB down", "--runbook", "database-failure")
    out = cli(project, "runbook", "show", "database-failure")
    history = out[out.index("History"):]
    assert "#2 " in history and "DB down" in history and "still open" in history
    assert "#1 " in history and "resolved in" in history
    assert "learned: check autovacuum before failing over" in history
    assert "note: replica lag 3s" in history
    assert "skipped step 3 (recovered by itself)" in history
    assert history.index("#2 ") < history.index("#1 ")
    listed = json.loads(cli(project, "runbook", "list", "--json"))
    assert {r["name"]: r["incidents"] for r in listed}["database-failure"] == 2


def test_sample_project_runbooks_lint_clean() -> None:
    """The shipped sample project has a runbook for every check and no lint findings."""
    repo = Path(__file__).resolve().parent.parent
    result = CliRunner().invoke(main, ["--project", str(repo), "runbook", "lint"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(": clean")
