"""Several runners, one store: which checks this runner evaluates in this cycle.

Two ways to share the checks between cron hosts, usable together:

- `--shard i/n` (1-based): a stable hash of the check name modulo n picks each check's shard.
  No coordination at all, but a shard whose host is down is not evaluated.
- `--lease`: before evaluating, a runner claims (check, cycle) in the store; the primary key
  lets one claim win, so each check is evaluated once per cycle however many runners start.
  A claim not marked done within the lease TTL belonged to a runner that died: the next runner
  takes it over.

A check's cycle is `now` aligned down to its `every`, the same grid its evaluation window is
aligned to: every run within one cycle reads the same points, so evaluating once per cycle
loses nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from incident.model import Project
from incident.timeutil import align

if TYPE_CHECKING:
    from incident.engine import Engine, RunReport
    from incident.store import Store

# Claims of cycles older than this are deleted after a run: the table stays small.
KEEP_LEASES = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` (1-based) of `count`."""

    index: int
    count: int

    def owns(self, check: str) -> bool:
        """The check belongs to this shard."""
        return stable_hash(check) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What one runner does in one run: the checks to evaluate and the claims it holds."""

    runner: str
    checks: tuple[str, ...]
    claims: tuple[tuple[str, datetime], ...] = ()  # (check, cycle), only with leases
    elsewhere: tuple[str, ...] = ()  # checks of this shard another runner has this cycle


def parse_shard(text: str) -> Shard:
    """`2/4` → Shard(2, 4); ValueError with the expected form otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ValueError(f"--shard takes I/N with 1 <= I <= N, like 1/2 or 3/4; got {text!r}")
    return Shard(int(m.group(1)), int(m.group(2)))


def stable_hash(name: str) -> int:
    """The same number for the same name on every machine and Python (unlike hash())."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")


def default_runner() -> str:
    """HOST:PID, unique among the runners alive at one time."""
    return f"{socket.gethostname()}:{os.getpid()}"


def cycle(check_every: timedelta, now: datetime) -> datetime:
    """The start of the cycle `now` falls in, for a check evaluated every `check_every`."""
    return align(now, check_every)


def plan(project: Project, store: Store, names: Sequence[str], *, now: datetime, wall: datetime,
         runner: str, shard: Shard | None = None, lease: bool = False) -> Plan:
    """The checks this runner evaluates: `names` (all when empty), this shard's, claimed if leased.

    With `lease`, each check is claimed for its cycle of `now` at wall-clock time `wall`
    (the TTL runs on real time even when `now` is given with --at), in an order of this
    runner's own, so runners starting together spread over the checks instead of all
    contending for the first one.
    """
    wanted = list(names) if names else [c.name for c in project.checks]
    mine = [n for n in wanted if shard is None or shard.owns(n)]
    if not lease:
        return Plan(runner=runner, checks=tuple(mine))
    won: dict[str, datetime] = {}
    for name in sorted(mine, key=lambda n: stable_hash(f"{runner}\0{n}")):
        start = cycle(project.check(name).every, now)
        if store.claim_lease(name, start, runner=runner, at=wall,
                             ttl=project.settings.lease_ttl):
            won[name] = start
    return Plan(runner=runner, checks=tuple(n for n in mine if n in won),
                claims=tuple((n, won[n]) for n in mine if n in won),
                elsewhere=tuple(n for n in mine if n not in won))


def run(engine: Engine, store: Store, the_plan: Plan, now: datetime, *, dry_run: bool,
        clock: Callable[[], datetime]) -> RunReport:
    """Evaluate the plan's checks, then mark its claims done (and prune old ones).

    A run that raises leaves its claims open: after the lease TTL another runner takes them
    over, so a crash or a lost database delays those checks and never skips them. A runner
    left with no check still owes the outbox its tick: it enqueues the reminders due and
    delivers what is due (a retry must not wait for a runner that happens to win a claim).
    """
    from incident.engine import ACTOR, Action, RunReport

    if not the_plan.checks:
        actions: list[Action] = []
        if not dry_run:
            # Every check file may be the broken one: that must page even with nothing to run.
            actions = engine.config_health(now)
            engine.pipeline.schedule(now)
            engine.pipeline.deliver(now, actor=ACTOR)
        return RunReport(at=now, dry_run=dry_run, results=(), source_actions=tuple(actions))
    report = engine.run(now, the_plan.checks, dry_run=dry_run)
    if the_plan.claims:
        finished = clock()
        store.finish_leases(the_plan.claims, runner=the_plan.runner, at=finished)
        # Relative to the earlier of both clocks: a backfill with --at keeps its own claims.
        store.prune_leases(min(now, finished) - KEEP_LEASES)
    return report
