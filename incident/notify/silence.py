"""Silences: `--match k=v` (equality) and `--match k=~regex`, and whether one mutes an incident."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from incident.model import Route, Silence


def parse_matchers(texts: Sequence[str]) -> tuple[dict[str, str], dict[str, str]]:
    """(equality, regex) matchers from `k=v` / `k=~re` texts; ValueError names a bad one."""
    import re

    match: dict[str, str] = {}
    match_re: dict[str, str] = {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise ValueError(f"--match takes K=V or K=~REGEX, got {text!r}")
        if value.startswith("~"):
            try:
                re.compile(value[1:])
            except re.error as exc:
                raise ValueError(f"--match {text!r}: bad regular expression: {exc}") from None
            match_re[key] = value[1:]
        else:
            match[key] = value
    if not match and not match_re:
        raise ValueError("a silence needs at least one --match")
    return match, match_re


def describe(silence: Silence) -> str:
    """The matchers as people typed them: team=db, service=~api-.*."""
    return ", ".join([f"{k}={v}" for k, v in silence.match.items()]
                     + [f"{k}=~{v}" for k, v in silence.match_re.items()])


def muting(silences: Sequence[Silence], attrs: Mapping[str, str], now: datetime
           ) -> Silence | None:
    """The first silence in force at `now` that matches these attributes."""
    for s in silences:
        if s.active(now) and Route(match=s.match, match_re=s.match_re).matches(attrs):
            return s
    return None
