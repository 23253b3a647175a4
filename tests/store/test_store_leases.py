"""Leases: one claim per (check, cycle) wins, done claims stay, dead runners' claims expire."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from incident.store import Store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=2)
CHECKS = [f"check-{i:02d}" for i in range(50)]
RUNNERS = 8


def test_the_first_claim_wins_each_cycle(store: Store) -> None:
    """A second runner cannot claim a check for a cycle already claimed; a new cycle is free."""
    assert store.claim_lease("api", T0, runner="a", at=T0, ttl=TTL)
    assert not store.claim_lease("api", T0, runner="b", at=T0, ttl=TTL)
    assert not store.claim_lease("api", T0, runner="a", at=T0, ttl=TTL)  # no double evaluation
    assert store.claim_lease("api", T0 + timedelta(minutes=1), runner="b", at=T0, ttl=TTL)
    assert store.claim_lease("db", T0, runner="b", at=T0, ttl=TTL)
    held = [(lease.check, lease.cycle, lease.runner) for lease in store.leases()]
    assert held == [("api", T0, "a"), ("db", T0, "b"), ("api", T0 + timedelta(minutes=1), "b")]


def test_a_claim_not_done_within_the_ttl_is_taken_over_once(store: Store) -> None:
    """After the TTL the next runner takes over; the dead runner's late finish is refused."""
    assert store.claim_lease("api", T0, runner="a", at=T0, ttl=TTL)
    assert not store.claim_lease("api", T0, runner="b", at=T0 + TTL, ttl=TTL)  # not yet
    late = T0 + TTL + timedelta(seconds=1)
    assert store.claim_lease("api", T0, runner="b", at=late, ttl=TTL)
    assert not store.claim_lease("api", T0, runner="c", at=late, ttl=TTL)  # b's claim is fresh
    assert store.finish_leases([("api", T0)], runner="a", at=late) == [("api", T0)]
    assert store.finish_leases([("api", T0)], runner="b", at=late) == []
    [lease] = store.leases()
    assert (lease.runner, lease.takeovers, lease.done, lease.done_at) == ("b", 1, True, late)


def test_a_done_claim_is_never_taken_over(store: Store) -> None:
    """A check evaluated in a cycle stays evaluated, however late another runner comes."""
    store.claim_lease("api", T0, runner="a", at=T0, ttl=TTL)
    store.finish_leases([("api", T0)], runner="a", at=T0 + timedelta(seconds=5))
    assert not store.claim_lease("api", T0, runner="b", at=T0 + timedelta(days=1), ttl=TTL)


def test_prune_deletes_only_older_cycles(store: Store) -> None:
    """Pruning keeps the claims of cycles at or after the cut."""
    for minutes in range(5):
        store.claim_lease("api", T0 + timedelta(minutes=minutes), runner="a", at=T0, ttl=TTL)
    assert store.prune_leases(T0 + timedelta(minutes=3)) == 3
    assert [lease.cycle for lease in store.leases()] == [T0 + timedelta(minutes=m) for m in (3, 4)]
    assert [lease.cycle for lease in store.leases(since=T0 + timedelta(minutes=4))] == [
        T0 + timedelta(minutes=4)]


def _claim_all(url: str, root: str, runner: str, barrier: multiprocessing.synchronize.Barrier,
               out: Any) -> None:
    """One runner process: claim every check for one cycle, in its own order."""
    try:
        with Store.connect(url, root=Path(root)) as store:
            barrier.wait(timeout=120)
            order = sorted(CHECKS, key=lambda c: hash((runner, c)))
            out.put((runner, [c for c in order
                              if store.claim_lease(c, T0, runner=runner, at=T0, ttl=TTL)]))
    except BaseException as e:  # report, do not hang the parent on a dead child
        barrier.abort()
        out.put((runner, repr(e)))


def test_eight_processes_claim_each_check_exactly_once(store_url: str, tmp_path: Path) -> None:
    """8 processes racing over 50 checks: every check is won by exactly one of them."""
    Store.connect(store_url, root=tmp_path).close()
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(RUNNERS), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(store_url, str(tmp_path), f"r{n}", barrier, out))
             for n in range(RUNNERS)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=180) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert all(isinstance(won, list) for won in results.values()), results
    counts = Counter(c for won in results.values() for c in won)
    assert counts == Counter(CHECKS)
    with Store.connect(store_url, root=tmp_path) as store:
        assert {(lease.check, lease.runner) for lease in store.leases()} == {
            (c, runner) for runner, won in results.items() for c in won}
