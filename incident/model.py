"""The typed vocabulary every layer shares: parsed config, series labels, firings, incidents.

Everything here is frozen. Config objects never carry run-time state; that lives in the store.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from incident.errors import ConfigProblem


class Severity(enum.StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical, 3 for low: sorts the most urgent first."""
        return list(Severity).index(self)


class Status(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class NoData(enum.StrEnum):
    """What a check does when its series has no point at the evaluation time."""

    KEEP = "keep"
    ALERT = "alert"
    RESOLVE = "resolve"


class EventKind(enum.StrEnum):
    OPENED = "opened"
    REOPENED = "reopened"
    UPDATED = "updated"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    NOTE = "note"
    STEP = "step"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    SOURCE_ERROR = "source_error"
    RUNBOOK = "runbook"
    LEARNED = "learned"


class Labels:
    """An immutable, hashable label set, ordered by name; prints like PromQL: {a="1",b="2"}.

    Not a tuple on purpose: pandas would turn tuple column names into a MultiIndex.
    """

    __slots__ = ("_items",)
    _items: tuple[tuple[str, str], ...]

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        pairs = sorted((items or {}).items())
        object.__setattr__(self, "_items", tuple((str(k), str(v)) for k, v in pairs))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Labels are immutable")

    def __getitem__(self, key: str) -> str:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def get(self, key: str, default: str = "") -> str:
        """The value of a label, or `default` when the series does not carry it."""
        for k, v in self._items:
            if k == key:
                return v
        return default

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self._items)

    def keys(self) -> tuple[str, ...]:
        """The label names in order. (No __iter__: pandas would take Labels for a list.)"""
        return tuple(k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> tuple[tuple[str, str], ...]:
        """The (name, value) pairs in name order."""
        return self._items

    def as_dict(self) -> dict[str, str]:
        """A fresh mutable copy."""
        return dict(self._items)

    def without(self, *names: str) -> Labels:
        """A copy without the given label names."""
        return Labels({k: v for k, v in self._items if k not in names})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Labels) and self._items == other._items

    def __lt__(self, other: Labels) -> bool:
        return self._items < other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __str__(self) -> str:
        name = self.get("__name__")
        body = ",".join(
            f'{k}="{_escape(v)}"' for k, v in self._items if k != "__name__"
        )
        return f"{name}{{{body}}}" if body or not name else name

    def __repr__(self) -> str:
        return f"Labels({self.as_dict()!r})"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """Where a value came from, for error messages: file, 1-based line and column."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdParams:
    """Fires when the value is above/below a level for `for_`; resolves past `clear`."""

    above: float | None = None
    below: float | None = None
    for_: timedelta = timedelta(0)
    clear: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsentParams:
    """Fires when a series (or the whole query) has had no data for `for_`."""

    for_: timedelta = timedelta(minutes=5)


class Direction(enum.StrEnum):
    """Which way a change or an anomaly has to go to count."""

    UP = "up"
    DOWN = "down"
    BOTH = "both"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeParams:
    """Fires when a series differs from itself `offset` ago by more than `percent` and/or `delta`.

    `total` (a query giving the events behind each point), `min_events` and `significance`
    are the volume guard for ratio series: see incident/detectors/volume.py.
    """

    offset: timedelta
    percent: float | None = None
    delta: float | None = None
    direction: Direction = Direction.BOTH
    for_: timedelta = timedelta(0)
    total: str | None = None
    min_events: float = 0.0
    significance: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyParams:
    """Fires when a series leaves its robust (optionally seasonal) baseline by `sensitivity` MADs.

    `season` is "none", "1d", "1w" or "auto"; `warm_up` None means the history the
    baseline needs. See incident/detectors/anomaly.py for the method and its defaults.
    """

    season: str = "auto"
    seasons: int = 3
    window: timedelta = timedelta(days=1)
    sensitivity: float = 3.0
    novelty: float = 1.15
    memory: timedelta = timedelta(days=7)
    smooth: timedelta = timedelta(minutes=30)
    min_deviation: float = 0.0
    direction: Direction = Direction.BOTH
    for_: timedelta = timedelta(0)
    clear_after: timedelta = timedelta(hours=6)
    warm_up: timedelta | None = None
    total: str | None = None
    min_events: float = 0.0
    significance: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnWindow:
    """One multi-window burn-rate alert: both windows burn at least `burn`× the budget."""

    long: timedelta
    short: timedelta
    burn: float
    severity: Severity | None = None  # None: the check's severity


# The SRE Workbook's recommended pairs (chapter 5, "Alerting on SLOs"): two that page,
# two that open tickets.
DEFAULT_BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow(long=timedelta(hours=1), short=timedelta(minutes=5), burn=14.4),
    BurnWindow(long=timedelta(hours=6), short=timedelta(minutes=30), burn=6.0),
    BurnWindow(long=timedelta(days=1), short=timedelta(hours=2), burn=3.0, severity=Severity.LOW),
    BurnWindow(long=timedelta(days=3), short=timedelta(hours=6), burn=1.0, severity=Severity.LOW),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BurnRateParams:
    """Fires when an SLO burns its error budget too fast over paired long and short windows.

    The SLI is the check's query (a success ratio in [0, 1]) or `good`/`total` queries.
    """

    objective: float
    period: timedelta = timedelta(days=30)
    windows: tuple[BurnWindow, ...] = DEFAULT_BURN_WINDOWS
    good: str | None = None
    total: str | None = None
    min_events: float = 0.0
    significance: float | None = None


DetectorParams = ThresholdParams | AbsentParams | ChangeParams | AnomalyParams | BurnRateParams


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One declarative check from checks/*.yaml."""

    name: str
    description: str = ""
    source: str
    query: str = ""  # empty when the detector brings its own queries (burn_rate good/total)
    every: timedelta = timedelta(minutes=1)
    lookback: timedelta = timedelta(hours=1)
    detector: DetectorParams
    severity: Severity = Severity.MEDIUM
    labels: Mapping[str, str] = field(default_factory=dict)
    runbook: str | None = None
    group_by: tuple[str, ...] = ()
    no_data: NoData = NoData.KEEP
    position: Position | None = None

    @property
    def detector_type(self) -> str:
        """The YAML name of the detector: threshold, absent, …"""
        return DETECTOR_NAMES[type(self.detector)]


