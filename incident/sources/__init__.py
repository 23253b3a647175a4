"""Sources turn a query and a time range into a frame: a UTC time index, one column per series.

Every source answers the same two questions, so one check runs unchanged on any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from incident.model import Labels

if TYPE_CHECKING:
    import pandas as pd


class Source(Protocol):
    """A named place that answers PromQL."""

    name: str

    def query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                    ) -> pd.DataFrame:
        """The query evaluated at start, start+step, … ≤ end; NaN where a series has no point."""
        ...

    def api_query(self, query: str, at: datetime) -> dict[str, Any]:
        """An instant query, as Prometheus's HTTP API returns it under `data`."""
        ...

    def api_query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                        ) -> dict[str, Any]:
        """A range query, as Prometheus's HTTP API returns it under `data`."""
        ...


def step_grid(start: datetime, end: datetime, step: timedelta) -> np.ndarray:
    """Unix seconds start, start+step, … ≤ end, the grid Prometheus's query_range uses."""
    size = step.total_seconds()
    count = int(np.floor((end.timestamp() - start.timestamp()) / size + 1e-9)) + 1
    return start.timestamp() + size * np.arange(max(count, 0), dtype=np.float64)


def frame(grid: np.ndarray, series: Sequence[tuple[Labels, np.ndarray]]) -> pd.DataFrame:
    """A frame on `grid` (Unix seconds) from (labels, values-on-grid) pairs, columns sorted."""
    import pandas as pd

    index = pd.DatetimeIndex(pd.to_datetime(grid, unit="s", utc=True), name="time")
    ordered = sorted(series, key=lambda s: s[0])
    values = (np.column_stack([v for _, v in ordered]) if ordered
              else np.empty((len(grid), 0), dtype=np.float64))
    columns = pd.Index([labels for labels, _ in ordered], dtype=object)
    return pd.DataFrame(values, index=index, columns=columns, dtype=np.float64)


def to_datetime(seconds: float) -> datetime:
    """Unix seconds → aware UTC datetime."""
    return datetime.fromtimestamp(seconds, tz=UTC)
