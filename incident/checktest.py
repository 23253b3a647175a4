"""`incident checks test`: unit tests for checks, modelled on `promtool test rules`.

A test file gives input series in promtool's expanding notation (`0+10x100`, `1 _x3 stale`),
and what must hold at evaluation times: the incidents the checks have opened so far, and the
series firing. A test runs the real engine — detector, incident rules and a SQLite store in a
temporary directory — at every `evaluation_interval` from 0, over a source that evaluates the
checks' PromQL on the input series with the local engine. Times are relative to the test's
start, which is the Unix epoch, as in promtool.

Where `evaluation_interval` is the checks' own `every` and every `at` falls on that grid,
the runs that change nothing are left out: the engine runs at the times a backtest of each
check (which agrees exactly with running at every step) opens, reopens or resolves an
incident, and at each `at`. The store then goes through the same states, and a check with a
lookback of days is tested in a second, not one engine run per minute of input. Checks with
`no_data: alert` always run at every step (the one case the backtest can tell apart).

    evaluation_interval: 1m
    tests:
      - name: a 5xx burst opens one incident per service
        interval: 1m                       # sample spacing (default 1m)
        input_series:
          - series: 'http_requests_total{service="api",code="500"}'
            values: '0+0x10 0+60x20'
        checks: [api-success-rate]         # default: every check
        expect:
          - at: 20m
            incidents: [{check: api-success-rate, labels: {service: api}, status: open,
                         detected_at: 11m}]
            firing: [{check: api-success-rate, labels: {service: api}}]
"""

from __future__ import annotations

import dataclasses
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from yaml.nodes import Node, SequenceNode

from incident.config import Reader
from incident.errors import ConfigError, ConfigProblem
from incident.model import Incident, Labels, Position, Project, Status
from incident.sources.local import StorageSource
from incident.timeutil import format_duration

if TYPE_CHECKING:

    from incident.sources.promql.storage import MemoryStorage

ORIGIN = datetime(1970, 1, 1, tzinfo=UTC)
STALE = "stale"
# Relative tolerance on expected values, as promtool's epsilon.
EPSILON = 1e-6

_NUM = r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI]nf|NaN)"
_TOKEN = re.compile(rf"(?P<a>{_NUM})(?:(?P<op>[+-])(?P<b>{_NUM}))?(?:x(?P<n>\d+))?")
_BLANKS = re.compile(r"_(?:x(?P<n>\d+))?")

Value = float | None  # None: no sample; STALE_NAN (a NaN bit pattern): a stale marker


# ---------------------------------------------------------------- the format


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSeries:
    """One input series: its labels and one value per `interval` from 0."""

    labels: Labels
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedIncident:
    """An incident that must exist at the evaluation time; unset fields match anything."""

    check: str
    labels: Labels | None = None
    status: Status = Status.OPEN
    detected_at: timedelta | None = None
    opened_at: timedelta | None = None
    resolved_at: timedelta | None = None
    reopened: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedFiring:
    """A series the check's detector must find firing at the evaluation time."""

    check: str
    labels: Labels | None = None
    value: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation:
    """What must hold right after the run at `at`: exactly these incidents, these firing series."""

    at: timedelta
    incidents: tuple[ExpectedIncident, ...] | None = None
    firing: tuple[ExpectedFiring, ...] | None = None
    position: Position


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckTest:
    """One test: input series, the checks under test, expectations."""

    name: str
    interval: timedelta = timedelta(minutes=1)
    input_series: tuple[InputSeries, ...]
    checks: tuple[str, ...] = ()
    expect: tuple[Expectation, ...]
    position: Position


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckTestFile:
    """A parsed test file."""

    path: Path
    evaluation_interval: timedelta = timedelta(minutes=1)
    tests: tuple[CheckTest, ...]


def expand(text: str) -> list[Value]:
    """promtool's expanding notation → values: `1+2x3` is 1 3 5 7, `_x2` two gaps, `stale` a marker.

    `axn` repeats a n+1 times and `a-bxn` counts down; `_` is a missing sample and `_xn` n of
    them. ValueError names the token that is not understood.
    """
    from incident.sources.promql.storage import STALE_NAN

    out: list[Value] = []
    for token in text.split():
        if token == STALE:
            out.append(float(STALE_NAN))
            continue
        blank = _BLANKS.fullmatch(token)
        if blank:
            out.extend([None] * (int(blank["n"]) if blank["n"] else 1))
            continue
        m = _TOKEN.fullmatch(token)
        if not m:
            raise ValueError(f"cannot read {token!r} (expected a number, a+bxn, a-bxn, axn, "
                             "_, _xn or stale)")
        a = float(m["a"])
        if m["n"] is None:
            if m["op"]:
                raise ValueError(f"cannot read {token!r}: a+b needs a count, as in {token}x10")
            out.append(a)
            continue
        b = float(m["b"]) * (-1 if m["op"] == "-" else 1) if m["op"] else 0.0
        # Multiplying rather than adding avoids accumulating rounding error, as promtool does.
        out.extend(a + b * i for i in range(int(m["n"]) + 1))
    return out


