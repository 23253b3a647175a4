"""One drill run, shaped like a chaos experiment: steady state → inject → expect → restore.

The scenario is replayed on a simulated clock (or, `live`, on the wall clock) through the real
engine: the real detectors, the real incident store and the real routing. What is not real is
only what must not be: the data carries the faults, the incidents carry the drill mark and a
fingerprint of their own (`drill:NAME#RUN:check…`), and messages go to the project's drill
stand-ins for the routed channels (or, where the scenario says so, to the real channel tagged
[DRILL]). The journal row records the run whatever happens, with its scorecard.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from incident.drills.faults import matches
from incident.drills.score import FAILED, Context, Outcome, score
from incident.drills.source import ReplaySource, extremes, faulted_storage
from incident.errors import DrillError
from incident.model import Check, Drill, DrillRun, Incident, Labels, Project, ThresholdParams
from incident.timeutil import align, format_duration

if TYPE_CHECKING:
    from incident.sources import Source
    from incident.store import Store

ACTOR = "incident drill"
ABORTED, PASSED = "aborted", "passed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scorecard:
    """How a drill run went: its verdict, each expectation, and what else it saw."""

    drill: str
    run_id: int
    mode: str  # replay | live
    status: str  # passed | failed | aborted
    start: datetime  # the scenario's clock
    end: datetime
    outcomes: tuple[Outcome, ...] = ()
    aborted_because: tuple[str, ...] = ()
    deviated: tuple[str, ...] = ()  # the real series misbehaved during the drill by themselves
    incidents: tuple[dict[str, Any], ...] = ()  # JSON-ready rows
    elapsed: float = 0.0  # wall seconds the run took

    def as_dict(self) -> dict[str, Any]:
        """The scorecard as JSON-ready data (journal, --json, the saved file)."""
        return {
            "drill": self.drill, "run": self.run_id, "mode": self.mode, "status": self.status,
            "start": self.start.isoformat(), "end": self.end.isoformat(),
            "elapsed_seconds": round(self.elapsed, 3),
            "aborted_because": list(self.aborted_because), "deviated": list(self.deviated),
            "expectations": [{"expectation": o.expectation, "status": o.status,
                              "reason": o.reason, "incident": o.incident_id,
                              "measured_seconds": dict(o.measured)} for o in self.outcomes],
            "incidents": [dict(i) for i in self.incidents],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Clock:
    """Where a run's time comes from: `now` for the wall clock, `sleep` to wait on it."""

    now: Callable[[], datetime]
    sleep: Callable[[float], None] = time.sleep


@dataclass(slots=True)
class _Setup:
    checks: list[Check]
    sources: dict[str, ReplaySource] = field(default_factory=dict)
    step: timedelta = timedelta(minutes=1)


def involved_checks(project: Project, drill: Drill) -> list[Check]:
    """The checks a drill evaluates: the ones it names, and those reading a faulted metric."""
    from incident.sources.promql.parser import parse

    names = list(drill.checks)
    for inj in drill.inject:
        if inj.metric:
            metric = getattr(parse(inj.metric), "name", None) or ""
            names += [c.name for c in project.checks if metric and metric in _queries(c)]
    return [project.check(n) for n in dict.fromkeys(names)]


def _queries(check: Check) -> str:
    from incident.detectors import inputs

    return " ".join(inputs.queries(check.query, check.detector).values())


def scope(drill: Drill, check: str) -> list[dict[str, str]]:
    """The label sets of a check the drill is about: its faults' and expectations' labels."""
    named = [dict(i.labels) for i in drill.inject if i.check == check]
    named += [dict(e.labels) for e in drill.expect if e.check == check]
    return named or [{}]


def _in_scope(labels: Labels | dict[str, str], wanted: list[dict[str, str]]) -> bool:
    return any(matches(labels if isinstance(labels, Labels) else Labels(labels), w)
               for w in wanted)


def prepare(project: Project, drill: Drill, sources: dict[str, Source], start: datetime,
            shift: timedelta = timedelta(0)) -> _Setup:
    """Replay sources for every involved check: read once, raw-metric faults in the data."""
    checks = involved_checks(project, drill)
    if not checks:
        raise DrillError(f"{drill.path}: the drill names no check and its faults reach none")
    end = start + drill.duration
    metric_faults = [i for i in drill.inject if i.metric]
    faulted: dict[str, Source] = {}
    if metric_faults:
        from incident.sources.local import StorageSource

        for name in dict.fromkeys(c.source for c in checks):
            real = sources[name]
            if not isinstance(real, StorageSource):
                raise DrillError(
                    f"{drill.path}: metric faults need a local source, and checks here read "
                    f"{name!r}; lay the fault over the check instead (inject: - check: NAME)")
            faulted[name] = StorageSource(name, faulted_storage(
                real.data(), metric_faults, start))
    setup = _Setup(checks=checks, step=min(c.every for c in checks))
    for c in checks:
        if any(i.check == c.name for i in drill.inject) and not c.query:
            raise DrillError(f"{drill.path}: {c.name} reads good/total queries, not one series; "
                             "lay the fault over a raw metric instead (inject: - metric: …)")
        span = (align(start, c.every) - c.lookback, align(end, c.every))
        setup.sources[c.name] = ReplaySource(
            faulted.get(c.source, sources[c.source]), check_query=c.query,
            faults=[i for i in drill.inject if i.check == c.name], drill_start=start,
            span=span, shift=shift)
    return setup


