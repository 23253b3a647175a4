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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from incident.drills.faults import matches
from incident.drills.score import FAILED, Context, Outcome, score
from incident.drills.source import ReplaySource, extremes, faulted_storage
from incident.errors import DrillError
from incident.model import (
    DRILL_PREFIX,
    AbsentParams,
    Attempt,
    Check,
    Drill,
    DrillRun,
    Envelope,
    Incident,
    Labels,
    OutboxItem,
    Project,
    Silence,
    ThresholdParams,
)
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
    roles: Mapping[str, str] = field(default_factory=dict)  # live drills: role → who
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
            "incidents": [dict(i) for i in self.incidents], "roles": dict(self.roles),
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
    real: dict[str, Source] = field(default_factory=dict)  # check → its source, no fault in it
    _clean: dict[str, ReplaySource] = field(default_factory=dict)

    def clean(self, check: str) -> ReplaySource:
        """A check's real data, unfaulted; one per run, so the checks on it read the source once."""
        if check not in self._clean:
            self._clean[check] = self.sources[check].clean()
        return self._clean[check]


def involved_checks(project: Project, drill: Drill) -> list[Check]:
    """The checks a drill evaluates: the ones it names, and those reading a faulted metric."""
    names = list(drill.checks)
    faulted = [_metric(i.metric) for i in drill.inject if i.metric]
    if faulted:
        names += [c.name for c in project.checks
                  if any(m is None or m in _metrics(c) for m in faulted)]
    return [project.check(n) for n in dict.fromkeys(names)]


def _metric(selector: str) -> str | None:
    """The metric name of a fault's selector (None: a selector by labels only)."""
    from incident.sources.promql.ast import selectors
    from incident.sources.promql.parser import parse

    return next((s.name for s in selectors(parse(selector))), None)


def _metrics(check: Check) -> set[str]:
    """Every metric name the check's queries select."""
    from incident.detectors import inputs
    from incident.sources.promql import metric_names

    return {m for q in inputs.queries(check.query, check.detector).values()
            for m in metric_names(q)}


def scope(drill: Drill, check: str) -> list[dict[str, str]]:
    """The label sets of a check the drill is about: its faults' and expectations' labels."""
    named = [dict(i.labels) for i in drill.inject if i.check == check]
    named += [dict(e.labels) for e in drill.expect if e.check == check]
    return named or [{}]


def _in_scope(labels: Labels | dict[str, str], wanted: list[dict[str, str]]) -> bool:
    return any(matches(labels if isinstance(labels, Labels) else Labels(labels), w)
               for w in wanted)


def prepare(drill: Drill, checks: Sequence[Check], sources: Mapping[str, Source],
            start: datetime, shift: timedelta = timedelta(0), *, live: bool = False) -> _Setup:
    """Replay sources for every involved check: raw-metric faults in the data, read once
    over the drill's span (a live drill reads as it goes)."""
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
            faulted[name] = StorageSource(name, faulted_storage(real.data(), metric_faults, start))
    setup = _Setup(checks=list(checks), step=min(c.every for c in checks))
    for c in checks:
        if any(i.check == c.name for i in drill.inject) and not c.query:
            raise DrillError(f"{drill.path}: {c.name} reads good/total queries, not one series; "
                             "lay the fault over a raw metric instead (inject: - metric: …)")
        setup.sources[c.name] = ReplaySource(
            faulted.get(c.source, sources[c.source]), check_query=c.query,
            faults=[i for i in drill.inject if i.check == c.name], drill_start=start,
            span=(align(start, c.every) - c.lookback, align(end, c.every)), shift=shift,
            clean_inner=sources[c.source], cached=not live)
        setup.real[c.name] = sources[c.source]
    return setup


def _firing(drill: Drill, setup: _Setup, at: datetime) -> list[tuple[str, str]]:
    """(fingerprint, why) of in-scope series firing on the real data at `at`, by the engine's
    own rule."""
    from incident.engine import State, judge, window

    out = []
    for c in setup.checks:
        if not c.query:
            continue
        frame = setup.clean(c.name).query_range(c.query, *window(c, at), c.every)
        out += [(f.fingerprint, f.reason or "breaching") for f in judge(c, frame, at)
                if f.state is State.FIRING and f.fired_at is not None
                and _in_scope(f.labels, scope(drill, c.name))]
    return out


