"""The embedded default source: recorded series, answered by the local PromQL engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from incident.errors import QueryError, SourceError
from incident.model import SourceSpec
from incident.sources import frame

if TYPE_CHECKING:
    import pandas as pd

    from incident.sources.promql.storage import MemoryStorage


class StorageSource:
    """A Source over series already in memory (check tests, backtests, and FileSource)."""

    def __init__(self, name: str, storage: MemoryStorage) -> None:
        self.name = name
        self.storage = storage

    def data(self) -> MemoryStorage:
        """The stored series (a drill lays raw-metric faults over a copy of them)."""
        return self.storage

    def query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                    ) -> pd.DataFrame:
        """The query on the stored series, evaluated like Prometheus's query_range."""
        result = self._range(query, start, end, step)
        return frame(result.timestamps, result.series)

    def api_query(self, query: str, at: datetime) -> dict[str, Any]:
        """An instant query in Prometheus's HTTP API shape."""
        from incident.sources.promql import PromQLError, evaluate_instant

        try:
            return evaluate_instant(query, self.data(), at.timestamp()).to_api_json()
        except PromQLError as exc:
            raise QueryError(self.name, str(exc)) from None

    def api_query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                        ) -> dict[str, Any]:
        """A range query in Prometheus's HTTP API shape."""
        return self._range(query, start, end, step).to_api_json()

    def _range(self, query: str, start: datetime, end: datetime, step: timedelta) -> Any:
        from incident.sources.promql import PromQLError, evaluate_range

        try:
            return evaluate_range(query, self.data(), start.timestamp(), end.timestamp(),
                                  step.total_seconds())
        except PromQLError as exc:
            raise QueryError(self.name, str(exc)) from None


class FileSource(StorageSource):
    """OpenMetrics and CSV files under one path, read once per process on first use."""

    def __init__(self, spec: SourceSpec) -> None:
        assert spec.path is not None
        self.name = spec.name
        self._path = spec.path
        self._loaded: MemoryStorage | None = None

    def data(self) -> MemoryStorage:
        """The series under the path, read on first use."""
        if self._loaded is None:
            from incident.sources.files import load_series

            if not self._path.exists():
                raise SourceError(self.name, f"{self._path} does not exist "
                                             "(for the sample project: incident simulate)")
            self._loaded = load_series(self._path, source=self.name)
        return self._loaded
