"""A live drill in real time: a person acknowledges and does a runbook step with the normal
commands while it runs, and the scorecard scores them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from incident.cli import main


def project(root: Path) -> Path:
    """A five-second check over a CSV that runs a few minutes into the future."""
    (root / "checks").mkdir(parents=True)
    (root / "runbooks").mkdir()
    (root / "drills").mkdir()
    (root / "data").mkdir()
    now = int(datetime.now(UTC).timestamp())
    rows = "\n".join(f"{t},0.99" for t in range(now - 1800, now + 600, 5))
    (root / "data" / "pay.csv").write_text("timestamp,payment_ok\n" + rows + "\n")
    (root / "incident.yaml").write_text("""
sources:
  local: {type: file, path: data/}
channels:
  oncall: "file://real.log"
drills:
  channels:
    oncall: "file://drill.log"
routes:
  - notify: [oncall]
""")
    (root / "runbooks" / "payments.md").write_text(
        "---\ntitle: Payments failing\n---\n1. Check the provider status page\n"
        "2. Switch traffic to the backup provider\n")
    (root / "checks" / "pay.yaml").write_text("""
name: payments
query: payment_ok
every: 5s
lookback: 10m
detector: {type: threshold, below: 0.9, for: 10s}
severity: critical
runbook: payments
""")
    (root / "drills" / "game-day.yaml").write_text("""
name: game-day
description: Payments fail for half a minute; on-call acknowledges and starts the runbook
duration: 45s
inject:
  - {check: payments, from: 5s, to: 30s, fault: {type: set, value: 0.4}}
expect:
  - incident: {check: payments, within: 25s, severity: critical, runbook: payments}
  - acknowledged: {check: payments, within: 40s}
  - steps: {check: payments, done: 1, within: 45s}
  - resolved: {check: payments, within: 45s}
""")
    return root


def cli(root: Path, *args: str) -> str:
    """`incident --project ROOT ARGS` as a person types it; its output."""
    result = CliRunner().invoke(main, ["--project", str(root), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_live_drill_scores_the_people(tmp_path: Path) -> None:
    """People ack and do a step during a live drill; their times are on the scorecard."""
    root = project(tmp_path / "shop")
    env = {**os.environ, "INCIDENT_USER": "drill-master"}
    drill = subprocess.Popen(
        [sys.executable, "-m", "incident", "--project", str(root), "drill", "run", "game-day",
         "--live", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 40
    opened: list[dict] = []
    while not opened and time.monotonic() < deadline:
        time.sleep(0.5)
        opened = json.loads(cli(root, "list", "--json"))
    assert opened, "the live drill opened no incident"
    incident = opened[0]["id"]
    cli(root, "ack", str(incident), "--by", "alice")
    cli(root, "step", str(incident), "1", "--done", "--by", "alice")
    out, err = drill.communicate(timeout=90)
    assert drill.returncode == 0, out + err
    card = json.loads(out)[0]
    assert card["mode"] == "live" and card["status"] == "passed"
    scored = {e["expectation"]: e for e in card["expectations"]}
    ack = scored["acknowledged payments within 40s"]
    assert ack["status"] == "passed" and 0 <= ack["measured_seconds"]["acknowledge"] < 30
    assert scored["steps payments (1 done) within 45s"]["measured_seconds"] == {"steps": 1.0}
    started = datetime.fromisoformat(card["start"])
    assert abs(started - datetime.now(UTC)) < timedelta(minutes=2)  # the wall clock, live
    assert not (root / "real.log").exists() and "[DRILL]" in (root / "drill.log").read_text()