def series_labels(text: str) -> Labels:
    """'metric{a="b"}' → its labels, __name__ included; ValueError when it is not a plain selector."""
    from incident.sources.promql import PromQLError, parse
    from incident.sources.promql.ast import VectorSelector
    from incident.sources.promql.storage import MatchOp

    try:
        tree = parse(text)
    except PromQLError as exc:
        raise ValueError(f"not a series: {exc}") from None
    if not isinstance(tree, VectorSelector) or tree.offset_ms or any(
            m.op is not MatchOp.EQ for m in tree.matchers):
        raise ValueError(f"expected a series like name{{label=\"value\"}}, got {text!r}")
    return Labels({m.name: m.value for m in tree.matchers})


_FILE_KEYS = ("evaluation_interval", "tests")
_TEST_KEYS = ("name", "interval", "input_series", "checks", "expect")
_EXPECT_KEYS = ("at", "incidents", "firing")
_INCIDENT_KEYS = ("check", "labels", "status", "detected_at", "opened_at", "resolved_at",
                  "reopened")


def parse_file(path: Path, shown: str | None = None, checks: Sequence[str] | None = None
               ) -> CheckTestFile:
    """Read a test file; ConfigError lists every problem with file:line:col.

    With `checks` (the project's check names), unknown check names are problems too.
    """
    problems: list[ConfigProblem] = []
    r = Reader(path, shown or str(path), problems)
    node = r.compose()
    tests: list[CheckTest] = []
    evaluation_interval = timedelta(minutes=1)
    if node is not None:
        fields = r.mapping(node, "", _FILE_KEYS, required=("tests",)) or {}
        if "evaluation_interval" in fields:
            evaluation_interval = r.duration(fields["evaluation_interval"],
                                              "evaluation_interval") or evaluation_interval
        if "tests" in fields:
            for i, item in _items(r, fields["tests"], "tests"):
                test = _read_test(r, item, f"tests[{i}]", checks)
                if test is not None:
                    tests.append(test)
    if problems:
        raise ConfigError(problems)
    return CheckTestFile(path=path, evaluation_interval=evaluation_interval, tests=tuple(tests))


def _items(r: Reader, node: Node, field: str) -> list[tuple[int, Node]]:
    if not isinstance(node, SequenceNode):
        r.problem(node, field, "expected a list")
        return []
    return list(enumerate(node.value))


def _read_test(r: Reader, node: Node, field: str, checks: Sequence[str] | None
               ) -> CheckTest | None:
    fields = r.mapping(node, field, _TEST_KEYS, required=("input_series", "expect"))
    if fields is None:
        return None
    before = len(r.problems)
    name = (r.string(fields["name"], f"{field}.name") if "name" in fields else None) or field
    interval = timedelta(minutes=1)
    if "interval" in fields:
        interval = r.duration(fields["interval"], f"{field}.interval") or interval
    series = []
    for i, item in _items(r, fields.get("input_series", node), f"{field}.input_series"):
        s = _read_series(r, item, f"{field}.input_series[{i}]")
        if s is not None:
            series.append(s)
    names: tuple[str, ...] = ()
    if "checks" in fields:
        names = r.strings(fields["checks"], f"{field}.checks") or ()
        for name_ in names:
            _known(r, fields["checks"], f"{field}.checks", name_, checks)
    expect = []
    for i, item in _items(r, fields.get("expect", node), f"{field}.expect"):
        e = _read_expectation(r, item, f"{field}.expect[{i}]", checks)
        if e is not None:
            expect.append(e)
    if len(r.problems) > before:
        return None
    return CheckTest(name=name, interval=interval, input_series=tuple(series), checks=names,
                     expect=tuple(expect), position=r.position(node))


def _known(r: Reader, node: Node, field: str, name: str, checks: Sequence[str] | None) -> None:
    from incident.config import unknown_name

    if checks is not None and name not in checks:
        if isinstance(node, SequenceNode):
            node = next((n for n in node.value if getattr(n, "value", None) == name), node)
        r.problem(node, field, unknown_name("check", name, tuple(checks)))


