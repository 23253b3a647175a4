"""Eight `incident check --lease` processes on one real PostgreSQL, through kills and restarts.

One project, 50 checks of which 20 breach; every phase is one cycle (`--at`), and the store is
the only thing the runners share. Phases run in order on one database, as cron would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from runner_project import AT, check_name, make_project, notifications

from incident.store import Store
from incident.timeutil import iso

pytestmark = pytest.mark.postgres

RUNNERS = 8
CHECKS = [check_name(i) for i in range(50)]
BREACHING = 20
TTL = timedelta(seconds=2)


def command(root: Path, *args: str) -> list[str]:
    """`python -m incident --project ROOT ARGS`."""
    return [sys.executable, "-m", "incident", "--project", str(root), *args]


def runner(root: Path, name: str, at: datetime) -> subprocess.Popen[bytes]:
    """Start one cron-like runner for the cycle of `at`."""
    return subprocess.Popen(
        command(root, "check", "--lease", "--runner", name, "--at", iso(at) or "", "--json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_cycle(root: Path, at: datetime, tag: str) -> Counter[str]:
    """Eight runners at once for one cycle; how often each check was evaluated, all of them."""
    procs = [runner(root, f"{tag}-{n}", at) for n in range(RUNNERS)]
    outputs = [(p.communicate(timeout=300), p.returncode) for p in procs]
    for (_, err), code in outputs:
        assert code == 0, err.decode()
    return Counter(c["check"] for (out, _), _ in outputs for c in json.loads(out)["checks"])


def incidents(root: Path) -> list[dict[str, Any]]:
    """Every incident in the store, through the CLI."""
    out = subprocess.run(command(root, "list", "--all", "--limit", "1000", "--json"),
                         capture_output=True, check=True).stdout
    result: list[dict[str, Any]] = json.loads(out)
    return result


def kill_when_claimed(proc: subprocess.Popen[bytes], store: Store, name: str,
                      cycle: datetime, kill: Any) -> None:
    """Call `kill` as soon as runner `name` holds a claim in `cycle` (it is then mid-run)."""
    deadline = time.monotonic() + 120
    while not any(x.runner == name for x in store.leases(since=cycle)):
        assert proc.poll() is None, proc.communicate()[1].decode()
        assert time.monotonic() < deadline, "the runner never claimed a check"
        time.sleep(0.005)
    kill()


@pytest.fixture
def url(postgres: Any) -> str:
    """A fresh database on the session's PostgreSQL server."""
    result: str = postgres.new_database()
    return result


@pytest.fixture
def project(url: str, tmp_path: Path) -> Path:
    """The 50-check project on that database, lease TTL 2 s."""
    return make_project(tmp_path / "shop", store=url, breaching=BREACHING,
                        lease_ttl=f"{TTL.total_seconds():g}s")


def test_eight_runners_share_fifty_checks_through_kills_and_restarts(
    project: Path, url: str, postgres: Any
) -> None:
    """Each check once per cycle, 20 incidents and 20 notifications, whatever dies meanwhile."""
    everything = Counter(CHECKS)
    with Store.connect(url, root=project) as store:
        # 1. Eight runners race over the first cycle: every check evaluated exactly once.
        assert run_cycle(project, AT, "first") == everything
        opened = incidents(project)
        assert sorted(i["fingerprint"] for i in opened) == CHECKS[:BREACHING]
        assert len(notifications(project)) == BREACHING
        assert all(x.done for x in store.leases(since=AT))

        # 2. A runner SIGKILLed mid-run leaves claims that are not done ...
        at = AT + timedelta(minutes=1)
        victim = runner(project, "victim", at)
        kill_when_claimed(victim, store, "victim", at, lambda: victim.send_signal(signal.SIGKILL))
        victim.communicate(timeout=60)
        assert victim.returncode == -signal.SIGKILL
        held = [x for x in store.leases(since=at) if not x.done]
        done = [x.check for x in store.leases(since=at) if x.done]
        assert held and {x.runner for x in held} == {"victim"}
        # ... which nobody may take while the lease is fresh (the victim could be merely slow),
        wall = held[0].claimed_at + TTL / 2
        assert not store.claim_lease(held[0].check, at, runner="eager", at=wall, ttl=TTL)
        # ... and which the next runners of the same cycle take over once the TTL has passed.
        time.sleep(TTL.total_seconds() + 0.5)
        assert run_cycle(project, at, "heirs") + Counter(done) == everything
        leases = store.leases(since=at)
        assert all(x.done for x in leases)
        assert {x.check for x in leases if x.takeovers} == {x.check for x in held}

        # 3. The next cycle covers all 50 again, with nothing opened or sent twice.
        assert run_cycle(project, AT + timedelta(minutes=2), "next") == everything

        # 4. The server restarts between two runs: the next cycle needs no operator action.
        postgres.restart()
        assert run_cycle(project, AT + timedelta(minutes=3), "restarted") == everything

        # 5. The server dies mid-run: a clear error, exit code 4, and the next run converges.
        at = AT + timedelta(minutes=4)
        cut = runner(project, "cut", at)
        kill_when_claimed(cut, store, "cut", at, lambda: postgres.stop("immediate"))
        try:
            _, err = cut.communicate(timeout=120)
        finally:
            postgres.start()
        assert cut.returncode == 4, err.decode()
        message = err.decode().strip().splitlines()
        assert len(message) == 1 and message[0].startswith("error: incident store postgresql")
        assert not any(x.done for x in store.leases(since=at))  # nothing half-finished
        time.sleep(TTL.total_seconds() + 0.5)
        assert run_cycle(project, at, "after-crash") == everything
        assert all(x.done for x in store.leases(since=at))

        assert sorted(i["fingerprint"] for i in incidents(project)) == CHECKS[:BREACHING]
        assert all(i["status"] == "open" for i in incidents(project))
        assert len(notifications(project)) == BREACHING


def test_a_runner_against_a_stopped_server_exits_4_and_the_next_run_converges(
    project: Path, postgres: Any
) -> None:
    """With the server down before a run starts: exit 4 and one line; after a start, all runs."""
    at = datetime(2026, 11, 2, 12, 5, tzinfo=UTC)
    postgres.stop()
    try:
        result = subprocess.run(command(project, "check", "--lease", "--at", iso(at) or ""),
                                capture_output=True, text=True, timeout=120)
    finally:
        postgres.start()
    assert result.returncode == 4
    assert result.stderr.startswith("error: incident store postgresql+psycopg://postgres@")
    assert "cannot open the database" in result.stderr and "Traceback" not in result.stderr
    assert run_cycle(project, at, "after") == Counter(CHECKS)
    assert len(notifications(project)) == BREACHING
