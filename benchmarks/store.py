"""The incident store on SQLite and PostgreSQL: incident opens per second, `incident list` latency.

Usage:  python benchmarks/store.py [--opens 300] [--incidents 100000] [--postgres URL]

Opens are what `incident check` writes for a new incident: open_incident (the incident and
its `opened` event), the reason as an `updated` event, and one `notified` event, the
stand-in for the outbox row until the outbox exists: three transactions. `list` is timed
in-process (Store.list, as `incident list` calls it) and as the whole command, with
--incidents incidents in the store, 1% of them still active.

PostgreSQL: --postgres URL of an empty database, else a throwaway server is started with
the distribution's initdb/pg_ctl (as the `postgres` user when run as root), else skipped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from incident.model import EventKind, Severity, Status
from incident.store import Store
from incident.store.schema import events, incidents

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = 5000


def opens_per_second(store: Store, n: int) -> float:
    """Open `n` new incidents the way `incident check` does; incidents per second."""
    start = time.perf_counter()
    for i in range(n):
        at = T0 + timedelta(seconds=i)
        incident, _ = store.open_incident(
            fingerprint=f"bench-open{{n=\"{i}\"}}", check="bench-open", title=f"open {i}",
            severity=Severity.HIGH, labels={"n": str(i)}, runbook=None, detected_at=at, at=at,
            value=float(i), reopen_window=timedelta(hours=1), actor="incident check")
        store.add_event(incident.id, at=at, kind=EventKind.UPDATED, actor="incident check",
                        text="above 1 for 5m", data={"value": float(i)})
        store.add_event(incident.id, at=at, kind=EventKind.NOTIFIED, actor="incident check",
                        text="opened → oncall: delivered",
                        data={"channel": "oncall", "ok": True, "event": "opened"})
    return n / (time.perf_counter() - start)


def fill(url: str, total: int) -> None:
    """Bulk-insert `total` incidents with two events each; 1% active, the rest resolved."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            first = conn.execute(sa.select(sa.func.coalesce(sa.func.max(incidents.c.id), 0)))
            base = int(first.scalar() or 0)
        for lo in range(0, total, BATCH):
            rows, evs = [], []
            for i in range(lo, min(total, lo + BATCH)):
                at = T0 - timedelta(minutes=total - i)
                active = i % 100 == 0
                fp = f"bench-fill{{n=\"{i}\"}}"
                rows.append({
                    "id": base + i + 1, "fingerprint": fp, "active_key": fp if active else None,
                    "check_name": f"check-{i % 50}", "title": f"fill {i}",
                    "status": "open" if active else "resolved", "severity": "high",
                    "labels": {"n": str(i)}, "runbook": None, "detected_at": at,
                    "opened_at": at, "resolved_at": None if active else at + timedelta(minutes=9),
                    "resolved_by": None if active else "incident check", "value": 1.0,
                    "reopened": 0, "drill": False, "manual": False, "updated_at": at})
                evs += [{"incident_id": base + i + 1, "at": at, "kind": "opened",
                         "actor": "incident check", "text": f"fill {i}", "data": {}},
                        {"incident_id": base + i + 1, "at": at, "kind": "notified",
                         "actor": "incident check", "text": "delivered", "data": {}}]
            with engine.begin() as conn:
                conn.execute(sa.insert(incidents), rows)
                conn.execute(sa.insert(events), evs)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")  # fresh planner statistics, as autovacuum would
    finally:
        engine.dispose()


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """Median wall milliseconds of `fn()` over `runs` calls (after one warm-up)."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(url: str, root: Path, opens: int, total: int) -> dict[str, float]:
    """Every figure for one backend."""
    with Store.connect(url, root=root) as store:
        rate = opens_per_second(store, opens)
    fill(url, total)
    project = root / "project"
    project.mkdir(exist_ok=True)
    (project / "incident.yaml").write_text(
        f'store: "{url}"\nsources:\n  local: {{type: file, path: data/}}\n')
    cmd = [sys.executable, "-m", "incident", "--project", str(project), "list"]
    with Store.connect(url, root=root) as store:
        active = median_ms(lambda: store.list(statuses=[Status.OPEN, Status.ACKNOWLEDGED],
                                              limit=50), 20)
        every = median_ms(lambda: store.list(limit=50), 20)
        one_check = median_ms(lambda: store.list(check="check-7", limit=50), 20)
    command = median_ms(lambda: subprocess.run(cmd, check=True, capture_output=True), 5)
    return {"opens/s": rate, "list active (ms)": active, "list --all (ms)": every,
            "list --check (ms)": one_check, "`incident list` (ms)": command}


@contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A PostgreSQL server of our own on a free loopback port, or None without the binaries."""
    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    bindir = next((b for b in bindirs if (b / "pg_ctl").exists()), None)
    if bindir is None:
        yield None
        return
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="incident-bench-pg-"))
    if as_postgres:
        shutil.chown(base, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(base / "data")]
    try:
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(base / "data"), "-U",
                        "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"],
                       check=True, capture_output=True)
        # fsync stays on (unlike the tests): commit latency is part of what is measured.
        subprocess.run([*ctl, "-l", str(base / "log"), "-w", "-o",
                        f"-c listen_addresses=127.0.0.1 -p {port} -k {base}", "start"],
                       check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    """Measure both backends and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=300)
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results["sqlite"] = measure(f"sqlite:///{root / 'incident.db'}", root, args.opens,
                                    args.incidents)
        with (throwaway_postgres() if args.postgres is None
              else _given(args.postgres)) as url:
            if url is None:
                print("postgresql: skipped (no --postgres URL and no pg_ctl found)")
            else:
                results["postgresql"] = measure(url, root, args.opens, args.incidents)
    print(f"\n{args.opens} opens; list with {args.incidents:,} incidents (1% active), "
          "medians\n")
    names = list(next(iter(results.values())))
    print(f"{'backend':<12}" + "".join(f"{n:>22}" for n in names))
    for backend, figures in results.items():
        print(f"{backend:<12}" + "".join(f"{figures[n]:>22.1f}" for n in names))


@contextmanager
def _given(url: str) -> Iterator[str | None]:
    yield url


if __name__ == "__main__":
    main()