def missing_data(setup: _Setup, start: datetime, end: datetime, tz: str, *, live: bool = False
                 ) -> list[str]:
    """Why the drill cannot be rehearsed here (empty when it can): its checks with no real data
    over its span, as before the source's history starts or past its end. A check that sees
    nothing cannot show that it fires, so such a run would score the data, not the response.
    A live drill looks at the lookback before its start: the rest is not written yet."""
    from incident.detectors import inputs
    from incident.engine import window

    gaps: dict[tuple[datetime, datetime, _Held | None], list[str]] = {}
    for c in setup.checks:
        if isinstance(c.detector, AbsentParams):
            continue  # missing data is what it watches for: the steady state judges it
        queries = [c.query] if c.query else list(inputs.queries("", c.detector).values())
        a, b = window(c, start) if live else (start, end)
        clean = setup.clean(c.name)
        if not any(clean.query_range(q, a + clean.shift, b + clean.shift, c.every)
                   .notna().to_numpy().any() for q in queries):
            gaps.setdefault((a, b, _held(setup.real[c.name], queries)), []).append(c.name)
    return [_no_data(names, a, b, held, tz) for (a, b, held), names in gaps.items()]


@dataclass(frozen=True, slots=True)
class _Held:
    source: str
    span: tuple[datetime, datetime] | None  # first and last sample; None: no series at all


def _held(source: Source, queries: Sequence[str]) -> _Held | None:
    """Where the series the queries select begin and end in a local source (None for another
    source: asking a remote one would take a query of its own)."""
    from datetime import UTC

    from incident.sources.local import StorageSource
    from incident.sources.promql.ast import selectors
    from incident.sources.promql.parser import parse

    if not isinstance(source, StorageSource):
        return None
    wanted = [s.matchers for q in queries for s in selectors(parse(q))]
    times = [s.t for s in source.data().series
             if s.t.size and any(all(m.matches(s.labels) for m in ms) for ms in wanted)]
    if not times:
        return _Held(source.name, None)
    first, last = (datetime.fromtimestamp(x, UTC) for x in
                   (min(float(t[0]) for t in times), max(float(t[-1]) for t in times)))
    return _Held(source.name, (first, last))


def _no_data(names: Sequence[str], a: datetime, b: datetime, held: _Held | None, tz: str) -> str:
    """`db-query-latency has no data between … (source local holds its series from … to …)`."""
    one = len(names) == 1
    text = (names[0] if one else f"{', '.join(names[:-1])} and {names[-1]}") + \
        f" {'has' if one else 'have'} no data between {_between(a, b, tz)}"
    whose = "its" if one else "their"
    if held is None:
        return text
    if held.span is None:
        return f"{text} (source {held.source} holds none of {whose} series)"
    return f"{text} (source {held.source} holds {whose} series from {_between(*held.span, tz, 'to')})"


def _between(a: datetime, b: datetime, tz: str, word: str = "and") -> str:
    """`2026-11-26 04:41 and 05:11 CST`: in the project's time zone, like the drill's window."""
    from zoneinfo import ZoneInfo

    x, y = a.astimezone(ZoneInfo(tz)), b.astimezone(ZoneInfo(tz))
    return f"{x:%Y-%m-%d %H:%M} {word} {y:{'%H:%M %Z' if x.date() == y.date() else '%Y-%m-%d %H:%M %Z'}}"


def steady_state(drill: Drill, setup: _Setup, store: Store, at: datetime) -> list[str]:
    """Why the system is not in its steady state at `at` (empty when it is): the drill's
    checks must be quiet on the real data, with no real incident open for them."""
    problems = [f"{fp} is already firing on the real data ({why})"
                for fp, why in _firing(drill, setup, at)]
    for c in setup.checks:
        for incident in store.active(check=c.name):
            if not incident.drill and _in_scope(dict(incident.labels), scope(drill, c.name)):
                problems.append(f"real incident #{incident.id} {incident.fingerprint} is open")
    return problems


