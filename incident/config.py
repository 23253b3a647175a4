"""The only YAML reader: incident.yaml and checks/*.yaml → a validated, frozen Project.

YAML is composed (safe loader) rather than loaded, so every value keeps its line and
column; every problem in every file is collected and reported together, compiler-style:
`checks/api.yaml:14:7: checks[2].detector.type: unknown detector 'zscor' (known: …)`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from incident.errors import ConfigError, ConfigProblem
from incident.model import (
    DEFAULT_BURN_WINDOWS,
    DEFAULT_LEASE_TTL,
    AbsentParams,
    AnomalyParams,
    BurnRateParams,
    BurnWindow,
    ChangeParams,
    Channel,
    Check,
    DeliveryPolicy,
    DetectorParams,
    Direction,
    Escalation,
    Maintenance,
    NoData,
    Position,
    Project,
    Route,
    Runbook,
    Settings,
    Severity,
    SourceSpec,
    ThresholdParams,
)
from incident.redaction import redact_url
from incident.timeutil import parse_duration

SETTINGS_FILE = "incident.yaml"
DEFAULT_STORE = "sqlite:///.incident/incident.db"
CHECK_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
SOURCE_TYPES = ("file", "prometheus")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token

T = TypeVar("T")


class _Missing:
    """Marks a field that was not given (distinct from an explicit null)."""


MISSING: Any = _Missing()


class Reader:
    """Walks composed YAML nodes, converting values and collecting problems for one file."""

    def __init__(self, file: Path, shown: str, problems: list[ConfigProblem],
                 line_offset: int = 0) -> None:
        self.file = file
        self.shown = shown
        self.problems = problems
        self.offset = line_offset  # YAML that starts below line 1 (runbook front matter)
        # A lenient load: problems that leave the rest usable (a channel whose secret is not in
        # this shell's environment) go here instead of failing the load.
        self.soft: list[ConfigProblem] | None = None

    def problem(self, node: Node | None, field: str, message: str, *, soft: bool = False) -> None:
        line, col = ((node.start_mark.line + 1 + self.offset, node.start_mark.column + 1)
                     if node else (0, 0))
        kept = self.soft if soft and self.soft is not None else self.problems
        kept.append(ConfigProblem(self.shown, line, col, field, message))

    def unset(self, node: Node, env: Mapping[str, str]) -> list[str]:
        """The ${VAR}s (without a default) of a scalar that `env` does not set."""
        if not isinstance(node, ScalarNode) or not isinstance(node.value, str):
            return []
        return [m.group(1) for m in _VAR.finditer(node.value)
                if m.group(1) not in env and m.group(2) is None]

    def position(self, node: Node) -> Position:
        return Position(file=Path(self.shown), line=node.start_mark.line + 1 + self.offset,
                        column=node.start_mark.column + 1)

    def compose(self, text: str | None = None) -> Node | None:
        if text is None:
            try:
                text = self.file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                self.problem(None, "", f"cannot read: {exc}")
                return None
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            what = f"{exc.problem}" + (f" ({exc.context})" if exc.context else "")
            if "expected <block end>" in what or "mapping values are not allowed" in what:
                what += "; check the indentation of this line and the one above"
            self.problems.append(ConfigProblem(
                self.shown, (mark.line + 1 + self.offset) if mark else 0,
                (mark.column + 1) if mark else 0, "", f"invalid YAML: {what}"))
            return None

    def mapping(self, node: Node, field: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, Node] | None:
        """The keys of a mapping node, after reporting unknown, duplicate and missing keys."""
        if not isinstance(node, MappingNode):
            self.problem(node, field, f"expected a mapping, got {_kind(node)}")
            return None
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            sub = f"{field}.{key}" if field else str(key)
            if key is None:
                self.problem(key_node, field, "keys must be plain names")
            elif key in out:
                self.problem(key_node, sub, "duplicate key")
            elif key not in allowed:
                self.problem(key_node, sub, unknown_name("key", key, allowed))
            else:
                out[key] = value_node
        for key in required:
            if key not in out:
                self.problem(node, field, f"missing required key '{key}'")
        return out

    def scalar(self, node: Node, field: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.problem(node, field, f"expected a single value, got {_kind(node)}")
            return None
        return str(node.value)

    def string(self, node: Node, field: str) -> str | None:
        value = self.scalar(node, field)
        if value is not None and node.tag != "tag:yaml.org,2002:str" and is_null(node):
            self.problem(node, field, "expected a string, got null")
            return None
        return value

    def number(self, node: Node, field: str) -> float | None:
        value = self.scalar(node, field)
        if value is None:
            return None
        try:
            if node.tag == "tag:yaml.org,2002:str" and getattr(node, "style", None):
                raise ValueError
            return float(value)
        except ValueError:
            self.problem(node, field, f"expected a number, got {value!r}")
            return None

    def integer(self, node: Node, field: str, minimum: int = 0) -> int | None:
        value = self.scalar(node, field)
        if value is None:
            return None
        if not re.fullmatch(r"-?\d+", value) or int(value) < minimum:
            self.problem(node, field, f"expected a whole number ≥ {minimum}, got {value!r}")
            return None
        return int(value)

    def duration(self, node: Node, field: str, *, allow_zero: bool = False) -> timedelta | None:
        value = self.scalar(node, field)
        if value is None:
            return None
        try:
            delta = parse_duration(value)
        except ValueError:
            self.problem(node, field, f"expected a duration like 30s, 5m, 1h or 7d, got {value!r}")
            return None
        if delta <= timedelta(0) and not (allow_zero and delta == timedelta(0)):
            self.problem(node, field, f"duration must be greater than zero, got {value!r}")
            return None
        return delta

    def choice(self, node: Node, field: str, choices: tuple[str, ...], what: str = "value"
               ) -> str | None:
        value = self.scalar(node, field)
        if value is not None and value not in choices:
            self.problem(node, field, unknown_name(what, value, choices))
            return None
        return value

    def strings(self, node: Node, field: str) -> tuple[str, ...] | None:
        if isinstance(node, ScalarNode) and not is_null(node):
            return (node.value,)
        if not isinstance(node, SequenceNode):
            self.problem(node, field, f"expected a list of strings, got {_kind(node)}")
            return None
        out = []
        for i, item in enumerate(node.value):
            value = self.scalar(item, f"{field}[{i}]")
            if value is not None:
                out.append(value)
        return tuple(out)

    def string_map(self, node: Node, field: str) -> dict[str, str] | None:
        if not isinstance(node, MappingNode):
            self.problem(node, field, f"expected a mapping of names to values, got {_kind(node)}")
            return None
        out: dict[str, str] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, field)
            value = self.scalar(value_node, f"{field}.{key}")
            if key is not None and value is not None:
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                    self.problem(key_node, f"{field}.{key}",
                                 "label names are letters, digits and underscores")
                out[key] = value
        return out

    def expand(self, node: Node, field: str, env: Mapping[str, str]) -> str | None:
        """A string with ${VAR} and ${VAR:-default} taken from the environment."""
        value = self.string(node, field)
        if value is None:
            return None
        missing = self.unset(node, env)
        for name in missing:
            self.problem(node, field,
                         f"environment variable ${{{name}}} is not set "
                         f"(set it, or write ${{{name}:-default}})")
        return None if missing else _VAR.sub(lambda m: env.get(m.group(1), m.group(2) or ""), value)


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if is_null(node):
        return "nothing (null)"
    return repr(node.value)


def is_null(node: Node) -> bool:
    """A YAML null (`~`, `null`, or nothing after the colon)."""
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def unknown_name(what: str, value: str, known: tuple[str, ...]) -> str:
    """"unknown WHAT 'value' (known: …); did you mean '…'?" for a name not in `known`."""
    close = difflib.get_close_matches(value, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown {what} '{value}' (known: {', '.join(sorted(known))}){hint}"


def _headers(r: Reader, node: Node, field: str, env: Mapping[str, str]) -> dict[str, str]:
    """HTTP headers for a source, values expanded like URLs: an unset ${VAR} is an error.

    Not `string_map`: header names have hyphens (X-Scope-OrgID), label names do not.
    """
    if not isinstance(node, MappingNode):
        r.problem(node, field, f"expected a mapping of header names to values, got {_kind(node)}")
        return {}
    out: dict[str, str] = {}
    for key_node, value_node in node.value:
        name = r.scalar(key_node, field)
        if name is None:
            continue
        if not _HEADER_NAME.fullmatch(name):
            r.problem(key_node, f"{field}.{name}", "expected an HTTP header name (letters, digits, "
                                                   "hyphens), like Authorization or X-Scope-OrgID")
            continue
        value = r.expand(value_node, f"{field}.{name}", env)
        if value is not None:
            out[name] = value
    return out


def redact_template(template: str) -> str:
    """A URL as written in incident.yaml, safe to print: ${VAR} kept, defaults and secrets masked."""
    text = template.strip()
    whole = _VAR.fullmatch(text)
    if whole:
        name, default = whole.groups()
        if not default:
            return text
        return f"${{{name}:-{redact_url(default) if '://' in default else '***'}}}"
    # A default inside a longer URL may be a token of its own: never shown.
    return redact_url(_VAR.sub(lambda m: f"${{{m.group(1)}{':-***' if m.group(2) else ''}}}", text))


# ---------------------------------------------------------------- incident.yaml

_SETTINGS_KEYS = ("store", "timezone", "default_source", "sources", "channels", "routes",
                  "reopen_window", "source_failure_limit", "defaults", "delivery", "stakeholders",
                  "maintenance", "runners", "drills")
_DEFAULTS_KEYS = ("every", "lookback", "severity", "no_data", "labels")


def _read_settings(r: Reader, root: Path, env: Mapping[str, str]
                   ) -> tuple[Settings | None, dict[str, Node]]:
    node = r.compose()
    if node is None:
        return None, {}
    problems_before = len(r.problems)
    fields = r.mapping(node, "", _SETTINGS_KEYS, required=("sources",))
    if fields is None:
        return None, {}
    ok = True

    store = DEFAULT_STORE
    if "store" in fields:
        store = r.expand(fields["store"], "store", env) or DEFAULT_STORE
        if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", store):
            r.problem(fields["store"], "store",
                      "expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB")
            ok = False

    timezone = "UTC"
    if "timezone" in fields:
        tz = r.string(fields["timezone"], "timezone")
        if tz is not None and known_zone(tz):
            timezone = tz
        elif tz is not None:
            r.problem(fields["timezone"], "timezone",
                      f"unknown time zone {tz!r} (expected an IANA name like Asia/Shanghai)")
            ok = False

    sources: dict[str, SourceSpec] = {}
    src_node = fields.get("sources")
    if src_node is not None:
        if not isinstance(src_node, MappingNode) or not src_node.value:
            r.problem(src_node, "sources", "expected a mapping of source names to sources")
            ok = False
        else:
            for key_node, value_node in src_node.value:
                name = key_node.value
                spec = _read_source(r, name, value_node, root, env)
                if spec is None:
                    ok = False
                else:
                    sources[name] = spec

    default_source = next(iter(sources), "")
    if "default_source" in fields:
        given = r.string(fields["default_source"], "default_source")
        if given is not None and sources and given not in sources:
            r.problem(fields["default_source"], "default_source",
                      unknown_name("source", given, tuple(sources)))
            ok = False
        default_source = given or default_source

    channels, broken = _read_channels(r, fields.get("channels"), "channels", env)
    ok = ok and not broken

    routes: list[Route] = []
    if "routes" in fields:
        rt_node = fields["routes"]
        if not isinstance(rt_node, SequenceNode):
            r.problem(rt_node, "routes", "expected a list of routes")
            ok = False
        else:
            for i, item in enumerate(rt_node.value):
                route = _read_route(r, f"routes[{i}]", item, channels.keys() | broken)
                if route is None:
                    ok = False
                else:
                    routes.append(route)

    known_channels = channels.keys() | broken
    delivery = DeliveryPolicy()
    if "delivery" in fields:
        delivery = _read_delivery(r, fields["delivery"], root, known_channels) or delivery
    stakeholders: tuple[str, ...] = ()
    if "stakeholders" in fields:
        stakeholders = _channel_refs(r, fields["stakeholders"], "stakeholders",
                                     known_channels) or ()
    maintenance: list[Maintenance] = []
    if "maintenance" in fields:
        mt_node = fields["maintenance"]
        if not isinstance(mt_node, SequenceNode):
            r.problem(mt_node, "maintenance", "expected a list of maintenance windows")
        else:
            for i, item in enumerate(mt_node.value):
                window = _read_maintenance(r, f"maintenance[{i}]", item, timezone)
                if window is not None:
                    maintenance.append(window)

    reopen_window = timedelta(hours=1)
    if "reopen_window" in fields:
        reopen_window = r.duration(fields["reopen_window"], "reopen_window", allow_zero=True) \
            or timedelta(0)
    limit = 3
    if "source_failure_limit" in fields:
        limit = r.integer(fields["source_failure_limit"], "source_failure_limit", minimum=1) or 3
    lease_ttl = DEFAULT_LEASE_TTL
    runners = r.mapping(fields["runners"], "runners", ("lease_ttl",)) if "runners" in fields else None
    if runners and "lease_ttl" in runners:
        lease_ttl = r.duration(runners["lease_ttl"], "runners.lease_ttl") or DEFAULT_LEASE_TTL

    drill_channels: dict[str, Channel] = {}
    drill_fields = r.mapping(fields["drills"], "drills", ("channels",)) if "drills" in fields \
        else None
    if drill_fields and "channels" in drill_fields:
        drill_channels, _ = _read_channels(r, drill_fields["channels"], "drills.channels", env)
        for name, channel in drill_channels.items():
            if name not in known_channels:
                assert channel.position is not None
                r.problems.append(ConfigProblem(
                    r.shown, channel.position.line, channel.position.column,
                    f"drills.channels.{name}", unknown_name("channel", name, tuple(known_channels))))

    if not ok or len(r.problems) > problems_before:
        return None, fields
    return Settings(store=store, timezone=timezone, default_source=default_source,
                    sources=sources, channels=channels, routes=tuple(routes), delivery=delivery,
                    stakeholders=stakeholders, maintenance=tuple(maintenance),
                    reopen_window=reopen_window, source_failure_limit=limit,
                    lease_ttl=lease_ttl, drill_channels=drill_channels), fields


def _read_channels(r: Reader, node: Node | None, field: str, env: Mapping[str, str]
                   ) -> tuple[dict[str, Channel], set[str]]:
    """Channel names → apprise URLs; and the names defined but invalid (reported here once)."""
    channels: dict[str, Channel] = {}
    broken: set[str] = set()
    if node is None:
        return channels, broken
    if not isinstance(node, MappingNode):
        r.problem(node, field, "expected a mapping of channel names to apprise URLs")
        return channels, {""}
    for key_node, value_node in node.value:
        name = key_node.value
        unset = r.unset(value_node, env) if r.soft is not None else []
        if unset:
            # Leniently, a person acking from a shell without the webhook's secret still can:
            # the message waits in the outbox for a run whose environment has it.
            for var in unset:
                r.problem(value_node, f"{field}.{name}", f"environment variable ${{{var}}} is not "
                          f"set here: messages to {name} wait for a run that has it", soft=True)
            channels[name] = Channel(name=name, url="", redacted=redact_template(value_node.value),
                                     position=r.position(value_node), unset=tuple(unset))
            continue
        url = r.expand(value_node, f"{field}.{name}", env)
        if url is not None and "://" not in url:
            r.problem(value_node, f"{field}.{name}",
                      "expected an apprise URL like json://host/path or mailto://…")
            url = None
        if url is None:
            broken.add(name)
            continue
        channels[name] = Channel(name=name, url=url, redacted=redact_template(value_node.value),
                                 position=r.position(value_node))
    return channels, broken


def _read_source(r: Reader, name: str, node: Node, root: Path, env: Mapping[str, str]
                 ) -> SourceSpec | None:
    field = f"sources.{name}"
    fields = r.mapping(node, field, ("type", "url", "path", "timeout", "headers"),
                       required=("type",))
    if fields is None or "type" not in fields:
        return None
    kind = r.choice(fields["type"], f"{field}.type", SOURCE_TYPES, "source type")
    if kind is None:
        return None
    timeout = timedelta(seconds=10)
    if "timeout" in fields:
        timeout = r.duration(fields["timeout"], f"{field}.timeout") or timeout
    if kind == "prometheus":
        if "path" in fields:
            r.problem(fields["path"], f"{field}.path", "a prometheus source takes url, not path")
        if "url" not in fields:
            r.problem(node, field, "missing required key 'url'")
            return None
        url = r.expand(fields["url"], f"{field}.url", env)
        if url is None:
            return None
        if not re.match(r"^https?://[^/\s]+", url):
            r.problem(fields["url"], f"{field}.url",
                      f"expected an http(s) URL like http://127.0.0.1:9090, got {url!r}")
            return None
        headers = _headers(r, fields["headers"], f"{field}.headers", env) if "headers" in fields else {}
        return SourceSpec(name=name, type=kind, url=url.rstrip("/"), timeout=timeout,
                          headers=headers)
    if "url" in fields:
        r.problem(fields["url"], f"{field}.url", "a file source takes path, not url")
    if "path" not in fields:
        r.problem(node, field, "missing required key 'path'")
        return None
    path_text = r.expand(fields["path"], f"{field}.path", env)
    if path_text is None:
        return None
    path = (root / path_text).resolve()
    return SourceSpec(name=name, type=kind, path=path, timeout=timeout)


def _read_route(r: Reader, field: str, node: Node, channels: Collection[str]
                ) -> Route | None:
    fields = r.mapping(node, field, ("name", "match", "match_re", "notify", "repeat", "escalate",
                                     "continue"), required=("notify",))
    if fields is None or "notify" not in fields:
        return None
    match, match_re = _read_matchers(r, fields, field)
    notify = _channel_refs(r, fields["notify"], f"{field}.notify", channels)
    repeat = r.duration(fields["repeat"], f"{field}.repeat") if "repeat" in fields else None
    escalate = None
    if "escalate" in fields:
        esc = r.mapping(fields["escalate"], f"{field}.escalate", ("after", "notify"),
                        required=("after", "notify"))
        if esc and "after" in esc and "notify" in esc:
            after = r.duration(esc["after"], f"{field}.escalate.after")
            targets = _channel_refs(r, esc["notify"], f"{field}.escalate.notify", channels)
            if after is not None and targets is not None:
                escalate = Escalation(after=after, notify=targets)
    go_on = r.choice(fields["continue"], f"{field}.continue", ("true", "false")) \
        if "continue" in fields else "false"
    name = r.string(fields["name"], f"{field}.name") if "name" in fields else ""
    if match is None or match_re is None or notify is None:
        return None
    return Route(match=match, match_re=match_re, notify=notify, repeat=repeat, escalate=escalate,
                 continue_=go_on == "true", name=name or "")


def _read_matchers(r: Reader, fields: dict[str, Node], field: str
                   ) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    """`match` (equality) and `match_re` (fully anchored regular expressions)."""
    match = r.string_map(fields["match"], f"{field}.match") if "match" in fields else {}
    if match and "severity" in match and match["severity"] not in list(Severity):
        r.problem(fields["match"], f"{field}.match.severity",
                  unknown_name("severity", match["severity"], tuple(Severity)))
    match_re = r.string_map(fields["match_re"], f"{field}.match_re") if "match_re" in fields \
        else {}
    for key, pattern in (match_re or {}).items():
        try:
            re.compile(pattern)
        except re.error as exc:
            r.problem(fields["match_re"], f"{field}.match_re.{key}",
                      f"invalid regular expression {pattern!r}: {exc}")
            match_re = None
            break
    return match, match_re


def _read_delivery(r: Reader, node: Node, root: Path, channels: Collection[str]
                   ) -> DeliveryPolicy | None:
    fields = r.mapping(node, "delivery", ("attempts", "backoff", "max_backoff", "fallback",
                                          "rate_limit", "group_over", "templates"))
    if fields is None:
        return None
    d = DeliveryPolicy()
    attempts = r.integer(fields["attempts"], "delivery.attempts", minimum=1) \
        if "attempts" in fields else d.attempts
    backoff = r.duration(fields["backoff"], "delivery.backoff") if "backoff" in fields \
        else d.backoff
    max_backoff = r.duration(fields["max_backoff"], "delivery.max_backoff") \
        if "max_backoff" in fields else d.max_backoff
    fallback = None
    if "fallback" in fields:
        refs = _channel_refs(r, fields["fallback"], "delivery.fallback", channels)
        fallback = refs[0] if refs else None
    limit, window = d.rate_limit, d.rate_window
    if "rate_limit" in fields:
        text = r.scalar(fields["rate_limit"], "delivery.rate_limit") or ""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\S+)\s*", text)
        try:
            limit, window = int(m.group(1)), parse_duration(m.group(2))  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            r.problem(fields["rate_limit"], "delivery.rate_limit",
                      f"expected messages per duration like 30/1m, got {text!r}")
    # group_over: N messages due at once for one channel above this become one digest;
    # 1 (the default) groups any two, a larger N lets small bursts go out one by one.
    group_over = r.integer(fields["group_over"], "delivery.group_over", minimum=1) \
        if "group_over" in fields else d.group_over
    templates = None
    if "templates" in fields:
        given = r.string(fields["templates"], "delivery.templates")
        if given is not None:
            templates = (root / given).resolve()
            if not templates.is_dir():
                r.problem(fields["templates"], "delivery.templates",
                          f"{given!r} is not a directory of templates")
    if None in (attempts, backoff, max_backoff):
        return None
    assert attempts is not None and backoff is not None and max_backoff is not None
    return DeliveryPolicy(attempts=attempts, backoff=backoff, max_backoff=max_backoff,
                          fallback=fallback, rate_limit=limit, rate_window=window,
                          group_over=group_over or d.group_over, templates=templates)


def _read_maintenance(r: Reader, field: str, node: Node, default_tz: str) -> Maintenance | None:
    from incident.cron import parse as parse_cron

    fields = r.mapping(node, field, ("name", "match", "match_re", "schedule", "duration",
                                     "timezone"), required=("name", "schedule", "duration"))
    if fields is None or not {"name", "schedule", "duration"} <= fields.keys():
        return None
    name = r.string(fields["name"], f"{field}.name")
    schedule = r.string(fields["schedule"], f"{field}.schedule")
    try:
        parse_cron(schedule or "")
    except ValueError as exc:
        r.problem(fields["schedule"], f"{field}.schedule", str(exc))
        schedule = None
    duration = r.duration(fields["duration"], f"{field}.duration")
    tz = default_tz
    if "timezone" in fields:
        tz = r.string(fields["timezone"], f"{field}.timezone") or tz
        if not known_zone(tz):
            r.problem(fields["timezone"], f"{field}.timezone",
                      f"unknown time zone {tz!r} (expected an IANA name like Asia/Shanghai)")
            return None
    match, match_re = _read_matchers(r, fields, field)
    if None in (name, schedule, duration, match, match_re):
        return None
    assert name and schedule and duration and match is not None and match_re is not None
    return Maintenance(name=name, schedule=schedule, duration=duration, timezone=tz,
                       match=match, match_re=match_re)


def known_zone(name: str) -> bool:
    """Whether the IANA time zone `name` exists here."""
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return False
    return True


def _channel_refs(r: Reader, node: Node, field: str, channels: Collection[str]
                  ) -> tuple[str, ...] | None:
    names = r.strings(node, field)
    if names is None:
        return None
    for i, name in enumerate(names):
        if name not in channels:
            item = node.value[i] if isinstance(node, SequenceNode) else node
            r.problem(item, f"{field}[{i}]" if isinstance(node, SequenceNode) else field,
                      unknown_name("channel", name, tuple(channels)) if channels
                      else f"unknown channel '{name}' (no channels are defined)")
            return None
    return names


# ---------------------------------------------------------------- runbooks

_RUNBOOK_KEYS = ("title", "checks", "severity", "owner", "reviewed", "review_every", "tags")
_FRONT = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def _read_runbook(path: Path, root: Path, problems: list[ConfigProblem]) -> Runbook | None:
    """runbooks/NAME.md: YAML front matter (positions kept) and the Markdown body's steps."""
    shown = str(path.relative_to(root))
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ConfigProblem(shown, 0, 0, "", f"cannot read: {exc}"))
        return None
    m = _FRONT.match(text)
    if not m:
        problems.append(ConfigProblem(shown, 1, 1, "", "expected YAML front matter between "
                                                       "'---' lines, starting with 'title:'"))
        return None
    r = Reader(path, shown, problems, line_offset=1)
    before = len(problems)
    node = r.compose(m.group(1) or "")
    if node is None or is_null(node):
        if node is not None:
            r.problem(None, "", "the front matter is empty; it needs at least 'title'")
            problems[-1] = ConfigProblem(shown, 1, 1, "", problems[-1].message)
        return None
    fields = r.mapping(node, "", _RUNBOOK_KEYS, required=("title",)) or {}
    title = r.string(fields["title"], "title") if "title" in fields else None
    checks = r.strings(fields["checks"], "checks") if "checks" in fields else ()
    severity = None
    if "severity" in fields:
        chosen = r.choice(fields["severity"], "severity", tuple(Severity), "severity")
        severity = Severity(chosen) if chosen else None
    owner = r.string(fields["owner"], "owner") if "owner" in fields else ""
    reviewed = None
    if "reviewed" in fields:
        value = r.scalar(fields["reviewed"], "reviewed")
        try:
            reviewed = date.fromisoformat(value or "")
        except ValueError:
            r.problem(fields["reviewed"], "reviewed",
                      f"expected a date like 2026-10-01, got {value!r}")
    review_every = r.duration(fields["review_every"], "review_every") \
        if "review_every" in fields else None
    tags = r.strings(fields["tags"], "tags") if "tags" in fields else ()
    if len(problems) > before or title is None:
        return None
    body = text[m.end():]
    from incident.runbooks import parse_steps

    return Runbook(name=path.stem, title=title, path=path, checks=checks or (),
                   severity=severity, owner=owner or "", reviewed=reviewed,
                   review_every=review_every, tags=tags or (), body=body,
                   steps=parse_steps(body), body_line=text[:m.end()].count("\n") + 1)