def steady_state(project: Project, drill: Drill, setup: _Setup, store: Store, at: datetime
                 ) -> list[str]:
    """Why the system is not in its steady state at `at` (empty when it is): the drill's
    checks must be quiet on the real data, with no real incident open for them."""
    from incident.engine import State, judge, window

    problems = []
    for c in setup.checks:
        wanted = scope(drill, c.name)
        clean = setup.sources[c.name].clean()
        frame = clean.query_range(c.query or "", *window(c, at), c.every) if c.query else None
        if frame is not None:
            for f in judge(c, frame, at):
                if f.state is State.FIRING and _in_scope(f.labels, wanted):
                    problems.append(f"{f.fingerprint} is already firing on the real data "
                                    f"({f.reason or 'breaching'})")
        for incident in store.active(check=c.name):
            if not incident.drill and _in_scope(dict(incident.labels), wanted):
                problems.append(f"real incident #{incident.id} {incident.fingerprint} is open")
    return problems


class DrillOutbox:
    """The store's outbox as one drill run sees it: its own incidents, its drill channels."""

    def __init__(self, store: Store, run: DrillRun) -> None:
        self._store = store
        self._run = run

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def claim_due(self, **kwargs: Any) -> list[Any]:
        """Only drill rows, and of those only this run's."""
        rows = self._store.claim_due(**kwargs, drills=True)
        mine = {i.id for i in self._store.drill_incidents(self._run)}
        others = [r.id for r in rows if r.envelope.incident_id not in mine]
        if others:
            self._store.release(others, runner=kwargs["runner"])
        return [r for r in rows if r.envelope.incident_id in mine]

    def sent_messages(self, channel: str, *, since: datetime) -> int:
        """Messages this run sent to a channel since `since` (for the rate limit): runs on
        other scenario clocks must not count against each other."""
        sent = {item.id for i in self._store.drill_incidents(self._run)
                for item in self._store.outbox(statuses=["sent"], incident_id=i.id)
                if item.envelope.channel == channel and item.sent_at and item.sent_at >= since}
        return len(sent)

    def active(self, check: str | None = None) -> list[Incident]:
        """This run's open incidents."""
        prefix = self._run.fingerprint_prefix
        return [i for i in self._store.active(check) if i.fingerprint.startswith(prefix)]


def drill_project(project: Project, drill: Drill, checks: Iterable[Check]) -> Project:
    """The project as a drill run sees it: each check reads its own replay source, and the
    channels are the drill stand-ins (or the real ones the scenario names)."""
    from incident.notify.plan import DRILL_CHANNEL

    settings = project.settings
    channels = {DRILL_CHANNEL + n: replace(c, name=DRILL_CHANNEL + n)
                for n, c in settings.drill_channels.items()}
    for n in drill.real_channels:
        channels[DRILL_CHANNEL + n] = replace(settings.channels[n], name=DRILL_CHANNEL + n)
    return replace(project, settings=replace(settings, channels=channels),
                   checks=tuple(replace(c, source=f"drill:{c.name}") for c in checks))