class DrillOutbox:
    """The store's outbox as one drill run sees it: its own incidents, its drill channels."""

    def __init__(self, store: Store, run: DrillRun) -> None:
        self._store = store
        self._run = run

    def enqueue(self, envelopes: Sequence[Envelope], *, at: datetime) -> list[Envelope]:
        """Write envelopes to the store's outbox."""
        return self._store.enqueue(envelopes, at=at)

    def claim_due(self, *, now: datetime, runner: str, lease: timedelta, limit: int = 10_000
                  ) -> list[OutboxItem]:
        """Only drill rows, and of those only this run's (another run's go back at once)."""
        rows = self._store.claim_due(now=now, runner=runner, lease=lease, limit=limit,
                                     drills=True)
        mine = {i.id for i in self._store.drill_incidents(self._run)}
        others = [r.id for r in rows if r.envelope.incident_id not in mine]
        if others:
            self._store.release(others, runner=runner)
        return [r for r in rows if r.envelope.incident_id in mine]

    def release(self, ids: Iterable[int], *, runner: str) -> None:
        """Give claimed rows back."""
        self._store.release(ids, runner=runner)

    def record_attempts(self, attempts: Sequence[Attempt], *, runner: str, actor: str) -> None:
        """Record delivery attempts on the outbox and the timelines."""
        self._store.record_attempts(attempts, runner=runner, actor=actor)

    def sent_messages(self, channel: str, *, since: datetime, until: datetime) -> int:
        """Messages this run sent to a channel in (since, until] (for the rate limit): runs
        replaying the same minutes must not count against each other."""
        sent = {item.id for i in self._store.drill_incidents(self._run)
                for item in self._store.outbox(statuses=["sent"], incident_id=i.id)
                if item.envelope.channel == channel and item.sent_at
                and since < item.sent_at <= until}
        return len(sent)

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        """The store's silences: a drill meets the same ones a real incident would."""
        return self._store.silences(active_at=active_at)

    def active(self, check: str | None = None) -> list[Incident]:
        """This run's open incidents."""
        return [i for i in self._store.active(check) if self._run.owns(i)]

    def reopened_at(self, ids: Sequence[int]) -> dict[int, datetime]:
        """When each of these incidents last reopened."""
        return self._store.reopened_at(ids)

    def unannounced(self, openings: Mapping[int, str]) -> set[int]:
        """Which of these incidents' openings a silence or window held back."""
        return self._store.unannounced(openings)


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
                   checks=tuple(replace(c, source=f"{DRILL_PREFIX}{c.name}") for c in checks))


# A run still `running` this long after it should have ended lost its process.
STALE_AFTER = timedelta(minutes=10)


def sweep(store: Store, now: datetime) -> list[DrillRun]:
    """Close the runs whose process died: journal them aborted and restore what they left."""
    stale = []
    for r in store.drill_runs(limit=10_000):
        length = r.sim_end - r.sim_start if r.mode == "live" else timedelta(0)
        if r.status == "running" and r.started_at + length + STALE_AFTER < now:
            restore(store, r, now)
            stale.append(store.finish_drill_run(r.id, status=ABORTED, at=now, scorecard={
                **r.scorecard, "drill": r.drill, "run": r.id, "status": ABORTED,
                "aborted_because": ["the drill's process stopped before it finished"]}))
    return stale