def _read_series(r: Reader, node: Node, field: str) -> InputSeries | None:
    fields = r.mapping(node, field, ("series", "values"), required=("series", "values"))
    if not fields or "series" not in fields or "values" not in fields:
        return None
    text, values = r.string(fields["series"], f"{field}.series"), r.scalar(
        fields["values"], f"{field}.values")
    labels = None
    try:
        labels = series_labels(text) if text is not None else None
    except ValueError as exc:
        r.problem(fields["series"], f"{field}.series", str(exc))
    expanded = None
    try:
        expanded = expand(values) if values is not None else None
    except ValueError as exc:
        r.problem(fields["values"], f"{field}.values", str(exc))
    if labels is None or expanded is None:
        return None
    return InputSeries(labels=labels, values=tuple(expanded))


def _read_expectation(r: Reader, node: Node, field: str, checks: Sequence[str] | None
                      ) -> Expectation | None:
    fields = r.mapping(node, field, _EXPECT_KEYS, required=("at",))
    if not fields or "at" not in fields:
        return None
    at = r.duration(fields["at"], f"{field}.at", allow_zero=True)
    if "incidents" not in fields and "firing" not in fields:
        r.problem(node, field, "expected 'incidents', 'firing' or both")
    incidents = None
    if "incidents" in fields:
        incidents = tuple(x for i, item in _items(r, fields["incidents"], f"{field}.incidents")
                          if (x := _read_incident(r, item, f"{field}.incidents[{i}]", checks)))
    firing = None
    if "firing" in fields:
        firing = tuple(y for i, item in _items(r, fields["firing"], f"{field}.firing")
                       if (y := _read_firing(r, item, f"{field}.firing[{i}]", checks)))
    if at is None:
        return None
    return Expectation(at=at, incidents=incidents, firing=firing, position=r.position(node))


def _labels(r: Reader, fields: dict[str, Node], field: str) -> Labels | None:
    if "labels" not in fields:
        return None
    return Labels(r.string_map(fields["labels"], f"{field}.labels") or {})


def _check_name(r: Reader, fields: dict[str, Node], field: str, checks: Sequence[str] | None
                ) -> str | None:
    if "check" not in fields:
        return None
    name = r.string(fields["check"], f"{field}.check")
    if name is not None:
        _known(r, fields["check"], f"{field}.check", name, checks)
    return name


def _read_incident(r: Reader, node: Node, field: str, checks: Sequence[str] | None
                   ) -> ExpectedIncident | None:
    fields = r.mapping(node, field, _INCIDENT_KEYS, required=("check",))
    if fields is None:
        return None
    check = _check_name(r, fields, field, checks)
    status = Status.OPEN
    if "status" in fields:
        chosen = r.choice(fields["status"], f"{field}.status", ("open", "resolved"), "status")
        status = Status(chosen) if chosen else status
    times: dict[str, timedelta | None] = {}
    for key in ("detected_at", "opened_at", "resolved_at"):
        times[key] = r.duration(fields[key], f"{field}.{key}", allow_zero=True) \
            if key in fields else None
    reopened = r.integer(fields["reopened"], f"{field}.reopened") if "reopened" in fields \
        else None
    if check is None:
        return None
    return ExpectedIncident(check=check, labels=_labels(r, fields, field), status=status,
                            reopened=reopened, **times)


def _read_firing(r: Reader, node: Node, field: str, checks: Sequence[str] | None
                 ) -> ExpectedFiring | None:
    fields = r.mapping(node, field, ("check", "labels", "value"), required=("check",))
    if fields is None:
        return None
    check = _check_name(r, fields, field, checks)
    value = r.number(fields["value"], f"{field}.value") if "value" in fields else None
    if check is None:
        return None
    return ExpectedFiring(check=check, labels=_labels(r, fields, field), value=value)


# ---------------------------------------------------------------- the source

def storage_of(series: Sequence[InputSeries], interval: timedelta,
               origin: datetime = ORIGIN) -> MemoryStorage:
    """The input series as stored samples: value i at origin + i·interval, gaps left out."""
    from incident.sources.promql.storage import MemoryStorage, RawSeries

    merged: dict[Labels, list[tuple[float, float]]] = {}
    step = interval.total_seconds()
    for s in series:
        samples = merged.setdefault(s.labels, [])
        samples.extend((origin.timestamp() + i * step, v)
                       for i, v in enumerate(s.values) if v is not None)
    out = []
    for labels, samples in merged.items():
        samples.sort(key=lambda p: p[0])
        t = np.array([p[0] for p in samples], dtype=np.float64)
        v = np.array([p[1] for p in samples], dtype=np.float64)
        out.append(RawSeries(labels=labels, t=t, v=v))
    return MemoryStorage(out)


