"""Column types that make SQLite and PostgreSQL behave the same: aware UTC datetimes, JSON text."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


def utc(value: datetime, name: str = "time") -> datetime:
    """`value` converted to UTC; ValueError for a naive datetime, whose zone would be a guess."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {value.isoformat()})")
    return value.astimezone(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL keeps the zone in `timestamptz`. SQLite has no datetime type and
    SQLAlchemy silently drops the zone, so we store naive UTC there (fixed-width text,
    which also sorts and compares correctly) and put UTC back on the way out.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json_default(value: object) -> Any:
    # Timeline data often carries times, durations and enums; anything else is a caller bug.
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON: {value!r}")


def dumps(value: Mapping[str, Any]) -> str:
    """Canonical JSON text: sorted keys, so equal mappings store equal text."""
    return json.dumps(dict(value), sort_keys=True, default=_json_default, ensure_ascii=False)


def normalise(value: Mapping[str, Any]) -> dict[str, Any]:
    """`value` as it will read back from the database: JSON types only."""
    result: dict[str, Any] = json.loads(dumps(value))
    return result


class JSONText(sa.TypeDecorator[Mapping[str, Any]]):
    """A JSON object stored as text: portable, readable with any SQL client."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Mapping[str, Any] | None, dialect: Dialect) -> str | None:
        return None if value is None else dumps(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any]:
        return {} if not value else json.loads(value)