def load_runbooks(root: Path, problems: list[ConfigProblem]) -> dict[str, Runbook]:
    """Every runbooks/*.md that parses; the problems of the others go to `problems`."""
    out = {}
    for path in sorted((root / "runbooks").glob("*.md")):
        rb = _read_runbook(path, root, problems)
        if rb is not None:
            out[rb.name] = rb
    return out


# ---------------------------------------------------------------- checks

_CHECK_KEYS = ("name", "description", "source", "query", "every", "lookback", "detector",
               "severity", "labels", "runbook", "group_by", "no_data")
DETECTOR_TYPES = ("absent", "anomaly", "burn_rate", "change", "threshold")


def _read_threshold(r: Reader, node: Node, field: str, fields: dict[str, Node]
                    ) -> DetectorParams | None:
    above = r.number(fields["above"], f"{field}.above") if "above" in fields else None
    below = r.number(fields["below"], f"{field}.below") if "below" in fields else None
    clear = r.number(fields["clear"], f"{field}.clear") if "clear" in fields else None
    for_ = r.duration(fields["for"], f"{field}.for", allow_zero=True) if "for" in fields \
        else timedelta(0)
    if "above" not in fields and "below" not in fields:
        r.problem(node, field, "a threshold detector needs 'above' or 'below'")
        return None
    if clear is not None:
        if above is not None and below is not None:
            r.problem(fields["clear"], f"{field}.clear",
                      "'clear' needs a single level: give either 'above' or 'below', not both")
            return None
        if above is not None and clear > above:
            r.problem(fields["clear"], f"{field}.clear",
                      f"with 'above: {above:g}', clear must be at or below {above:g}")
            return None
        if below is not None and clear < below:
            r.problem(fields["clear"], f"{field}.clear",
                      f"with 'below: {below:g}', clear must be at or above {below:g}")
            return None
    if above is not None and below is not None and below >= above:
        # above and below together describe the band outside [below, above]
        r.problem(node, field, f"'below' ({below:g}) must be less than 'above' ({above:g})")
        return None
    if for_ is None or ("above" in fields and above is None) or ("below" in fields and below is None):
        return None
    return ThresholdParams(above=above, below=below, for_=for_, clear=clear)


