"""Many OS processes on one store: the database keeps one active incident per fingerprint."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from incident.model import Severity, Status
from incident.store import Change, Store
from incident.store.schema import incidents

PROCESSES = 20
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _race(
    url: str, root: str, n: int, barrier: multiprocessing.synchronize.Barrier, out: Any
) -> None:
    """One cron-like process: connect (maybe creating the schema), open, then resolve, in step."""
    try:
        with Store.connect(url, root=Path(root)) as store:
            barrier.wait(timeout=120)  # everyone connected: now open at the same moment
            incident, change = store.open_incident(
                fingerprint="payment-success-rate",
                check="payment-success-rate",
                title="Payments failing",
                severity=Severity.CRITICAL,
                labels={},
                runbook=None,
                detected_at=T0,
                at=T0 + timedelta(seconds=n),
                value=float(n),
                reopen_window=timedelta(hours=1),
                actor=f"cron-{n}",
            )
            barrier.wait(timeout=120)  # everyone has it open: now all resolve at once
            _, resolved = store.resolve(
                incident.id, at=T0 + timedelta(minutes=5), actor=f"cron-{n}"
            )
            out.put(("ok", incident.id, change.value, resolved))
    except BaseException as e:  # report, do not hang the parent on a dead child
        barrier.abort()
        out.put(("error", 0, repr(e), False))


def test_twenty_processes_open_and_resolve_one_incident(store_url: str, tmp_path: Path) -> None:
    """20 processes opening one fingerprint at once share one incident, one OPENED, one resolver."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_race, args=(store_url, str(tmp_path), n, barrier, out))
        for n in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=180) for _ in procs]
    except queue.Empty:
        results = []
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
        out.close()
        out.join_thread()
    assert len(results) == PROCESSES, "a worker never reported"
    assert [r for r in results if r[0] != "ok"] == []
    assert len({r[1] for r in results}) == 1
    changes = sorted(r[2] for r in results)
    assert changes == [Change.EXISTING.value] * (PROCESSES - 1) + [Change.OPENED.value]
    assert sum(r[3] for r in results) == 1

    with Store.connect(store_url, root=tmp_path) as store:
        [incident] = store.list()
        assert incident.status is Status.RESOLVED
        kinds = [e.kind.value for e in store.get(incident.id).timeline]
        assert kinds == ["opened", "resolved"]


def test_a_lost_race_returns_the_winner_as_existing(store: Store) -> None:
    """An opener whose INSERT loses to a concurrent one gets the winner's incident as EXISTING."""
    fingerprint = "db-query-latency"
    engine = sa.create_engine(store._db.url)  # a second client, outside the Store
    result: list[tuple[int, Change]] = []
    try:
        with engine.connect() as winner:
            tx = winner.begin()
            winner_id = winner.execute(
                sa.insert(incidents).values(
                    fingerprint=fingerprint,
                    active_key=fingerprint,
                    title="winner",
                    status="open",
                    severity="high",
                    labels={},
                    detected_at=T0,
                    opened_at=T0,
                    updated_at=T0,
                )
            ).inserted_primary_key[0]  # type: ignore[index]

            def loser() -> None:
                incident, change = store.open_incident(
                    fingerprint=fingerprint,
                    check=None,
                    title="loser",
                    severity=Severity.HIGH,
                    labels={},
                    runbook=None,
                    detected_at=T0,
                    at=T0,
                    value=None,
                    reopen_window=timedelta(hours=1),
                    actor="cron",
                )
                result.append((incident.id, change))

            thread = threading.Thread(target=loser)
            thread.start()
            _wait_until_blocked(store, thread)
            tx.commit()
            thread.join(timeout=60)
    finally:
        engine.dispose()
    assert result == [(winner_id, Change.EXISTING)]
    assert [i.title for i in store.list()] == ["winner"]


def _wait_until_blocked(store: Store, thread: threading.Thread) -> None:
    """Return once the Store's INSERT waits on the winner's row (PostgreSQL) or after a pause."""
    if store._db.engine.dialect.name != "postgresql":
        time.sleep(0.5)  # SQLite: its BEGIN IMMEDIATE waits on busy_timeout, unobservable
        return
    watcher = sa.create_engine(store._db.url)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and thread.is_alive():
            with watcher.connect() as conn:
                waiting = conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                ).scalar()
            if waiting:
                return
            time.sleep(0.02)
        raise AssertionError("the Store's INSERT never waited on the concurrent one")
    finally:
        watcher.dispose()
