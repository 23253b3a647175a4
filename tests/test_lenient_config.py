"""One typo must not stop monitoring: broken check and runbook files are left out and paged."""

from __future__ import annotations

import json
import time
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


def test_a_shell_without_the_channel_secret_can_still_open_and_ack(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    """The message waits in the outbox; a run whose environment has the secret delivers it."""
    from incident.testing import HTTPReceiver

    root = tmp_path / "shop"
    (root / "checks").mkdir(parents=True)
    (root / "runbooks").mkdir()
    (root / "incident.yaml").write_text(
        'sources:\n  local: {type: file, path: data/}\nchannels:\n  oncall: "${ONCALL_URL}"\n'
        "routes:\n  - notify: [oncall]\ndelivery: {backoff: 1s, max_backoff: 1s}\n")
    monkeypatch.delenv("ONCALL_URL", raising=False)
    with HTTPReceiver() as rx:
        code, out, err = cli(root, "open", "Card payments failing", "--severity", "critical")
        assert code == 0 and "notified oncall ✗" in out
        assert "warning: incident.yaml:4:11: channels.oncall: environment variable ${ONCALL_URL} " \
               "is not set here: messages to oncall wait for a run that has it" in err
        code, out, _ = cli(root, "show", "1", "--json")
        tried = {e["data"]["error"] for e in json.loads(out)["timeline"] if e["kind"] == "notified"}
        assert tried == {"${ONCALL_URL} not set where this ran: kept for a run whose environment has it"}
        assert cli(root, "ack", "1", "--by", "mei")[0] == 0
        # The cron run without it says so and pages about it elsewhere (here: nowhere else).
        code, _, _ = cli(root, "check")
        assert code == 2
        assert 'config-invalid{file="incident.yaml"}' in active(root)
        assert cli(root, "checks", "validate")[0] == 2  # validate stays strict
        monkeypatch.setenv("ONCALL_URL", rx.url())
        time.sleep(1.5)  # past the retry's 1s backoff
        assert cli(root, "check")[0] == 0
        # The open waited and goes out now, in one digest with the config incident's open and
        # resolve (three due at once for one channel); the acknowledgement goes alone.
        digest, ack = sorted(rx.received, key=lambda x: x["body"]["title"])
        assert digest["body"]["title"] == "3 incident notifications: 2 opened, 1 resolved"
        assert "OPENED #1: Card payments failing" in digest["body"]["message"]
        assert ack["body"]["title"] == "[CRITICAL] ACKNOWLEDGED #1: Card payments failing"
        assert 'config-invalid{file="incident.yaml"}' not in active(root)


def test_the_commands_that_check_the_project_stay_strict(shop: Path) -> None:
    """runbook lint and checks test fail on the broken files instead of passing without them."""
    code, _, err = cli(shop, "runbook", "lint")
    assert code == 2 and "runbooks/database-failure.md:3:" in err
    code, _, err = cli(shop, "checks", "test", "checks/tests/business.yaml")
    assert code == 2 and "checks/api.yaml:" in err