def _read_absent(r: Reader, node: Node, field: str, fields: dict[str, Node]
                 ) -> DetectorParams | None:
    if "for" not in fields:
        return AbsentParams()
    for_ = r.duration(fields["for"], f"{field}.for")
    return None if for_ is None else AbsentParams(for_=for_)


def _bounded(r: Reader, fields: dict[str, Node], key: str, field: str, *, above: float | None = None,
             at_least: float | None = None, below: float | None = None) -> float | None:
    """A number field checked against its range: > above, ≥ at_least, < below."""
    value = r.number(fields[key], f"{field}.{key}")
    if value is None:
        return None
    ranges = []
    if above is not None:
        ranges.append((value > above, f"greater than {above:g}"))
    if at_least is not None:
        ranges.append((value >= at_least, f"at least {at_least:g}"))
    if below is not None:
        ranges.append((value < below, f"less than {below:g}"))
    failed = [text for ok, text in ranges if not ok]
    if failed:
        r.problem(fields[key], f"{field}.{key}",
                  f"must be {' and '.join(text for _, text in ranges)}, got {value:g}")
        return None
    return value


_VOLUME_KEYS = ("total", "min_events", "significance")


def _read_volume(r: Reader, node: Node, field: str, fields: dict[str, Node], *,
                 counts: bool = False) -> tuple[str | None, float, float | None] | None:
    """The volume guard (`total`, `min_events`, `significance`); None after a problem."""
    before = len(r.problems)
    total = r.string(fields["total"], f"{field}.total") if "total" in fields else None
    if total is not None and not total.strip():
        r.problem(fields["total"], f"{field}.total", "the query is empty")
    min_events = _bounded(r, fields, "min_events", field, at_least=0) \
        if "min_events" in fields else 0.0
    significance = _bounded(r, fields, "significance", field, above=0, below=1) \
        if "significance" in fields else None
    guarded = [k for k in ("min_events", "significance") if k in fields]
    if guarded and total is None and not counts:
        r.problem(fields[guarded[0]], f"{field}.{guarded[0]}",
                  "the volume guard needs 'total': a query giving the events behind each point, "
                  "like sum(increase(orders_total[5m]))")
    if len(r.problems) > before:
        return None
    return total.strip() if total else None, min_events or 0.0, significance


