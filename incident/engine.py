"""One run of the checks: read each source, detect, reconcile incidents in the store, notify.

`judge` is pure (frame + check + now → findings per fingerprint); `Engine.run` does the I/O.
Evaluation is stateless over each check's lookback: the only memory is the store.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from incident.errors import QueryError, SourceError
from incident.model import (
    AbsentParams,
    Check,
    DrillRun,
    EventKind,
    Incident,
    Labels,
    NoData,
    Project,
    Severity,
    ThresholdParams,
)
from incident.timeutil import align

if TYPE_CHECKING:
    import pandas as pd

    from incident.notify import Notifier
    from incident.notify.pipeline import OnChange, Pipeline
    from incident.sources import Source
    from incident.store import Store

ACTOR = "incident check"
SOURCE_CHECK_PREFIX = "source-unreadable"
CONFIG_CHECK_PREFIX = "config-invalid"
# A value change this large (relative) on an open incident is worth a timeline line.
NOTABLE_CHANGE = 0.2


class State(enum.StrEnum):
    FIRING = "firing"
    CLEAR = "clear"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """What one fingerprint of one check looks like at `now`."""

    fingerprint: str
    labels: Labels
    state: State
    detected_at: datetime | None = None
    fired_at: datetime | None = None
    cleared_at: datetime | None = None
    value: float | None = None
    reason: str = ""
    severity: Severity | None = None  # the firing's own (a burn-rate pair's), else the check's


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """A change the run made (or, dry, would make) to one incident."""

    kind: str  # opened | reopened | resolved | updated | raised (severity)
    fingerprint: str
    incident_id: int | None
    reason: str = ""
    notified: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The outcome of one check in one run."""

    check: str
    source: str
    series: int = 0
    findings: tuple[Finding, ...] = ()
    actions: tuple[Action, ...] = ()
    error: str | None = None
    skipped: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """Everything one `incident check` run saw and did."""

    at: datetime
    dry_run: bool
    results: tuple[CheckResult, ...]
    source_actions: tuple[Action, ...] = field(default=())

    @property
    def source_errors(self) -> list[str]:
        """The checks that could not be read, with why."""
        return [f"{r.check}: {r.error}" for r in self.results if r.error]


def fingerprint(check: str, group_by: Sequence[str], labels: Labels) -> tuple[str, Labels]:
    """check name + the values of its group_by labels, e.g. api-success-rate{service="api"}."""
    group = Labels({k: labels.get(k) for k in group_by})
    return (f"{check}{group}" if group_by else check), group


def judge(check: Check, frame: pd.DataFrame, now: datetime) -> list[Finding]:
    """Findings per fingerprint at `now`: firing, clear, or no data (with the no_data rule applied)."""
    from incident.detectors import detect

    firings = detect(frame, check.detector, now)
    rows = frame.index <= now
    last = frame.loc[rows].iloc[-1] if rows.any() else None

    groups: dict[str, dict[str, Any]] = {}

    def group(labels: Labels) -> dict[str, Any]:
        fp, glabels = fingerprint(check.name, check.group_by, labels)
        return groups.setdefault(fp, {"labels": glabels, "firings": [], "last": [], "inputs": []})

    for column in frame.columns:
        value = float(last[column]) if last is not None else math.nan
        # Extra queries (good/total counts) show data is there, but are not the check's value.
        group(column)["last" if "__query__" not in column else "inputs"].append((column, value))
    for firing in firings:
        group(firing.labels)["firings"].append(firing)

    findings = []
    for fp, g in sorted(groups.items()):
        active = [f for f in g["firings"] if f.end is None]
        ended = [f for f in g["firings"] if f.end is not None]
        present = [v for _, v in g["last"] if not math.isnan(v)]
        has_data = bool(present) or any(not math.isnan(v) for _, v in g["inputs"])
        absent_check = isinstance(check.detector, AbsentParams)
        if not has_data and not absent_check:
            findings.append(_no_data(check, fp, g["labels"], frame, now, active))
        elif active:
            first = min(active, key=lambda f: f.fired)
            findings.append(Finding(
                fingerprint=fp, labels=g["labels"], state=State.FIRING,
                detected_at=min(f.start for f in active), fired_at=first.fired,
                value=first.value, reason=first.reason,
                severity=min((f.severity for f in active if f.severity), default=None,
                             key=lambda s: s.rank)))
        else:
            holding = _holding(check, present)
            cleared = max((f.end for f in ended if f.end), default=None)
            if not holding:
                cleared = _max_time(cleared, _hold_ended(check, frame, now, g["last"]))
            findings.append(Finding(
                fingerprint=fp, labels=g["labels"],
                state=State.FIRING if holding else State.CLEAR, cleared_at=cleared,
                value=present[0] if present else None,
                reason="still beyond the clear level" if holding else ""))
    return findings