def run(project: Project, drill: Drill, store: Store, sources: dict[str, Source], *,
        start: datetime, clock: Clock, live: bool = False, actor: str = ACTOR) -> Scorecard:
    """Run a drill from `start` (the scenario's clock) and journal it; the scorecard."""
    from incident.engine import Engine
    from incident.notify import Notifier
    from incident.notify.pipeline import Pipeline

    began = time.monotonic()
    start = align(start, min(c.every for c in involved_checks(project, drill)))
    wall_start = clock.now()
    shift = (wall_start - start) if live else timedelta(0)
    setup = prepare(project, drill, sources, start, shift)
    end = start + drill.duration
    journal = store.start_drill_run(drill.name, mode="live" if live else "replay", at=wall_start,
                                    sim_start=start, sim_end=end, actor=actor)
    aborted = steady_state(project, drill, setup, store, start + shift)
    if aborted:
        card = Scorecard(drill=drill.name, run_id=journal.id, mode=journal.mode, status=ABORTED,
                         start=start, end=end, aborted_because=tuple(aborted),
                         elapsed=time.monotonic() - began)
        store.finish_drill_run(journal.id, status=ABORTED, at=clock.now(),
                               scorecard=card.as_dict())
        return card

    view = drill_project(project, drill, setup.checks)
    notifier = Notifier(view.settings, project.root)
    pipeline = Pipeline(view, DrillOutbox(store, journal), notifier, drills=True)
    engine = Engine(view, {f"drill:{n}": s for n, s in setup.sources.items()}, store, notifier,
                    drill_prefix=journal.fingerprint_prefix, pipeline=pipeline)
    errors: list[str] = []
    try:
        for t in _ticks(start, end, setup.step):
            now = t + shift
            if live:
                wait = (now - clock.now()).total_seconds()
                if wait > 0:
                    clock.sleep(wait)
            due = [c.name for c in setup.checks if (t - align(t, c.every)) == timedelta(0)]
            report = engine.run(now, due)
            errors += [f"+{format_duration(t - start)} {e}" for e in report.source_errors]
        incidents = [store.get(i.id) for i in store.drill_incidents(journal)]
        ctx = Context(start=start + shift, end=end + shift, live=live,
                      stand_ins=frozenset(project.settings.drill_channels) | set(
                          drill.real_channels),
                      hints=_hints(project, drill, setup, start, end))
        outcomes = score(drill, incidents, ctx)
        # A check that could not be read during the drill explains a missing incident.
        deviated = _deviated(project, drill, setup, end + shift) + [
            f"not evaluated at {e}" for e in dict.fromkeys(errors)]
    except BaseException as exc:
        store.finish_drill_run(journal.id, status=ABORTED, at=clock.now(), scorecard={
            "drill": drill.name, "run": journal.id, "status": ABORTED,
            "aborted_because": [f"the run stopped: {exc or type(exc).__name__}"]})
        raise
    finally:
        restore(store, journal, end + shift)
    status = FAILED if any(o.status == FAILED for o in outcomes) else PASSED
    card = Scorecard(drill=drill.name, run_id=journal.id, mode=journal.mode, status=status,
                     start=start + shift, end=end + shift, outcomes=tuple(outcomes),
                     deviated=tuple(deviated),
                     incidents=tuple(_row(i, start + shift) for i in incidents),
                     elapsed=time.monotonic() - began)
    store.finish_drill_run(journal.id, status=status, at=clock.now(), scorecard=card.as_dict())
    return card


def _ticks(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    first = align(start, step)
    first = first if first >= start else first + step
    n = int((end - first) / step)
    return [first + k * step for k in range(n + 1)]


def restore(store: Store, journal: DrillRun, at: datetime) -> None:
    """Resolve what the drill left open and drop its undelivered messages: nothing lingers."""
    for incident in store.active():
        if incident.drill and incident.fingerprint.startswith(journal.fingerprint_prefix):
            store.resolve(incident.id, at=max(at, incident.opened_at), actor=ACTOR,
                          text="drill ended: restored")
    store.abandon_drill_messages(journal)


def _hints(project: Project, drill: Drill, setup: _Setup, start: datetime, end: datetime
           ) -> dict[str, str]:
    """Per check, the range its faulted series took, beside the detector's level."""
    out = {}
    for c in setup.checks:
        if not c.query:
            continue
        span = extremes(setup.sources[c.name].frame(c.every), start, end)
        if span is None:
            out[c.name] = "it had no data during the drill"
            continue
        p = c.detector
        level = ""
        if isinstance(p, ThresholdParams):
            level = f"; fires above {p.above:g}" if p.above is not None else \
                f"; fires below {p.below:g}" if p.below is not None else ""
            level += f" for {format_duration(p.for_)}" if p.for_ else ""
        out[c.name] = f"its series ranged {span[0]:.4g}…{span[1]:.4g} during the drill{level}"
    return out


def _deviated(project: Project, drill: Drill, setup: _Setup, end: datetime) -> list[str]:
    """In-scope series that fire at the end without any fault: the real system moved."""
    from incident.engine import State, judge, window

    out = []
    for c in setup.checks:
        if not c.query:
            continue
        frame = setup.sources[c.name].clean().query_range(c.query, *window(c, end), c.every)
        out += [f"{f.fingerprint} fires on the real data at the end of the drill"
                for f in judge(c, frame, end)
                if f.state is State.FIRING and _in_scope(f.labels, scope(drill, c.name))]
    return out


def _row(i: Incident, start: datetime) -> dict[str, Any]:
    return {"id": i.id, "fingerprint": i.fingerprint.split(":", 2)[-1], "severity": i.severity.value,
            "runbook": i.runbook, "opened": format_duration(i.opened_at - start),
            "resolved": format_duration(i.resolved_at - start) if i.resolved_at else None,
            "resolved_by": i.resolved_by}


def select(project: Project, names: Sequence[str]) -> list[Drill]:
    """The named drills; NotFound-style UsageError for an unknown one."""
    from incident.errors import UsageError

    unknown = [n for n in names if n not in project.drills]
    if unknown:
        known = ", ".join(sorted(project.drills)) or "none: add drills/NAME.yaml"
        raise UsageError(f"unknown drill {unknown[0]!r} (known: {known})")
    return [project.drills[n] for n in names]