def _direction(r: Reader, fields: dict[str, Node], field: str) -> Direction | None:
    if "direction" not in fields:
        return Direction.BOTH
    chosen = r.choice(fields["direction"], f"{field}.direction", tuple(Direction), "direction")
    return Direction(chosen) if chosen else None


def _read_change(r: Reader, node: Node, field: str, fields: dict[str, Node]
                 ) -> DetectorParams | None:
    before = len(r.problems)
    if "offset" not in fields:
        r.problem(node, field, "a change detector needs 'offset': how far back to compare, "
                               "like 1d or 1w")
    offset = r.duration(fields["offset"], f"{field}.offset") if "offset" in fields else None
    percent = _bounded(r, fields, "percent", field, above=0) if "percent" in fields else None
    delta = _bounded(r, fields, "delta", field, above=0) if "delta" in fields else None
    if "percent" not in fields and "delta" not in fields:
        r.problem(node, field, "a change detector needs 'percent', 'delta' or both")
    direction = _direction(r, fields, field)
    for_ = r.duration(fields["for"], f"{field}.for", allow_zero=True) if "for" in fields \
        else timedelta(0)
    guard = _read_volume(r, node, field, fields)
    if len(r.problems) > before or offset is None or direction is None or for_ is None \
            or guard is None:
        return None
    total, min_events, significance = guard
    return ChangeParams(offset=offset, percent=percent, delta=delta, direction=direction,
                        for_=for_, total=total, min_events=min_events, significance=significance)