def _max_time(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _hold_ended(check: Check, frame: pd.DataFrame, now: datetime,
                columns: list[tuple[Labels, float]]) -> datetime | None:
    """The first point after the group last sat beyond `clear`: when a held incident recovered."""
    p = check.detector
    if not isinstance(p, ThresholdParams) or p.clear is None:
        return None
    mine = np.isin(np.arange(len(frame.columns)),
                   [frame.columns.get_loc(c) for c, _ in columns])
    values = frame.loc[frame.index <= now].iloc[:, mine].to_numpy()
    beyond = (values > p.clear) if p.above is not None else (values < p.clear)
    held = np.flatnonzero(beyond.any(axis=1))
    if not len(held) or held[-1] + 1 >= len(values):
        return None
    return frame.index[held[-1] + 1].to_pydatetime()


def _holding(check: Check, values: Iterable[float]) -> bool:
    """True when a threshold check's latest values are still past `clear` (hysteresis).

    The detector only sees the lookback window; an incident opened earlier stays open while
    the value has not crossed back over `clear`, even when its breach run left the window.
    """
    p = check.detector
    if not isinstance(p, ThresholdParams) or p.clear is None:
        return False
    if p.above is not None:
        return any(v > p.clear for v in values)
    return p.below is not None and any(v < p.clear for v in values)


def _no_data(check: Check, fp: str, labels: Labels, frame: pd.DataFrame, now: datetime,
             active: list[Any]) -> Finding:
    """A fingerprint with no point at `now`: what the check's no_data rule makes of it."""
    if check.no_data is NoData.ALERT:
        since = _missing_since(frame, labels, check, now)
        return Finding(fingerprint=fp, labels=labels, state=State.FIRING, detected_at=since,
                       fired_at=since, reason="no data")
    return Finding(fingerprint=fp, labels=labels, state=State.NO_DATA,
                   reason="no data" + (" (firing when last seen)" if active else ""))


def _missing_since(frame: pd.DataFrame, labels: Labels, check: Check, now: datetime) -> datetime:
    """The first point after the group's last data point (or the window start)."""
    mine = np.array([fingerprint(check.name, check.group_by, c)[1] == labels
                     for c in frame.columns], dtype=bool)
    view = frame.loc[frame.index <= now].iloc[:, mine]
    present = view.notna().any(axis=1).to_numpy()
    if not len(view):
        return now
    seen = np.flatnonzero(present)
    first_missing = seen[-1] + 1 if len(seen) else 0
    return view.index[min(first_missing, len(view) - 1)].to_pydatetime()


def window(check: Check, now: datetime) -> tuple[datetime, datetime]:
    """The evaluated range: the lookback up to `now` aligned down to the check's step."""
    end = align(now, check.every)
    return end - check.lookback, end


class Engine:
    """Runs checks against sources and keeps the store and the channels in step."""

    def __init__(self, project: Project, sources: Mapping[str, Source], store: Store,
                 notifier: Notifier, *, drill: DrillRun | None = None,
                 pipeline: Pipeline | None = None) -> None:
        self.project = project
        self.sources = sources
        self.store = store
        self.notifier = notifier
        # A drill run's engine: its incidents carry the run's fingerprint prefix and the drill
        # mark, it sees no other incident, and it leaves source health alone.
        self.drill = drill
        from incident.notify.pipeline import Pipeline

        self.pipeline = pipeline or Pipeline(project, store, notifier)

    def run(self, now: datetime, names: Sequence[str] = (), *, dry_run: bool = False
            ) -> RunReport:
        """Evaluate the named checks (all when empty) as of `now`."""
        checks = [self.project.check(n) for n in names] if names else list(self.project.checks)
        results: list[CheckResult] = []
        down: dict[str, str] = {}
        used: list[str] = []
        for check in checks:
            if check.source not in used:
                used.append(check.source)
            if check.source in down:
                results.append(CheckResult(check=check.name, source=check.source, skipped=True,
                                           error=f"not evaluated: {down[check.source]}"))
                continue
            result = self._run_check(check, now, dry_run)
            if result.error and not result.skipped:
                down[check.source] = result.error
            results.append(result)
        source_actions: list[Action] = []
        if not dry_run:
            for name in used if self.drill is None else ():
                every = min(c.every for c in checks if c.source == name)
                source_actions += self._source_health(name, down.get(name), now, align(now, every))
            if self.drill is None:
                source_actions += self.config_health(now)
            results, source_actions = self._deliver(now, results, source_actions)
        return RunReport(at=now, dry_run=dry_run, results=tuple(results),
                         source_actions=tuple(source_actions))

    def _deliver(self, now: datetime, results: list[CheckResult], source_actions: list[Action]
                 ) -> tuple[list[CheckResult], list[Action]]:
        """Enqueue what is owed (reminders, escalations), deliver everything due, report it."""
        from incident.notify.pipeline import outcomes

        self.pipeline.schedule(now)
        sent = outcomes(self.pipeline.deliver(now, actor=ACTOR))

        def told(a: Action) -> Action:
            return replace(a, notified=sent.get(a.incident_id or -1, ()))

        return ([replace(r, actions=tuple(told(a) for a in r.actions)) for r in results],
                [told(a) for a in source_actions])

    def _run_check(self, check: Check, now: datetime, dry_run: bool) -> CheckResult:
        start, end = window(check, now)
        try:
            from incident.detectors import inputs

            # The check's query and the detector's own (good/total), as one frame.
            frame = inputs.combine({
                name: self.sources[check.source].query_range(query, start, end, check.every)
                for name, query in inputs.queries(check.query, check.detector).items()})
        except QueryError as exc:
            # A bad query is the check's fault, not the source's: it never counts as an outage.
            return CheckResult(check=check.name, source=check.source, error=str(exc),
                               skipped=True)
        except SourceError as exc:
            return CheckResult(check=check.name, source=check.source, error=str(exc))
        findings = judge(check, frame, now)
        if self.drill is not None:
            findings = [replace(f, fingerprint=self.drill.fingerprint_prefix + f.fingerprint)
                        for f in findings]
        # Past `clear` only holds an incident that is open: with none, the series is not firing
        # (a dry run must not predict an open, nor the report say FIRING).
        findings = [replace(f, state=State.CLEAR, reason="") if f.state is State.FIRING
                    and f.fired_at is None and self.store.find_active(f.fingerprint) is None else f
                    for f in findings]
        covered = {f.fingerprint for f in findings}
        for incident in self.store.active(check=check.name):
            if incident.fingerprint not in covered and self._mine(incident):
                findings.append(Finding(fingerprint=incident.fingerprint,
                                        labels=Labels(), state=State.NO_DATA, reason="no data"))
        actions = [a for f in findings if (a := self._apply(check, f, now, dry_run))]
        return CheckResult(check=check.name, source=check.source, series=len(frame.columns),
                           findings=tuple(findings), actions=tuple(actions))

    def _mine(self, incident: Incident) -> bool:
        """A real engine minds real incidents; a drill's engine only its own run's."""
        return not incident.drill if self.drill is None else self.drill.owns(incident)

    def _apply(self, check: Check, finding: Finding, now: datetime, dry_run: bool
               ) -> Action | None:
        if finding.state is State.FIRING:
            return self._fire(check, finding, now, dry_run)
        if finding.state is State.NO_DATA and check.no_data is not NoData.RESOLVE:
            return None
        current = self.store.find_active(finding.fingerprint)
        if current is None:
            return None
        if dry_run:
            return Action(kind="resolved", fingerprint=finding.fingerprint,
                          incident_id=current.id, reason=finding.reason)
        at = finding.cleared_at if finding.cleared_at and finding.cleared_at > current.opened_at \
            else now
        text = "recovered" if finding.state is State.CLEAR else "no data (no_data: resolve)"
        on = self.pipeline.on("resolved", now)
        incident, changed = self.store.resolve(current.id, at=at, actor=ACTOR, text=text,
                                               auto=True, notifications=on)
        if not changed:
            return None
        self._muted(incident, on, now)
        return Action(kind="resolved", fingerprint=finding.fingerprint, incident_id=incident.id,
                      reason=text)

    def _fire(self, check: Check, finding: Finding, now: datetime, dry_run: bool) -> Action | None:
        from incident.store import Change

        current = self.store.find_active(finding.fingerprint)
        if dry_run:
            kind = "updated" if current else "opened"
            return Action(kind=kind, fingerprint=finding.fingerprint,
                          incident_id=current.id if current else None, reason=finding.reason)
        title = check.name + (f" ({', '.join(f'{k}={v}' for k, v in finding.labels.items())})"
                              if len(finding.labels) else "")
        severity = finding.severity or check.severity
        incident, change = self.store.open_incident(
            fingerprint=finding.fingerprint, check=check.name, title=title,
            severity=severity,
            labels={**check.labels, **finding.labels.as_dict()},
            runbook=check.runbook, detected_at=finding.detected_at or now, at=now,
            value=finding.value, reopen_window=self.project.settings.reopen_window, actor=ACTOR,
            drill=self.drill is not None,
            notifications=(on := self.pipeline.on("opened", now, finding.reason)))
        if change is Change.EXISTING and severity.rank < incident.severity.rank:
            # A slow burn opened it as a ticket; a fast burn now pages: the incident follows.
            incident, raised = self.store.raise_severity(
                incident.id, severity, at=now, actor=ACTOR, reason=finding.reason,
                notifications=(on := self.pipeline.on("severity", now, finding.reason)))
            if raised:
                self._muted(incident, on, now)
                return Action(kind="raised", fingerprint=finding.fingerprint,
                              incident_id=incident.id, reason=finding.reason)
        if change is Change.EXISTING:
            previous = current.value if current else None
            if _notable(previous, finding.value):
                self.store.add_event(incident.id, at=now, kind=EventKind.UPDATED, actor=ACTOR,
                                     text=f"value {previous:.6g} → {finding.value:.6g}",
                                     data={"value": finding.value})
                return Action(kind="updated", fingerprint=finding.fingerprint,
                              incident_id=incident.id, reason=finding.reason)
            return None
        self.store.add_event(incident.id, at=now, kind=EventKind.UPDATED, actor=ACTOR,
                             text=finding.reason, data={"value": finding.value})
        if change is Change.OPENED:
            attach_runbook(self.store, incident, self.project, now, ACTOR)
        kind = "opened" if change is Change.OPENED else "reopened"
        self._muted(incident, on, now)
        return Action(kind=kind, fingerprint=finding.fingerprint, incident_id=incident.id,
                      reason=finding.reason)

    def _muted(self, incident: Incident, on: OnChange, now: datetime) -> None:
        """A silenced or windowed incident still opens and is recorded; it just does not page."""
        if on.muted_by is not None:
            self.store.add_event(incident.id, at=now, kind=EventKind.NOTIFIED, actor=ACTOR,
                                 text=f"not sent: {on.muted_by}",
                                 data={"silenced_by": on.muted_by})

    def _source_health(self, source: str, error: str | None, now: datetime, cycle: datetime
                       ) -> list[Action]:
        """Count failed cycles in a row; past the limit the platform is blind, and that pages.

        `cycle` starts the current cycle of the source's most frequent check in this run:
        several runners failing within it count as one failure.
        """
        fp = f'{SOURCE_CHECK_PREFIX}{{source="{source}"}}'
        failures = self.store.record_source(source, ok=error is None, at=now, error=error,
                                            cycle=cycle)
        if error is None:
            current = self.store.find_active(fp)
            return self._platform_resolve(current, "source readable again", now) if current else []
        if failures < self.project.settings.source_failure_limit:
            return []
        return self._platform_open(
            fp, f"source {source} unreadable: checks are blind", Severity.CRITICAL,
            {"source": source, "category": "monitoring"}, float(failures),
            f"unreadable {failures} cycles in a row: {error}", now, EventKind.SOURCE_ERROR)

    def config_health(self, now: datetime) -> list[Action]:
        """A check, runbook or channel left out for its mistakes is an incident until fixed.

        The project was loaded leniently, so the rest runs; but a check that is not
        evaluated watches nothing, and somebody must hear of it.
        """
        broken: dict[str, list[str]] = {}
        for problem in self.project.problems:
            broken.setdefault(str(problem.file), []).append(str(problem))
        actions = []
        for file, problems in broken.items():
            runbook = file.startswith("runbooks")
            title = f"{file} is invalid: " + (
                "its broken checks are not evaluated" if file.startswith("checks")
                else "its steps are not attached to incidents" if runbook
                else "some channels cannot be sent to from here")
            reason = f"{len(problems)} problem{'s' * (len(problems) > 1)}: " + "; ".join(problems[:3])
            actions += self._platform_open(
                f'{CONFIG_CHECK_PREFIX}{{file="{file}"}}', title,
                Severity.HIGH if runbook else Severity.CRITICAL,
                {"file": file, "category": "monitoring"}, float(len(problems)), reason, now,
                EventKind.UPDATED)
        for incident in self.store.active():
            if incident.fingerprint.startswith(CONFIG_CHECK_PREFIX + "{") \
                    and incident.labels.get("file") not in broken:
                actions += self._platform_resolve(incident, "file valid again", now)
        return actions

    def _platform_open(self, fp: str, title: str, severity: Severity, labels: dict[str, str],
                       value: float, reason: str, now: datetime, event: EventKind) -> list[Action]:
        """Open (or keep) an incident about the monitoring itself, which has no check; the
        reason goes on its timeline as `event`."""
        from incident.store import Change

        incident, change = self.store.open_incident(
            fingerprint=fp, check=None, title=title, severity=severity, labels=labels,
            runbook=None, detected_at=now, at=now, value=value,
            reopen_window=self.project.settings.reopen_window, actor=ACTOR,
            notifications=(on := self.pipeline.on("opened", now, reason)))
        if change is Change.EXISTING:
            return []
        self._muted(incident, on, now)
        self.store.add_event(incident.id, at=now, kind=event, actor=ACTOR, text=reason)
        kind = "opened" if change is Change.OPENED else "reopened"
        return [Action(kind=kind, fingerprint=fp, incident_id=incident.id, reason=reason)]

    def _platform_resolve(self, current: Incident, text: str, now: datetime) -> list[Action]:
        on = self.pipeline.on("resolved", now)
        incident, changed = self.store.resolve(current.id, at=now, actor=ACTOR, text=text,
                                               auto=True, notifications=on)
        if not changed:
            return []
        self._muted(incident, on, now)
        return [Action(kind="resolved", fingerprint=incident.fingerprint, incident_id=incident.id)]


def attach_runbook(store: Store, incident: Incident, project: Project, now: datetime,
                   actor: str) -> None:
    """Record the runbook and its steps on a new incident, as they were when it opened."""
    from incident.runbooks import snapshot

    runbook = project.runbooks.get(incident.runbook or "")
    if runbook is None:
        return
    store.add_event(incident.id, at=now, kind=EventKind.RUNBOOK, actor=actor,
                    text=f"runbook {runbook.name}: {runbook.title} ({len(runbook.steps)} steps)",
                    data=snapshot(runbook))


def _notable(previous: float | None, value: float | None) -> bool:
    if previous is None or value is None or math.isnan(previous) or math.isnan(value):
        return False
    scale = max(abs(previous), 1e-12)
    return abs(value - previous) / scale >= NOTABLE_CHANGE
