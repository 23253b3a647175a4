"""The composition root: project directory → settings → concrete sources, store, notifier, engine."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from incident.config import load_project
from incident.errors import ConfigError, ConfigProblem
from incident.model import Drill, Project, SourceSpec

if TYPE_CHECKING:
    from incident.drills.run import Scorecard
    from incident.engine import Engine
    from incident.notify import Notifier
    from incident.sources import Source
    from incident.store import Store


def project_root(given: str | None) -> Path:
    """--project DIR, else $INCIDENT_PROJECT, else the current directory."""
    return Path(given or os.environ.get("INCIDENT_PROJECT") or ".").resolve()


def load(root: Path, *, drills: bool = True, lenient: bool = False) -> Project:
    """The validated project (without drills/ unless asked); ConfigError lists every problem.

    `lenient`: broken checks, runbooks and channels are left out, listed in `Project.problems`.
    """
    return load_project(root, drills=drills, lenient=lenient)


def make_source(spec: SourceSpec) -> Source:
    """The concrete source for a source spec (registry: type name → class)."""
    if spec.type == "prometheus":
        from incident.sources.prometheus import PrometheusSource

        return PrometheusSource(spec)
    from incident.sources.local import FileSource

    return FileSource(spec)


def sources(project: Project) -> dict[str, Source]:
    """Every configured source, built lazily (no connection is made until a query)."""
    return {name: make_source(spec) for name, spec in project.settings.sources.items()}


def open_store(project: Project) -> Store:
    """The incident store named in incident.yaml."""
    from incident.store import Store

    return Store.connect(project.settings.store, root=project.root)


def notifier(project: Project) -> Notifier:
    """The notifier for the project's channels and routes."""
    from incident.notify import Notifier

    return Notifier(project.settings, project.root)


def validate_channels(project: Project) -> None:
    """ConfigError for channel URLs that apprise cannot use (kept off the cron path)."""
    bad = notifier(project).invalid_channels()
    if bad:
        raise ConfigError([ConfigProblem(
            str(c.position.file) if c.position else "incident.yaml",
            c.position.line if c.position else 0, c.position.column if c.position else 0,
            f"channels.{c.name}", f"apprise does not understand the URL {c.redacted}")
            for c in bad])


def engine(project: Project, store: Store) -> Engine:
    """An engine wired to the project's real sources and channels."""
    from incident.engine import Engine

    return Engine(project, sources(project), store, notifier(project))


def local_time(t: datetime | None, project: Project) -> str:
    """A time for people: in the project's display time zone."""
    if t is None:
        return "-"
    from zoneinfo import ZoneInfo

    return t.astimezone(ZoneInfo(project.settings.timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def drill_window(t0: datetime, t1: datetime, project: Project) -> str:
    """A drill's scenario clock for people: `2026-11-24 18:10–18:40 CST`."""
    a, b = local_time(t0, project), local_time(t1, project)
    same_day = a[:10] == b[:10]
    return f"{a[:16]}–{b[11:16] if same_day else b[:16]}{a[19:]}"


def run_drill(project: Project, store: Store, drill: Drill, *, start: datetime, live: bool,
              actor: str) -> tuple[Scorecard, Path]:
    """Run one drill against the project's real sources and store; the scorecard, saved."""
    from incident.drills import scorecard
    from incident.drills.run import Clock, run
    from incident.timeutil import utcnow

    card = run(project, drill, store, sources(project), start=start, clock=Clock(now=utcnow),
               live=live, actor=actor)
    path = scorecard.save(card, drill_window(card.start, card.end, project),
                          project.root / "reports")
    return card, path


def run_due_drills(project: Project, store: Store, *, now: datetime, actor: str
                   ) -> list[tuple[Scorecard, Path]]:
    """Run every drill whose schedule came due since its last run, once across cron hosts:
    each claims the drill's slot in the store's leases before running it."""
    from incident.drills.schedule import status
    from incident.runners import default_runner

    runner = default_runner()
    done = []
    for s in status(project.drills, store.drill_runs(limit=10_000), now):
        if not s.due or s.next_due is None:
            continue
        key = f"drill:{s.drill.name}"
        if not store.claim_lease(key, s.next_due, runner=runner, at=now,
                                 ttl=max(project.settings.lease_ttl, 2 * s.drill.duration)):
            continue
        done.append(run_drill(project, store, s.drill, start=now - s.drill.duration, live=False,
                              actor=actor))
        store.finish_leases([(key, s.next_due)], runner=runner, at=now)
    return done