_ANOMALY_SEASONS = ("none", "1d", "1w", "auto")


def _read_anomaly(r: Reader, node: Node, field: str, fields: dict[str, Node]
                  ) -> DetectorParams | None:
    before = len(r.problems)
    given: dict[str, Any] = {}
    if "season" in fields:
        given["season"] = r.choice(fields["season"], f"{field}.season", _ANOMALY_SEASONS, "season")
    if "seasons" in fields:
        given["seasons"] = r.integer(fields["seasons"], f"{field}.seasons", minimum=1)
    for key in ("window", "memory", "smooth", "clear_after", "warm_up"):
        if key in fields:
            given[key] = r.duration(fields[key], f"{field}.{key}")
    if "for" in fields:
        given["for_"] = r.duration(fields["for"], f"{field}.for", allow_zero=True)
    if "sensitivity" in fields:
        given["sensitivity"] = _bounded(r, fields, "sensitivity", field, above=0)
    if "novelty" in fields:
        given["novelty"] = _bounded(r, fields, "novelty", field, at_least=0)
    if "min_deviation" in fields:
        given["min_deviation"] = _bounded(r, fields, "min_deviation", field, at_least=0)
    given["direction"] = _direction(r, fields, field)
    guard = _read_volume(r, node, field, fields)
    if len(r.problems) > before or guard is None or None in given.values():
        return None
    given["total"], given["min_events"], given["significance"] = guard
    params = AnomalyParams(**given)
    needed = params.window + max(timedelta(days=1) if params.season == "auto" else timedelta(0),
                                 _SEASON_SPANS[params.season])
    if params.warm_up is not None and params.warm_up < needed:
        r.problem(fields["warm_up"], f"{field}.warm_up",
                  f"warm_up must cover the window plus one season: at least "
                  f"{_span(needed)} here, got {_span(params.warm_up)}")
        return None
    return params


