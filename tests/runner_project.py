"""A project for runner tests: N threshold checks over one local CSV, the first few breaching.

A plain module (not a conftest) so test_runners.py and test_runners_pg.py share it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from incident.timeutil import iso

AT = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def check_name(i: int) -> str:
    """The name of check number i."""
    return f"load-{i:02d}"


def make_project(root: Path, *, store: str, checks: int = 50, breaching: int = 20,
                 lease_ttl: str = "2m", minutes_after: int = 10) -> Path:
    """A project under `root` whose checks 0..breaching-1 breach from AT-30m on; root."""
    for part in ("checks", "runbooks", "data"):
        (root / part).mkdir(parents=True, exist_ok=True)
    (root / "incident.yaml").write_text(f"""
store: "{store}"
sources:
  local: {{type: file, path: data/}}
channels:
  oncall: "file://notifications.log"
routes:
  - notify: [oncall]
runners: {{lease_ttl: {lease_ttl}}}
""")
    (root / "checks" / "load.yaml").write_text("".join(f"""
- name: {check_name(i)}
  query: node_load1{{check="{check_name(i)}"}}
  lookback: 1h
  detector: {{type: threshold, above: 1, for: 5m}}
""" for i in range(checks)))
    header = ["timestamp"] + [f'node_load1{{check="{check_name(i)}"}}' for i in range(checks)]
    rows = [",".join(header)]
    for minute in range(-120, minutes_after + 1):
        values = ["5" if i < breaching and minute > -30 else "0.5" for i in range(checks)]
        rows.append(",".join([iso(AT + timedelta(minutes=minute)) or "", *values]))
    (root / "data" / "load.csv").write_text("\n".join(rows) + "\n")
    return root


def notifications(root: Path) -> list[str]:
    """One line per incident notification the file:// channel got (a digest's lines expanded)."""
    import json

    log = root / "notifications.log"
    out: list[str] = []
    for line in log.read_text().splitlines() if log.exists() else []:
        body = json.loads(line)["body"]
        # A storm arrives as one digest message: a summary line, then "- <title>" per incident.
        items = [x for x in body.splitlines() if x.startswith("- ")]
        out += items or [line]
    return out
