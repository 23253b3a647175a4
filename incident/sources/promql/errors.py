"""The one error the PromQL engine raises: bad queries and constructs it does not support."""

from __future__ import annotations


class PromQLError(Exception):
    """A query that cannot be parsed or evaluated; parse errors start with 'line:col: '."""


def position(text: str, pos: int) -> str:
    """The 1-based 'line:col' of byte offset `pos` in `text`, as Prometheus prints it."""
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"{line}:{col}"