_SEASON_SPANS = {"none": timedelta(0), "1d": timedelta(days=1), "1w": timedelta(weeks=1),
                 "auto": timedelta(days=1)}


def _span(delta: timedelta) -> str:
    from incident.detectors._grid import duration

    return duration(delta)


_BURN_WINDOW_KEYS = ("long", "short", "burn", "severity")


def _read_burn_rate(r: Reader, node: Node, field: str, fields: dict[str, Node]
                    ) -> DetectorParams | None:
    before = len(r.problems)
    if "objective" not in fields:
        r.problem(node, field, "a burn_rate detector needs 'objective', like 0.999")
    objective = _bounded(r, fields, "objective", field, above=0, below=1) \
        if "objective" in fields else None
    period = r.duration(fields["period"], f"{field}.period") if "period" in fields \
        else timedelta(days=30)
    windows: tuple[BurnWindow, ...] = DEFAULT_BURN_WINDOWS
    if "windows" in fields:
        windows = _read_burn_windows(r, fields["windows"], f"{field}.windows") or ()
    good = r.string(fields["good"], f"{field}.good") if "good" in fields else None
    if good is not None and not good.strip():
        r.problem(fields["good"], f"{field}.good", "the query is empty")
    if "good" in fields and "total" not in fields:
        r.problem(fields["good"], f"{field}.good",
                  "'good' needs 'total': give both queries, or neither and a ratio 'query'")
    guard = _read_volume(r, node, field, fields, counts=True)
    if guard is not None and ("min_events" in fields or "significance" in fields) \
            and guard[0] is None:
        key = "min_events" if "min_events" in fields else "significance"
        r.problem(fields[key], f"{field}.{key}",
                  "the volume guard needs event counts: give 'total' (and 'good')")
    if period is not None and objective is not None:
        for i, pair in enumerate(windows):
            if pair.long > period:
                r.problem(fields.get("windows", node), f"{field}.windows[{i}].long",
                          f"window {_span(pair.long)} is longer than the SLO period "
                          f"{_span(period)}")
    if len(r.problems) > before or objective is None or period is None or guard is None:
        return None
    total, min_events, significance = guard
    return BurnRateParams(objective=objective, period=period, windows=windows,
                          good=good.strip() if good else None, total=total,
                          min_events=min_events, significance=significance)


def _read_burn_windows(r: Reader, node: Node, field: str) -> tuple[BurnWindow, ...] | None:
    if not isinstance(node, SequenceNode) or not node.value:
        r.problem(node, field, "expected a list of {long, short, burn, severity} window pairs")
        return None
    out = []
    for i, item in enumerate(node.value):
        sub = f"{field}[{i}]"
        fields = r.mapping(item, sub, _BURN_WINDOW_KEYS, required=("long", "short", "burn"))
        if fields is None or any(k not in fields for k in ("long", "short", "burn")):
            continue
        long = r.duration(fields["long"], f"{sub}.long")
        short = r.duration(fields["short"], f"{sub}.short")
        burn = _bounded(r, fields, "burn", sub, above=0)
        severity = None
        if "severity" in fields:
            chosen = r.choice(fields["severity"], f"{sub}.severity", tuple(Severity), "severity")
            if chosen is None:
                continue
            severity = Severity(chosen)
        if long is None or short is None or burn is None:
            continue
        if short >= long:
            r.problem(fields["short"], f"{sub}.short",
                      f"the short window must be shorter than the long one ({_span(long)})")
            continue
        out.append(BurnWindow(long=long, short=short, burn=burn, severity=severity))
    return tuple(out) if len(out) == len(node.value) else None