# ---------------------------------------------------------------- running


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResult:
    """One test's outcome: the failed expectations, each already worded."""

    name: str
    position: Position
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """No expectation failed."""
        return not self.failures


def run_file(path: str | Path, project: Project) -> list[TestResult]:
    """Parse and run every test in a file against the project's checks."""
    parsed = parse_file(Path(path), str(path), [c.name for c in project.checks])
    return [run_test(test, project, parsed.evaluation_interval) for test in parsed.tests]


def run_test(test: CheckTest, project: Project, evaluation_interval: timedelta) -> TestResult:
    """Run the real engine at every evaluation step up to the last `at`; compare after each run."""
    from incident.engine import Engine
    from incident.notify import Notifier
    from incident.store import Store

    checks = tuple(project.check(n) for n in test.checks) if test.checks else project.checks
    storage = storage_of(test.input_series, test.interval)
    sources = {c.source: StorageSource(c.source, storage) for c in checks}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="incident-checktest-") as tmp:
        # No channels, no routes: a test never notifies anyone.
        settings = dataclasses.replace(project.settings, store=f"sqlite:///{tmp}/test.db",
                                       channels={}, routes=(), maintenance=())
        isolated = dataclasses.replace(project, settings=settings, checks=checks)
        store = Store.connect(settings.store, root=Path(tmp))
        try:
            engine = Engine(isolated, sources, store, Notifier(settings, Path(tmp)))
            for at in _run_times(test, evaluation_interval, isolated, sources):
                engine.run(ORIGIN + at)
                for e in (e for e in test.expect if e.at == at):
                    failures += _compare(e, isolated, store, sources)
        finally:
            store.close()
    return TestResult(name=test.name, position=test.position, failures=tuple(failures))


def _run_times(test: CheckTest, step: timedelta, project: Project,
               sources: dict[str, StorageSource]) -> list[timedelta]:
    """0, step, 2·step … up to the last expectation, plus every expectation's own time.

    Only the runs that change an incident, and the expectations' times, when the grid is the
    checks' own (see the module docstring).
    """
    from incident.backtest import backtest
    from incident.errors import SourceError
    from incident.model import NoData

    last = max((e.at for e in test.expect), default=timedelta(0))
    ats = {e.at for e in test.expect}
    every_step = sorted({step * i for i in range(int(last / step) + 1)} | ats)
    if any(c.every != step or c.no_data is NoData.ALERT for c in project.checks) \
            or any(at % step for at in ats):
        return every_step
    reopen = project.settings.reopen_window
    try:
        changed = {t - ORIGIN for c in project.checks for t in
                   backtest(c, sources[c.source], ORIGIN, ORIGIN + last, reopen).changed_at}
    except SourceError:  # a query the engine reports as the check's error: let it show
        return every_step
    return sorted(changed | ats)


def _compare(e: Expectation, project: Project, store: Any, sources: dict[str, StorageSource]
             ) -> list[str]:
    out = []
    if e.incidents is not None:
        got = [_actual_incident(i, project) for i in store.list(statuses=None, limit=100000)]
        got.sort(key=lambda x: (x["opened_at"], x["fingerprint"]))
        missing, extra = _match(list(e.incidents), got, _incident_matches)
        if missing or extra:
            out.append(_difference(e, "incidents", [_describe_expected(x) for x in e.incidents],
                                   [_describe_actual(x) for x in got]))
    if e.firing is not None:
        fired = _actual_firing(e.at, project, sources)
        missing, extra = _match(list(e.firing), fired, _firing_matches)
        if missing or extra:
            out.append(_difference(e, "firing", [_describe_firing(x.check, x.labels, x.value)
                                                 for x in e.firing],
                                   [_describe_firing(c, lb, v) for c, lb, v in fired]))
    return out


def _match(expected: list[Any], got: list[Any], same: Any) -> tuple[list[Any], list[Any]]:
    """Pair each expectation with the first unpaired actual it matches; the leftovers."""
    left = list(got)
    missing = []
    for x in expected:
        hit = next((g for g in left if same(x, g)), None)
        if hit is None:
            missing.append(x)
        else:
            left.remove(hit)
    return missing, left