def run(project: Project, drill: Drill, store: Store, sources: Mapping[str, Source], *,
        start: datetime, clock: Clock, live: bool = False, actor: str = ACTOR) -> Scorecard:
    """Run a drill from `start` (the scenario's clock) and journal it; the scorecard."""
    began = time.monotonic()
    sweep(store, clock.now())
    checks = involved_checks(project, drill)
    if not checks:
        raise DrillError(f"{drill.path}: the drill names no check and its faults reach none")
    step = min(c.every for c in checks)
    start = align(start, step)
    # Live, the scenario's clock runs a whole number of steps behind the wall clock, so each
    # tick evaluates on the replayed grid.
    shift = step * -((start - clock.now()) // step) if live else timedelta(0)
    setup = prepare(drill, checks, sources, start, shift, live=live)
    end = start + drill.duration
    journal = store.start_drill_run(drill.name, mode="live" if live else "replay",
                                    at=clock.now(), sim_start=start, sim_end=end, actor=actor)
    try:
        card = _run(project, drill, store, setup, journal, clock, began)
    except BaseException as exc:
        store.finish_drill_run(journal.id, status=ABORTED, at=clock.now(), scorecard={
            "drill": drill.name, "run": journal.id, "status": ABORTED,
            "aborted_because": [f"the run stopped: {exc or type(exc).__name__}"]})
        raise
    store.finish_drill_run(journal.id, status=card.status, at=clock.now(),
                           scorecard=card.as_dict())
    return card


def _run(project: Project, drill: Drill, store: Store, setup: _Setup, journal: DrillRun,
         clock: Clock, began: float) -> Scorecard:
    """Steady state, then the replay through a drill engine, scoring and restore."""
    from incident.engine import Engine
    from incident.notify import Notifier
    from incident.notify.pipeline import Pipeline

    live = journal.mode == "live"
    start, end = journal.sim_start, journal.sim_end
    shift = setup.sources[setup.checks[0].name].shift
    card = Scorecard(drill=drill.name, run_id=journal.id, mode=journal.mode, status=ABORTED,
                     start=start + shift, end=end + shift, roles=drill.roles)
    # Without data the steady state holds vacuously and the faults have nothing to act on.
    aborted = missing_data(setup, start, end, project.settings.timezone, live=live) or \
        steady_state(drill, setup, store, start + shift)
    if aborted:
        return replace(card, aborted_because=tuple(aborted), elapsed=time.monotonic() - began)
    view = drill_project(project, drill, setup.checks)
    notifier = Notifier(view.settings, project.root)
    engine = Engine(view, {f"{DRILL_PREFIX}{n}": s for n, s in setup.sources.items()}, store,
                    notifier, drill=journal,
                    pipeline=Pipeline(view, DrillOutbox(store, journal), notifier, drills=True))
    errors: list[str] = []
    try:
        for t in _ticks(start, end, setup.step):
            if live:
                clock.sleep(max((t + shift - clock.now()).total_seconds(), 0.0))
            due = [c.name for c in setup.checks if t == align(t, c.every)]
            report = engine.run(t + shift, due)
            errors += [f"+{format_duration(t - start)} {e}" for e in report.source_errors]
        incidents = [store.get(i.id) for i in store.drill_incidents(journal)]
        ctx = Context(start=start + shift, end=end + shift, live=live,
                      stand_ins=frozenset(project.settings.drill_channels) | set(
                          drill.real_channels),
                      hints=_hints(drill, setup, start, end))
        outcomes = score(drill, incidents, ctx)
        # The real series moving by themselves, or a check that could not be read, explain
        # a surprising scorecard.
        deviated = [f"{fp} fires on the real data at the end of the drill ({why})"
                    for fp, why in _firing(drill, setup, end + shift)]
        deviated += [f"not evaluated at {e}" for e in dict.fromkeys(errors)]
    finally:
        restore(store, journal, end + shift)
    status = FAILED if any(o.status == FAILED for o in outcomes) else PASSED
    return replace(card, status=status, outcomes=tuple(outcomes), deviated=tuple(deviated),
                   incidents=tuple(_row(i, start + shift) for i in incidents),
                   elapsed=time.monotonic() - began)


def _ticks(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    first = align(start, step)
    first = first if first >= start else first + step
    n = int((end - first) / step)
    return [first + k * step for k in range(n + 1)]


def restore(store: Store, journal: DrillRun, at: datetime) -> None:
    """Resolve what the drill left open and drop its undelivered messages: nothing lingers."""
    for incident in store.active():
        if journal.owns(incident):
            store.resolve(incident.id, at=max(at, incident.opened_at), actor=ACTOR,
                          text="drill ended: restored")
    store.abandon_drill_messages(journal)


def _hints(drill: Drill, setup: _Setup, start: datetime, end: datetime) -> dict[str, str]:
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