def detector_lookback(detector: DetectorParams) -> tuple[timedelta, bool, str] | None:
    """(lookback needed, whether it must be strictly longer, why) for the check-level rule."""
    if isinstance(detector, ChangeParams):
        return detector.offset, True, f"longer than the change detector's offset " \
                                f"({_span(detector.offset)}) so there is a point to compare with"
    if isinstance(detector, AnomalyParams):
        from incident.detectors.anomaly import history

        need = history(detector)
        return need, False, f"at least {_span(need)}: the anomaly detector's warm-up, memory and " \
                     "seasons must fit in it"
    if isinstance(detector, BurnRateParams):
        need = max(p.long for p in detector.windows)
        return need, False, f"at least the longest burn_rate window ({_span(need)})"
    return None


# YAML detector name → (allowed keys, reader). Plain dict literal: YAML never names code.
DETECTORS: dict[str, tuple[tuple[str, ...],
                           Callable[[Reader, Node, str, dict[str, Node]], DetectorParams | None]]] = {
    "threshold": (("type", "above", "below", "for", "clear"), _read_threshold),
    "absent": (("type", "for"), _read_absent),
    "change": (("type", "offset", "percent", "delta", "direction", "for", *_VOLUME_KEYS),
               _read_change),
    "anomaly": (("type", "season", "seasons", "window", "sensitivity", "novelty", "memory",
                 "smooth", "min_deviation", "direction", "for", "clear_after", "warm_up",
                 *_VOLUME_KEYS), _read_anomaly),
    "burn_rate": (("type", "objective", "period", "windows", "good", *_VOLUME_KEYS),
                  _read_burn_rate),
}


def _brings_queries(check: Node) -> bool:
    """True when a check's detector has its own `good`/`total` queries, so `query` may go."""
    if not isinstance(check, MappingNode):
        return False
    detector = next((v for k, v in check.value if getattr(k, "value", None) == "detector"), None)
    keys = {getattr(k, "value", None) for k, _ in detector.value} \
        if isinstance(detector, MappingNode) else set()
    return {"good", "total"} <= keys


def _read_detector(r: Reader, node: Node, field: str) -> DetectorParams | None:
    if not isinstance(node, MappingNode):
        r.problem(node, field, f"expected a mapping with a 'type', got {_kind(node)}")
        return None
    type_node = next((v for k, v in node.value if getattr(k, "value", None) == "type"), None)
    if type_node is None:
        r.problem(node, field, f"missing required key 'type' (known: {', '.join(DETECTORS)})")
        return None
    kind = r.choice(type_node, f"{field}.type", tuple(DETECTORS), "detector")
    if kind is None:
        return None
    allowed, read = DETECTORS[kind]
    fields = r.mapping(node, field, allowed)
    return None if fields is None else read(r, node, field, fields)


class _Defaults:
    def __init__(self) -> None:
        self.every = timedelta(minutes=1)
        self.lookback = timedelta(hours=1)
        self.severity = Severity.MEDIUM
        self.no_data = NoData.KEEP
        self.labels: dict[str, str] = {}


def _read_defaults(r: Reader, node: Node) -> _Defaults:
    d = _Defaults()
    fields = r.mapping(node, "defaults", _DEFAULTS_KEYS) or {}
    if "every" in fields:
        d.every = r.duration(fields["every"], "defaults.every") or d.every
    if "lookback" in fields:
        d.lookback = r.duration(fields["lookback"], "defaults.lookback") or d.lookback
    if "severity" in fields:
        d.severity = Severity(r.choice(fields["severity"], "defaults.severity", tuple(Severity),
                                       "severity")
                              or d.severity)
    if "no_data" in fields:
        d.no_data = NoData(r.choice(fields["no_data"], "defaults.no_data", tuple(NoData))
                           or d.no_data)
    if "labels" in fields:
        d.labels = r.string_map(fields["labels"], "defaults.labels") or {}
    return d


def _read_check(r: Reader, node: Node, field: str, settings: Settings | None,
                runbooks: Collection[str], defaults: _Defaults) -> Check | None:
    own_queries = _brings_queries(node)
    fields = r.mapping(node, field, _CHECK_KEYS,
                       required=("name", "detector") if own_queries else ("name", "query", "detector"))
    if fields is None:
        return None
    before = len(r.problems)
    name = r.string(fields["name"], f"{field}.name") if "name" in fields else None
    if name is not None and not CHECK_NAME.fullmatch(name):
        r.problem(fields["name"], f"{field}.name",
                  f"check names are lowercase words and dashes, like api-success-rate; got {name!r}")
    query = r.string(fields["query"], f"{field}.query") if "query" in fields \
        else ("" if own_queries else None)
    if query is not None and not query.strip() and "query" in fields:
        r.problem(fields["query"], f"{field}.query", "the query is empty")
    detector = _read_detector(r, fields["detector"], f"{field}.detector") \
        if "detector" in fields else None
    source = settings.default_source if settings else ""
    if "source" in fields:
        source = r.string(fields["source"], f"{field}.source") or source
        if settings is not None and source not in settings.sources:
            r.problem(fields["source"], f"{field}.source",
                      unknown_name("source", source, tuple(settings.sources)))
    every = r.duration(fields["every"], f"{field}.every") if "every" in fields else defaults.every
    lookback = r.duration(fields["lookback"], f"{field}.lookback") if "lookback" in fields \
        else defaults.lookback
    severity = defaults.severity
    if "severity" in fields:
        chosen = r.choice(fields["severity"], f"{field}.severity", tuple(Severity), "severity")
        severity = Severity(chosen) if chosen else severity
    labels = dict(defaults.labels)
    if "labels" in fields:
        labels.update(r.string_map(fields["labels"], f"{field}.labels") or {})
    runbook = None
    if "runbook" in fields:
        runbook = r.string(fields["runbook"], f"{field}.runbook")
        if runbook is not None and runbook not in runbooks:
            r.problem(fields["runbook"], f"{field}.runbook",
                      unknown_name("runbook", runbook, tuple(runbooks)) if runbooks
                      else f"unknown runbook '{runbook}' (runbooks/ has no *.md files)")
    group_by: tuple[str, ...] = ()
    if "group_by" in fields:
        group_by = r.strings(fields["group_by"], f"{field}.group_by") or ()
    no_data = defaults.no_data
    if "no_data" in fields:
        chosen = r.choice(fields["no_data"], f"{field}.no_data", tuple(NoData), "no_data rule")
        no_data = NoData(chosen) if chosen else no_data
    if every and lookback and lookback < every:
        r.problem(fields.get("lookback", node), f"{field}.lookback",
                  "lookback must be at least one step ('every')")
    hold = getattr(detector, "for_", timedelta(0))
    if lookback and hold and lookback <= hold:
        r.problem(fields.get("lookback", node), f"{field}.lookback",
                  "lookback must be longer than the detector's 'for' so the check can fire")
    need = detector_lookback(detector) if detector is not None else None
    if lookback and need and (lookback <= need[0] if need[1] else lookback < need[0]):
        r.problem(fields.get("lookback", node), f"{field}.lookback", f"lookback must be {need[2]}")
    description = ""
    if "description" in fields:
        description = r.string(fields["description"], f"{field}.description") or ""
    remote = settings is not None and source in settings.sources \
        and settings.sources[source].type == "prometheus"
    queries = [("query", fields.get("query"), query)]
    if isinstance(fields.get("detector"), MappingNode):
        queries += [(f"detector.{k.value}", v, v.value) for k, v in fields["detector"].value
                    if isinstance(k, ScalarNode) and k.value in ("good", "total")
                    and isinstance(v, ScalarNode)]
    for key, query_node, text in queries:
        if query_node is not None and text and text.strip():
            _promql(r, query_node, f"{field}.{key}", text, remote)
    if len(r.problems) > before or None in (name, query, detector, every, lookback):
        return None
    assert name is not None and query is not None and detector is not None
    assert every is not None and lookback is not None
    return Check(name=name, description=description.strip(), source=source, query=query.strip(),
                 every=every, lookback=lookback, detector=detector, severity=severity,
                 labels=labels, runbook=runbook, group_by=group_by, no_data=no_data,
                 position=r.position(node))