def _actual_incident(incident: Incident, project: Project) -> dict[str, Any]:
    check = project.check(incident.check or "")
    status = Status.RESOLVED if incident.status is Status.RESOLVED else Status.OPEN
    return {
        "check": check.name,
        "labels": Labels({k: incident.labels.get(k, "") for k in check.group_by}),
        "fingerprint": incident.fingerprint,
        "status": status,
        "detected_at": incident.detected_at - ORIGIN,
        "opened_at": incident.opened_at - ORIGIN,
        "resolved_at": incident.resolved_at - ORIGIN if incident.resolved_at else None,
        "reopened": incident.reopened,
    }


def _incident_matches(x: ExpectedIncident, g: dict[str, Any]) -> bool:
    return (x.check == g["check"] and (x.labels is None or x.labels == g["labels"])
            and x.status is g["status"]
            and all(getattr(x, k) is None or getattr(x, k) == g[k]
                    for k in ("detected_at", "opened_at", "resolved_at", "reopened")))


def _actual_firing(at: timedelta, project: Project, sources: dict[str, StorageSource]
                   ) -> list[tuple[str, Labels, float]]:
    """The series each check's detector finds firing at `at`, over the window the engine reads."""
    from incident.detectors import detect, inputs
    from incident.engine import window

    now = ORIGIN + at
    out = []
    for check in project.checks:
        start, end = window(check, now)
        # The detector's own queries (a volume guard's `total`, burn_rate's) too, as the engine.
        data = inputs.combine({
            name: sources[check.source].query_range(query, start, end, check.every)
            for name, query in inputs.queries(check.query, check.detector).items()})
        out += [(check.name, f.labels, f.value)
                for f in detect(data, check.detector, now) if f.active]
    return out


def _firing_matches(x: ExpectedFiring, g: tuple[str, Labels, float]) -> bool:
    check, labels, value = g
    close = x.value is None or (math.isnan(x.value) and math.isnan(value)) or \
        abs(x.value - value) <= EPSILON * max(1.0, abs(x.value))
    return x.check == check and (x.labels is None or x.labels == labels) and close


def _when(t: timedelta) -> str:
    return format_duration(t)


def _name(check: str, labels: Labels | None) -> str:
    return check + (str(labels) if labels else "")


def _describe_expected(x: ExpectedIncident) -> str:
    parts = [_name(x.check, x.labels), x.status.value]
    parts += [f"{k}={_when(getattr(x, k))}" for k in ("detected_at", "opened_at", "resolved_at")
              if getattr(x, k) is not None]
    if x.reopened is not None:
        parts.append(f"reopened={x.reopened}")
    return " ".join(parts)


def _describe_actual(g: dict[str, Any]) -> str:
    parts = [_name(g["check"], g["labels"]), g["status"].value,
             f"detected_at={_when(g['detected_at'])}", f"opened_at={_when(g['opened_at'])}"]
    if g["resolved_at"] is not None:
        parts.append(f"resolved_at={_when(g['resolved_at'])}")
    parts.append(f"reopened={g['reopened']}")
    return " ".join(parts)


def _describe_firing(check: str, labels: Labels | None, value: float | None) -> str:
    return _name(check, labels) + (f" value={value:g}" if value is not None else "")


def _difference(e: Expectation, what: str, expected: list[str], got: list[str]) -> str:
    lines = [f"at {_when(e.at)} ({e.position}): {what} differ", "  expected:"]
    lines += [f"    {x}" for x in expected] or ["    (none)"]
    lines.append("  got:")
    lines += [f"    {x}" for x in got] or ["    (none)"]
    return "\n".join(lines)


def render(path: str, results: Sequence[TestResult]) -> str:
    """promtool-style text: the file, then PASS or FAIL per test with each failure indented."""
    lines = [path]
    for result in results:
        lines.append(f"  {'PASS' if result.passed else 'FAIL'}  {result.name}")
        for failure in result.failures:
            lines += ["        " + line for line in failure.splitlines()]
    failed = sum(not r.passed for r in results)
    lines.append(f"  {len(results)} test{'s' * (len(results) != 1)}, "
                 + (f"{failed} failed" if failed else "all passed"))
    return "\n".join(lines)


def results_json(path: str, results: Sequence[TestResult]) -> dict[str, Any]:
    """One file's results for --json: each test passed or not, with its failures' text."""
    return {"file": path, "passed": all(r.passed for r in results),
            "tests": [{"name": r.name, "position": str(r.position), "passed": r.passed,
                       "failures": list(r.failures)} for r in results]}


__all__ = [
    "CheckTest", "CheckTestFile", "Expectation", "ExpectedFiring", "ExpectedIncident",
    "InputSeries", "StorageSource", "TestResult", "expand", "parse_file", "render", "results_json",
    "run_file",
    "run_test", "series_labels", "storage_of",
]
