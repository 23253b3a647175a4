"""One typo must not stop monitoring: broken check and runbook files are left out and paged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident.cli import main

AT = "2026-11-02T12:00:00Z"


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    """`incident --project ROOT ARGS`: exit code, stdout, stderr."""
    result = CliRunner().invoke(main, ["--project", str(root), *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def shop(sample: Path) -> Path:
    """The sample with a day of data, then a typo in a check and broken runbook front matter."""
    assert cli(sample, "simulate", "--end", AT, "--days", "1")[0] == 0
    api = sample / "checks" / "api.yaml"
    api.write_text(api.read_text().replace("type: burn_rate", "type: burn_rat", 1))
    runbook = sample / "runbooks" / "database-failure.md"
    runbook.write_text(runbook.read_text().replace("title:", "title: [unclosed", 1))
    return sample


def active(root: Path) -> dict[str, dict]:
    code, out, _ = cli(root, "list", "--json")
    assert code == 0
    return {i["fingerprint"]: i for i in json.loads(out)}


def test_the_rest_runs_and_the_broken_files_are_incidents(shop: Path) -> None:
    """check evaluates every valid check, pages about each broken file and exits 2."""
    code, out, err = cli(shop, "check", "--at", AT, "--json")
    assert code == 2
    report = json.loads(out)
    ran = {r["check"] for r in report["checks"]}
    assert "api-error-budget" not in ran  # the broken one
    assert {"payment-success-rate", "db-query-latency", "server-down"} <= ran
    assert "checks/api.yaml:" in err and "unknown detector 'burn_rat'" in err
    incidents = active(shop)
    broken_check = incidents['config-invalid{file="checks/api.yaml"}']
    broken_runbook = incidents['config-invalid{file="runbooks/database-failure.md"}']
    assert broken_check["severity"] == "critical"
    assert broken_check["title"] == "checks/api.yaml is invalid: its broken checks are not evaluated"
    assert broken_runbook["severity"] == "high"
    # A second run keeps them: one incident per file, not one per run.
    cli(shop, "check", "--at", "2026-11-02T12:01:00Z")
    assert sorted(fp for fp in active(shop) if fp.startswith("config-invalid")) == [
        'config-invalid{file="checks/api.yaml"}',
        'config-invalid{file="runbooks/database-failure.md"}']


def test_people_can_still_work_incidents(shop: Path) -> None:
    """ack and show work with the broken files in place, and say what is wrong on stderr."""
    cli(shop, "check", "--at", AT)
    number = str(active(shop)['config-invalid{file="checks/api.yaml"}']["id"])
    code, out, err = cli(shop, "ack", number, "--by", "mei")
    assert code == 0 and "acknowledged by mei" in out
    assert err.startswith("warning: runbooks/database-failure.md:3:")
    assert "warning: checks/api.yaml:" in err
    assert "`incident checks validate` lists every problem" in err


def test_fixing_the_files_resolves_their_incidents(shop: Path) -> None:
    """The first run after a file is valid again resolves its incident."""
    cli(shop, "check", "--at", AT)
    api = shop / "checks" / "api.yaml"
    api.write_text(api.read_text().replace("type: burn_rat", "type: burn_rate"))
    code, _, err = cli(shop, "check", "--at", "2026-11-02T12:01:00Z")
    assert code == 2 and "checks/api.yaml" not in err  # the runbook is still broken
    fps = [fp for fp in active(shop) if fp.startswith("config-invalid")]
    assert fps == ['config-invalid{file="runbooks/database-failure.md"}']


def test_validate_and_a_broken_incident_yaml_stay_strict(shop: Path) -> None:
    """checks validate still fails on every problem; nothing runs without incident.yaml."""
    code, _, err = cli(shop, "checks", "validate")
    assert code == 2 and err.strip().endswith("2 problems found")
    settings = shop / "incident.yaml"
    settings.write_text(settings.read_text().replace("default_source: local", "default_source: nowhere"))
    code, out, err = cli(shop, "check", "--at", AT)
    assert code == 2 and out == ""
    assert "incident.yaml" in err and "nowhere" in err
