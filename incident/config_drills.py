"""drills/*.yaml → Drill, with the same file:line:col errors as every other config file.

Part of the config layer: it walks nodes that `config.Reader` composed (still the only YAML
reader) and checks every name a scenario uses against the checks, runbooks and channels.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from yaml.nodes import MappingNode, Node, SequenceNode

from incident.config import CHECK_NAME, Reader, is_null, known_zone, unknown_name
from incident.errors import ConfigProblem
from incident.model import (
    FAULT_TYPES,
    Check,
    Drill,
    Expectation,
    ExpectKind,
    Fault,
    Injection,
    Severity,
)

T = TypeVar("T")
_DRILL_KEYS = ("name", "description", "schedule", "timezone", "duration", "inject", "expect",
               "roles", "real_channels")
_INJECT_KEYS = ("check", "metric", "labels", "from", "to", "fault")
_FAULT_KEYS = ("type", "value", "by", "to", "stddev", "seed")
# Which parameters each fault needs; `ramp` takes one of `to` / `by`.
_FAULT_NEEDS: dict[str, tuple[str, ...]] = {
    "set": ("value",), "add": ("value",), "multiply": ("by",), "ramp": (), "drop": (),
    "noise": ("stddev",), "flatline": (),
}
_EXPECT_KEYS: dict[str, tuple[str, ...]] = {
    "incident": ("check", "labels", "within", "severity", "runbook"),
    "notified": ("channel", "check", "labels", "within"),
    "resolved": ("check", "labels", "within"),
    "no_incident": ("check", "labels"),
    "acknowledged": ("check", "labels", "within"),
    "steps": ("check", "labels", "done", "within"),
}


class _Known:
    """The names a scenario may refer to."""

    def __init__(self, checks: Mapping[str, Check], runbooks: Collection[str],
                 channels: Collection[str]) -> None:
        self.checks, self.runbooks, self.channels = checks, runbooks, channels
        self._metrics: set[str] | None = None

    @property
    def metrics(self) -> set[str]:
        """Every metric name the checks' queries (and their detectors' queries) select."""
        if self._metrics is None:
            from incident.sources.promql import PromQLError, metric_names

            texts = [q for c in self.checks.values() for q in (
                c.query, *(getattr(c.detector, k, None) for k in ("good", "total"))) if q]
            self._metrics = set()
            for text in texts:
                try:
                    self._metrics |= metric_names(text)
                except PromQLError:
                    continue  # a query the source rejects is reported when the check runs
        return self._metrics


def load_drills(root: Path, checks: Mapping[str, Check], runbooks: Collection[str],
                channels: Collection[str], timezone: str, problems: list[ConfigProblem]
                ) -> dict[str, Drill]:
    """Every drills/*.yaml (one scenario per file), validated against the project."""
    known = _Known(checks, runbooks, channels)
    drills: dict[str, Drill] = {}
    for path in sorted((root / "drills").glob("*.y*ml")):
        r = Reader(path, str(path.relative_to(root)), problems)
        node = r.compose()
        if node is None or is_null(node):
            continue
        drill = _read_drill(r, node, known, timezone, path)
        if drill is None:
            continue
        if drill.name in drills:
            other = drills[drill.name].path
            r.problem(_value(node, "name") or node, "name",
                      f"duplicate drill name '{drill.name}' (also in "
                      f"{other.relative_to(root) if other else 'another file'})")
            continue
        drills[drill.name] = drill
    return drills


def _value(node: Node, key: str) -> Node | None:
    """The value node of `key` in a mapping node."""
    if isinstance(node, MappingNode):
        return next((v for k, v in node.value if getattr(k, "value", None) == key), None)
    return None


def _read_drill(r: Reader, node: Node, known: _Known, timezone: str, path: Path
                ) -> Drill | None:
    before = len(r.problems)
    fields = r.mapping(node, "", _DRILL_KEYS, required=("name", "duration", "expect"))
    if fields is None:
        return None
    name = r.string(fields["name"], "name") if "name" in fields else None
    if name is not None and not CHECK_NAME.fullmatch(name):
        r.problem(fields["name"], "name", "expected lowercase words and dashes, like db-failure")
    duration = r.duration(fields["duration"], "duration") if "duration" in fields else None
    description = (r.string(fields["description"], "description") or "").strip() \
        if "description" in fields else ""
    schedule = None
    if "schedule" in fields:
        schedule = r.string(fields["schedule"], "schedule")
        if schedule is not None:
            from incident.cron import parse

            try:
                parse(schedule)
            except ValueError as exc:
                r.problem(fields["schedule"], "schedule", str(exc))
    if "timezone" in fields:
        tz = r.string(fields["timezone"], "timezone")
        if tz is not None and not known_zone(tz):
            r.problem(fields["timezone"], "timezone",
                      f"unknown time zone {tz!r} (expected an IANA name like Asia/Shanghai)")
        timezone = tz or timezone
    roles = r.string_map(fields["roles"], "roles") or {} if "roles" in fields else {}
    real: tuple[str, ...] = ()
    if "real_channels" in fields:
        node_rc = fields["real_channels"]
        real = r.strings(node_rc, "real_channels") or ()
        items = node_rc.value if isinstance(node_rc, SequenceNode) else [node_rc]
        for i, (channel, item) in enumerate(zip(real, items, strict=False)):
            if channel not in known.channels:
                r.problem(item, f"real_channels[{i}]",
                          unknown_name("channel", channel, tuple(known.channels)))
    inject = tuple(i for i in _items(r, fields.get("inject"), "inject", _read_injection, known,
                                     duration) if i)
    expect = tuple(e for e in _items(r, fields.get("expect"), "expect", _read_expectation,
                                     known, duration) if e)
    if "expect" in fields and isinstance(fields["expect"], SequenceNode) \
            and not fields["expect"].value:
        r.problem(fields["expect"], "expect", "a drill needs at least one expectation, "
                                              "else it always passes")
    if len(r.problems) > before or name is None or duration is None:
        return None
    return Drill(name=name, description=description, schedule=schedule, timezone=timezone,
                 duration=duration, inject=inject, expect=expect, roles=roles,
                 real_channels=real, path=path)


def _items(r: Reader, node: Node | None, field: str,
           read: Callable[[Reader, Node, str, _Known, timedelta | None], T | None],
           known: _Known, duration: timedelta | None) -> list[T | None]:
    if node is None:
        return []
    if not isinstance(node, SequenceNode):
        r.problem(node, field, "expected a list")
        return []
    return [read(r, item, f"{field}[{i}]", known, duration) for i, item in enumerate(node.value)]


def _read_injection(r: Reader, node: Node, field: str, known: _Known,
                    duration: timedelta | None) -> Injection | None:
    before = len(r.problems)
    fields = r.mapping(node, field, _INJECT_KEYS, required=("from", "to", "fault"))
    if fields is None:
        return None
    check = _check_ref(r, fields, field, known)
    metric = r.string(fields["metric"], f"{field}.metric") if "metric" in fields else None
    if (check is None) == (metric is None) and len(r.problems) == before:
        r.problem(node, field, "expected exactly one of 'check' (its evaluated series) or "
                               "'metric' (a raw series selector of a local source)")
    if metric is not None:
        _selector(r, fields["metric"], f"{field}.metric", metric, known)
    labels = r.string_map(fields["labels"], f"{field}.labels") or {} if "labels" in fields else {}
    start = r.duration(fields["from"], f"{field}.from", allow_zero=True) if "from" in fields \
        else None
    end = r.duration(fields["to"], f"{field}.to") if "to" in fields else None
    if start is not None and end is not None:
        if end <= start:
            r.problem(fields["to"], f"{field}.to", "must be after 'from'")
        elif duration is not None and end > duration:
            r.problem(fields["to"], f"{field}.to", "must be within the drill's duration")
    fault = _read_fault(r, fields["fault"], f"{field}.fault") if "fault" in fields else None
    if len(r.problems) > before or start is None or end is None or fault is None:
        return None
    return Injection(check=check, metric=metric, labels=labels, start=start, end=end,
                     fault=fault, position=r.position(node))


def _selector(r: Reader, node: Node, field: str, text: str, known: _Known) -> None:
    from incident.sources.promql import ast
    from incident.sources.promql.errors import PromQLError
    from incident.sources.promql.parser import parse

    try:
        expr = parse(text)
    except PromQLError as exc:
        r.problem(node, field, f"not a series selector: {exc}")
        return
    if not isinstance(expr, ast.VectorSelector) or expr.offset_ms:
        r.problem(node, field, "expected a plain series selector like "
                               "http_requests_total{code=\"500\"}")
    elif expr.name and expr.name not in known.metrics:
        r.problem(node, field, unknown_name("metric", expr.name, tuple(known.metrics)).replace(
            "unknown metric", "no check reads metric", 1).replace("(known:", "(checks read:", 1))


def _read_fault(r: Reader, node: Node, field: str) -> Fault | None:
    before = len(r.problems)
    fields = r.mapping(node, field, _FAULT_KEYS, required=("type",))
    if fields is None or "type" not in fields:
        return None
    kind = r.choice(fields["type"], f"{field}.type", FAULT_TYPES, "fault type")
    if kind is None:
        return None
    numbers = {k: r.number(fields[k], f"{field}.{k}") for k in ("value", "by", "to", "stddev")
               if k in fields}
    for key in _FAULT_NEEDS[kind]:
        if key not in fields:
            r.problem(node, field, f"a {kind} fault needs '{key}'")
    if kind == "ramp" and ("to" in fields) == ("by" in fields):
        r.problem(node, field, "a ramp fault needs one of 'to' (a level) or 'by' (a factor)")
    extra = [k for k in ("value", "by", "to", "stddev")
             if k in fields and k not in _FAULT_NEEDS[kind] and not (kind == "ramp"
                                                                   and k in ("to", "by"))]
    for key in extra:
        r.problem(fields[key], f"{field}.{key}", f"a {kind} fault does not take '{key}'")
    if numbers.get("stddev") is not None and (numbers["stddev"] or 0) <= 0:
        r.problem(fields["stddev"], f"{field}.stddev", "must be greater than zero")
    seed = r.integer(fields["seed"], f"{field}.seed") if "seed" in fields else 0
    if len(r.problems) > before:
        return None
    return Fault(type=kind, value=numbers.get("value"), by=numbers.get("by"),
                 to=numbers.get("to"), stddev=numbers.get("stddev"), seed=seed or 0)


def _check_ref(r: Reader, fields: dict[str, Node], field: str, known: _Known) -> str | None:
    if "check" not in fields:
        return None
    name = r.string(fields["check"], f"{field}.check")
    if name is not None and name not in known.checks:
        r.problem(fields["check"], f"{field}.check", unknown_name("check", name, tuple(known.checks)))
        return None
    return name


def _read_expectation(r: Reader, node: Node, field: str, known: _Known,
                      duration: timedelta | None) -> Expectation | None:
    if not isinstance(node, MappingNode) or len(node.value) != 1:
        r.problem(node, field, "expected one of " + ", ".join(f"'{k}: {{…}}'" for k in
                                                              _EXPECT_KEYS))
        return None
    key_node, body = node.value[0]
    kind = r.choice(key_node, field, tuple(_EXPECT_KEYS), "expectation")
    if kind is None:
        return None
    field = f"{field}.{kind}"
    before = len(r.problems)
    needs = {"notified": ("channel", "within"), "steps": ("check", "done", "within")}.get(
        kind, ("check",) if kind == "no_incident" else ("check", "within"))
    fields = r.mapping(body, field, _EXPECT_KEYS[kind], required=needs)
    if fields is None:
        return None
    check = _check_ref(r, fields, field, known)
    labels = r.string_map(fields["labels"], f"{field}.labels") or {} if "labels" in fields else {}
    within = r.duration(fields["within"], f"{field}.within") if "within" in fields else None
    if within is not None and duration is not None and within > duration:
        r.problem(fields["within"], f"{field}.within", "must be within the drill's duration")
    severity = None
    if "severity" in fields:
        value = r.choice(fields["severity"], f"{field}.severity",
                         tuple(s.value for s in Severity), "severity")
        severity = Severity(value) if value else None
    runbook = r.string(fields["runbook"], f"{field}.runbook") if "runbook" in fields else None
    if runbook is not None and runbook not in known.runbooks:
        r.problem(fields["runbook"], f"{field}.runbook",
                  unknown_name("runbook", runbook, tuple(known.runbooks)))
    channel = r.string(fields["channel"], f"{field}.channel") if "channel" in fields else None
    if channel is not None and channel not in known.channels:
        r.problem(fields["channel"], f"{field}.channel",
                  unknown_name("channel", channel, tuple(known.channels)))
    steps = r.integer(fields["done"], f"{field}.done", minimum=1) if "done" in fields else None
    if len(r.problems) > before:
        return None
    return Expectation(kind=ExpectKind(kind), check=check, labels=labels, within=within,
                       severity=severity, runbook=runbook, channel=channel, steps=steps,
                       position=r.position(node))
