"""Twenty cron runs at once on one SQLite store: one incident and one notification per fingerprint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from incident.timeutil import iso

AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
PROVIDERS = {"alipay": True, "wechat": True, "card": False}  # True: breaching for 30 minutes


def make_project(root: Path) -> Path:
    """A project whose local CSV data breaches for two of three providers."""
    for part in ("checks", "runbooks", "data"):
        (root / part).mkdir(parents=True)
    (root / "runbooks" / "payment-failure.md").write_text("---\ntitle: Pay\n---\n1. Switch\n")
    (root / "incident.yaml").write_text("""
sources:
  local: {type: file, path: data/}
channels:
  oncall: "file://notifications.log"
routes:
  - notify: [oncall]
""")
    (root / "checks" / "pay.yaml").write_text("""
name: payment-success-rate
query: payment_success_ratio
lookback: 1h
detector: {type: threshold, below: 0.9, for: 5m}
runbook: payment-failure
group_by: [provider]
""")
    header = ["timestamp"] + [f'payment_success_ratio{{provider="{p}"}}' for p in PROVIDERS]
    rows = [",".join(header)]
    for minute in range(-120, 1):
        t = AT + timedelta(minutes=minute)
        values = ["0.5" if bad and minute > -30 else "0.99" for bad in PROVIDERS.values()]
        rows.append(",".join([iso(t) or "", *values]))
    (root / "data" / "payments.csv").write_text("\n".join(rows) + "\n")
    return root


def test_twenty_simultaneous_runs_open_one_incident_per_fingerprint(tmp_path: Path) -> None:
    """20 `incident check` processes racing: exactly 2 incidents, 2 notifications, all exit 0."""
    root = make_project(tmp_path / "shop")
    cmd = [sys.executable, "-m", "incident", "--project", str(root), "check", "--at", iso(AT)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(20)]
    outcomes = [(p.communicate(timeout=120)[1].decode(), p.returncode) for p in procs]
    assert [code for _, code in outcomes] == [0] * 20, outcomes

    listed = subprocess.run([sys.executable, "-m", "incident", "--project", str(root), "list",
                             "--json"], capture_output=True, text=True, check=True)
    incidents = json.loads(listed.stdout)
    assert sorted(i["fingerprint"] for i in incidents) == [
        'payment-success-rate{provider="alipay"}', 'payment-success-rate{provider="wechat"}']

    # Whoever delivers may find both opens due at once: then they arrive as one digest.
    sent = [json.loads(line) for line in (root / "notifications.log").read_text().splitlines()]
    lines = [x for s in sent for x in (s["body"].splitlines() if s["title"].startswith("2 ")
                                       else [s["title"]]) if "OPENED #" in x]
    assert sorted(re.sub(r".*provider=(\w+).*", r"\1", x) for x in lines) == ["alipay", "wechat"]
    assert len(sent) in (1, 2) and all(s["title"].startswith(("2 incident", "[")) for s in sent)
    for incident in incidents:
        shown = subprocess.run([sys.executable, "-m", "incident", "--project", str(root), "show",
                                str(incident["id"]), "--json"], capture_output=True, text=True,
                               check=True)
        kinds = [e["kind"] for e in json.loads(shown.stdout)["timeline"]]
        assert kinds.count("opened") == 1 and kinds.count("notified") == 1