DETECTOR_NAMES: dict[type, str] = {
    ThresholdParams: "threshold",
    AbsentParams: "absent",
    ChangeParams: "change",
    AnomalyParams: "anomaly",
    BurnRateParams: "burn_rate",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSpec:
    """A named data source from incident.yaml."""

    name: str
    type: str  # "prometheus" | "file"
    url: str | None = None
    path: Path | None = None
    timeout: timedelta = timedelta(seconds=10)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalation:
    after: timedelta
    notify: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Routes are tried in order; the first match wins unless it says `continue`.

    An empty route (no `match`, no `match_re`) matches everything: the default route.
    """

    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, str] = field(default_factory=dict)
    notify: tuple[str, ...] = ()
    repeat: timedelta | None = None
    escalate: Escalation | None = None
    continue_: bool = False
    name: str = ""

    def matches(self, attributes: Mapping[str, str]) -> bool:
        """Every `match` key equals, and every `match_re` pattern fully matches, the attribute."""
        import re

        return all(attributes.get(k) == v for k, v in self.match.items()) and all(
            re.fullmatch(p, attributes.get(k, "")) is not None for k, p in self.match_re.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    """How hard to try a channel before giving up on it and using the fallback."""

    attempts: int = 6
    backoff: timedelta = timedelta(seconds=30)
    max_backoff: timedelta = timedelta(minutes=15)
    fallback: str | None = None
    rate_limit: int = 30  # messages per channel per `rate_window`; more wait, never dropped
    rate_window: timedelta = timedelta(minutes=1)
    # More messages than this due at once for one channel go out as one digest with a line
    # each (default 1: incidents opening together never page one by one); raise to split.
    group_over: int = 1
    templates: Path | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Maintenance:
    """A recurring window (cron schedule in a time zone) during which matching incidents don't page."""

    name: str
    schedule: str
    duration: timedelta
    timezone: str = "UTC"
    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Channel:
    """An apprise URL. `url` holds the secret-bearing value; `redacted` is safe to print."""

    name: str
    url: str = field(repr=False)
    redacted: str
    position: Position | None = None
    unset: tuple[str, ...] = ()  # ${VAR}s of the URL this environment lacks: cannot send here


DEFAULT_LEASE_TTL = timedelta(minutes=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """incident.yaml, parsed."""

    store: str
    timezone: str = "UTC"
    default_source: str
    sources: Mapping[str, SourceSpec]
    channels: Mapping[str, Channel] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    stakeholders: tuple[str, ...] = ()
    maintenance: tuple[Maintenance, ...] = ()
    reopen_window: timedelta = timedelta(hours=1)
    source_failure_limit: int = 3
    # `runners: {lease_ttl: …}`: how long a claim on a check (`incident check --lease`) holds
    # before another runner may take it over from one that died.
    lease_ttl: timedelta = DEFAULT_LEASE_TTL
    # `drills: {channels: {oncall: URL}}`: where a drill's notifications for a channel go
    # instead of the real one. A channel with no stand-in is never sent drill messages unless
    # a scenario lists it in `real_channels`.
    drill_channels: Mapping[str, Channel] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One numbered step of a runbook; sub-steps are numbered like 2.1."""

    number: str
    text: str
    body: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Runbook:
    """runbooks/NAME.md: front matter plus a Markdown body whose numbered items are the steps."""

    name: str
    title: str
    path: Path
    checks: tuple[str, ...] = ()
    severity: Severity | None = None
    owner: str = ""
    reviewed: date | None = None
    review_every: timedelta | None = None
    tags: tuple[str, ...] = ()
    body: str = ""
    steps: tuple[Step, ...] = ()
    body_line: int = 1

    def review_due(self) -> date | None:
        """The date the next review is due, when the runbook says how often."""
        if self.reviewed is None or self.review_every is None:
            return None
        return self.reviewed + self.review_every


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    """A whole project directory, loaded and validated once."""

    root: Path
    settings: Settings
    checks: tuple[Check, ...]
    runbooks: Mapping[str, Runbook] = field(default_factory=dict)
    drills: Mapping[str, Drill] = field(default_factory=dict)
    # Loaded leniently: the problems of the checks, runbooks and channels that were left out.
    problems: tuple[ConfigProblem, ...] = ()

    def check(self, name: str) -> Check:
        """The check called `name`; KeyError if there is none."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)


# ---------------------------------------------------------------- drills


FAULT_TYPES = ("set", "add", "multiply", "ramp", "drop", "noise", "flatline")
# Drill incidents' fingerprints and drill messages' channels start with it: a real runner
# never claims, resolves or delivers anything that does.
DRILL_PREFIX = "drill:"


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """What happens to the series between `from` and `to`.

    set → `value`; add → + `value`; multiply → × `by`; ramp → linearly from the real value to
    `to` (a level) or to × `by`; drop → no data; noise → + gaussian(0, `stddev`) with `seed`;
    flatline → the last real value before the fault, held.
    """

    type: str
    value: float | None = None
    by: float | None = None
    to: float | None = None
    stddev: float | None = None
    seed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Injection:
    """A fault laid over a check's evaluated series, or over a raw metric of a local source."""

    check: str | None = None  # exactly one of check and metric
    metric: str | None = None  # a series selector, e.g. http_requests_total{code="500"}
    labels: Mapping[str, str] = field(default_factory=dict)  # only these series of the check
    start: timedelta  # `from`, after the drill starts
    end: timedelta  # `to`
    fault: Fault
    position: Position | None = None


class ExpectKind(enum.StrEnum):
    INCIDENT = "incident"
    NOTIFIED = "notified"
    RESOLVED = "resolved"
    NO_INCIDENT = "no_incident"
    ACKNOWLEDGED = "acknowledged"  # live drills: somebody acknowledged in time
    STEPS = "steps"  # live drills: runbook steps done


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    """One thing the drill must see happen (or, for no_incident, not happen)."""

    kind: ExpectKind
    check: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    within: timedelta | None = None  # after the drill starts
    severity: Severity | None = None
    runbook: str | None = None
    channel: str | None = None
    steps: int | None = None  # steps: at least this many done (live)
    position: Position | None = None

    def describe(self) -> str:
        """A short human name: `incident db-query-latency within 5m`."""
        from incident.timeutil import format_duration

        about = (self.check or "") + (str(Labels(self.labels)) if self.labels else "")
        if self.kind is ExpectKind.NOTIFIED:
            about = f"{self.channel}" + (f" about {about}" if about else "")
        extra = f" ({self.steps} done)" if self.steps else ""
        within = f" within {format_duration(self.within)}" if self.within else ""
        return f"{self.kind.value} {about}{extra}{within}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Drill:
    """drills/NAME.yaml: a rehearsed emergency (steady state → inject → expect → restore)."""

    name: str
    description: str = ""
    schedule: str | None = None  # a cron expression for `incident drill due`
    timezone: str = "UTC"
    duration: timedelta
    inject: tuple[Injection, ...] = ()
    expect: tuple[Expectation, ...] = ()
    roles: Mapping[str, str] = field(default_factory=dict)  # role → who, for a live drill
    real_channels: tuple[str, ...] = ()  # channels that get the real message, tagged [DRILL]
    path: Path | None = None

    @property
    def checks(self) -> tuple[str, ...]:
        """Every check the drill injects into or expects something of."""
        names = [i.check for i in self.inject if i.check]
        names += [e.check for e in self.expect if e.check]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillRun:
    """One run of a drill, as the journal keeps it."""

    id: int
    drill: str
    mode: str  # replay | live
    status: str  # running | passed | failed | aborted
    started_at: datetime
    finished_at: datetime | None
    sim_start: datetime
    sim_end: datetime
    actor: str
    scorecard: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fingerprint_prefix(self) -> str:
        """Drill incidents carry it, so they never meet a real incident or another run's."""
        return f"{DRILL_PREFIX}{self.drill}#{self.id}:"

    def owns(self, incident: Incident) -> bool:
        """True for the incidents this run opened."""
        return incident.drill and incident.fingerprint.startswith(self.fingerprint_prefix)


# ---------------------------------------------------------------- detection


@dataclass(frozen=True, slots=True, kw_only=True)
class Firing:
    """One episode in which a series breached its detector.

    `start` is the first breaching point (detected_at); `fired` the point where the
    detector's condition held (`for` elapsed) and an incident would open; `end` the first
    point that cleared it, or None if it was still firing at `now`.
    """

    labels: Labels
    start: datetime
    fired: datetime
    end: datetime | None
    value: float
    reason: str = ""
    severity: Severity | None = None  # set when the detector knows better than the check

    @property
    def active(self) -> bool:
        """Still firing at the evaluation time."""
        return self.end is None


# ---------------------------------------------------------------- incidents


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEvent:
    """One line of an incident's history."""

    at: datetime
    kind: EventKind
    actor: str
    text: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    """An incident as read from the store."""

    id: int
    fingerprint: str
    check: str | None
    title: str
    status: Status
    severity: Severity
    labels: Mapping[str, str]
    runbook: str | None
    detected_at: datetime
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    value: float | None = None
    reopened: int = 0
    drill: bool = False
    manual: bool = False
    timeline: tuple[TimelineEvent, ...] = ()


# ---------------------------------------------------------------- notifications


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """A rendered notification for one channel, about to enter the outbox.

    (incident_id, event_key, channel) is its idempotency key: it is delivered at most once.
    """

    incident_id: int
    event: str  # opened | reopened | reminder | escalated | acknowledged | resolved | update
    event_key: str  # opened, reopened:2, reminder:3, update:<event id> … (see notify.plan)
    channel: str
    title: str
    body: str
    severity: str


@dataclass(frozen=True, slots=True, kw_only=True)
class IfPaged(Envelope):
    """An envelope the outbox writes only if its channel already has a row `paged_by` of the incident.

    How the people an escalation paged hear that it was taken: the plan cannot know whether the
    escalation went out, and the outbox, inside the transaction of the change, knows for sure.
    """

    paged_by: str  # an event key: "escalated", "escalated:2"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    """One outbox row: an envelope and how its delivery is going."""

    id: int
    envelope: Envelope
    status: str  # pending | sent | dead
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """The outcome of one delivery attempt of one outbox row, as the store records it."""

    item: OutboxItem
    number: int  # 1 for the row's first attempt ever
    at: datetime
    ok: bool
    error: str | None = None
    message: str | None = None  # id of the sent message (shared by the rows of a digest)
    retry_at: datetime | None = None  # None after a failure: dead
    then: tuple[Envelope, ...] = ()  # enqueued with the result (the fallback of a dead row)


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """Incidents matching these labels do not page between starts_at and ends_at (or expiry)."""

    id: int
    match: Mapping[str, str]
    match_re: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    comment: str
    created_by: str
    created_at: datetime
    expired_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        """In force at `now`."""
        end = min(self.ends_at, self.expired_at) if self.expired_at else self.ends_at
        return self.starts_at <= now < end