def _promql(r: Reader, node: Node, field: str, text: str, remote: bool) -> None:
    """A query the local PromQL parser rejects is a config problem, not an error every run.

    On a Prometheus source, what the local engine does not support (the @ modifier, native
    histogram functions) is Prometheus's to judge; syntax and type errors are the same there.
    """
    from incident.sources.promql.errors import PromQLError
    from incident.sources.promql.parser import parse

    try:
        parse(text.strip())
    except PromQLError as exc:
        message = str(exc)
        if "unsupported: " in message:
            if not remote:
                r.problem(node, field, f"the local source does not support this PromQL: {message}")
            return
        r.problem(node, field, f"not valid PromQL: {message}")


def load_project(root: Path, env: Mapping[str, str] | None = None, *, drills: bool = True,
                 lenient: bool = False) -> Project:
    """Read and validate a whole project directory; ConfigError lists every problem found.

    Without `drills`, drills/ is not read: a mistake in a drill must never stop `incident
    check` from watching production, and the cron path need not parse scenarios.

    With `lenient`, a mistake in a check file or a runbook leaves out only what it breaks
    (the check, or the runbook's steps) and the project carries the problems: one typo must
    not stop all monitoring, nor keep people from acknowledging incidents. Problems in
    incident.yaml still fail: without it nothing can run.
    """
    env = os.environ if env is None else env
    root = root.resolve()
    problems: list[ConfigProblem] = []
    settings_file = root / SETTINGS_FILE
    if not settings_file.is_file():
        raise ConfigError([ConfigProblem(
            SETTINGS_FILE, 0, 0, "",
            f"not found in {root}: run inside a project, or pass --project DIR "
            "or set $INCIDENT_PROJECT")])
    r = Reader(settings_file, SETTINGS_FILE, problems)
    soft: list[ConfigProblem] = []
    if lenient:
        r.soft = soft
    settings, settings_fields = _read_settings(r, root, env)
    defaults = _read_defaults(r, settings_fields["defaults"]) if "defaults" in settings_fields \
        else _Defaults()

    runbooks = load_runbooks(root, problems)
    runbook_files = {p.stem for p in (root / "runbooks").glob("*.md")}
    checks: list[Check] = []
    seen: dict[str, Position] = {}
    for path in sorted((root / "checks").glob("*.y*ml")):
        cr = Reader(path, str(path.relative_to(root)), problems)
        node = cr.compose()
        if node is None or is_null(node):
            continue
        items = [(f"checks[{i}]", n) for i, n in enumerate(node.value)] \
            if isinstance(node, SequenceNode) else [("check", node)]
        for field, item in items:
            check = _read_check(cr, item, field, settings, runbook_files, defaults)
            if check is None:
                continue
            if check.name in seen:
                name_node = next(v for k, v in item.value if k.value == "name")
                cr.problem(name_node, f"{field}.name",
                           f"duplicate check name '{check.name}' (first defined at {seen[check.name]})")
                continue
            assert check.position is not None
            seen[check.name] = check.position
            checks.append(check)
    if lenient:
        _raise([p for p in problems if str(p.file) == SETTINGS_FILE], settings)
        assert settings is not None
        return Project(root=root, settings=settings, checks=tuple(checks), runbooks=runbooks,
                       problems=_in_order(soft + problems))
    _raise(problems, settings)
    assert settings is not None
    if not drills:
        return Project(root=root, settings=settings, checks=tuple(checks), runbooks=runbooks)
    from incident.config_drills import load_drills

    # Drills are read once the checks they name are valid, so no error is reported twice.
    scenarios = load_drills(root, {c.name: c for c in checks}, runbooks.keys() | runbook_files,
                            settings.channels.keys(), settings.timezone, problems)
    _raise(problems, settings)
    return Project(root=root, settings=settings, checks=tuple(checks), runbooks=runbooks,
                   drills=scenarios)


def _raise(problems: list[ConfigProblem], settings: Settings | None) -> None:
    """ConfigError with every problem, grouped by file in the order files were read."""
    if problems or settings is None:
        raise ConfigError(_in_order(problems))


def _in_order(problems: list[ConfigProblem]) -> tuple[ConfigProblem, ...]:
    files = list(dict.fromkeys(str(p.file) for p in problems))
    return tuple(sorted(problems, key=lambda p: (files.index(str(p.file)), p.line, p.column)))
