"""A Prometheus server, read through prometheus-api-client (the only module that imports it)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from incident.errors import QueryError, SourceError
from incident.model import Labels, SourceSpec
from incident.redaction import redact_url
from incident.sources import frame, step_grid

if TYPE_CHECKING:
    import pandas as pd
    from prometheus_api_client import PrometheusConnect

_STATUS = re.compile(r"HTTP Status Code (\d+) \((.*)\)$", re.DOTALL)


class PrometheusSource:
    """Range and instant queries against one Prometheus server's HTTP API."""

    def __init__(self, spec: SourceSpec) -> None:
        assert spec.url is not None
        self.name = spec.name
        self._url = spec.url
        self._shown = redact_url(spec.url)  # errors reach output, the store and pages
        self._timeout = spec.timeout.total_seconds()
        self._headers = dict(spec.headers)
        self._client: PrometheusConnect | None = None

    def _connect(self) -> PrometheusConnect:
        if self._client is None:
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            # One quick retry on a refused connection or a 502/503/504, no more: cron runs
            # every minute, and a long retry ladder would overlap the next run.
            retry = Retry(total=1, connect=1, read=0, status=1, backoff_factor=0.2,
                          status_forcelist=(502, 503, 504), raise_on_status=False)
            self._client = PrometheusConnect(url=self._url, headers=self._headers or None,
                                             retry=retry, timeout=self._timeout)
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests
        from prometheus_api_client import PrometheusApiClientException

        try:
            return fn(*args, **kwargs)
        except PrometheusApiClientException as exc:
            raise self._http_error(str(exc)) from None
        except requests.exceptions.Timeout:
            raise SourceError(self.name, f"{what} timed out after {self._timeout:g}s "
                                         f"({self._shown})") from None
        except requests.exceptions.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
            raise SourceError(self.name, f"{reason}: {self._shown} is unreachable") from None
        except requests.exceptions.RequestException as exc:
            raise SourceError(self.name, f"{what} failed: {type(exc).__name__}") from None
        except ValueError as exc:  # a 200 whose body is not Prometheus JSON
            raise SourceError(self.name, f"{self._shown} did not answer like Prometheus: {exc}"
                              ) from None

    def _http_error(self, text: str) -> SourceError:
        m = _STATUS.search(text)
        if not m:
            return SourceError(self.name, text)
        status, body = int(m.group(1)), m.group(2)
        message = body
        try:
            raw = eval_bytes_repr(body)
            message = json.loads(raw).get("error", raw)
        except (ValueError, SyntaxError):
            pass
        if status in (400, 422):
            return QueryError(self.name, f"Prometheus rejected the query: {message}")
        return SourceError(self.name, f"HTTP {status} from {self._shown}: {message}"[:500])

    def query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                    ) -> pd.DataFrame:
        """The query over [start, end] at `step`, one column per returned series."""
        result = self._call("query", self._connect().custom_query_range, query,
                            start_time=start, end_time=end, step=f"{step.total_seconds():g}")
        grid = step_grid(start, end, step)
        series = []
        for item in result:
            values = np.full(len(grid), np.nan)
            points = np.array([(float(t), float(v)) for t, v in item["values"]]).reshape(-1, 2)
            slots = np.rint((points[:, 0] - grid[0]) / step.total_seconds()).astype(int)
            keep = (slots >= 0) & (slots < len(grid))
            values[slots[keep]] = points[keep, 1]
            series.append((Labels(item["metric"]), values))
        return frame(grid, series)

    def api_query(self, query: str, at: datetime) -> dict[str, Any]:
        """Prometheus's own `data` for an instant query."""
        result = self._call("query", self._connect().custom_query, query,
                            params={"time": f"{at.timestamp():.3f}"})
        return {"resultType": _result_type(result), "result": result}

    def api_query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                        ) -> dict[str, Any]:
        """Prometheus's own `data` for a range query."""
        result = self._call("query", self._connect().custom_query_range, query,
                            start_time=start, end_time=end, step=f"{step.total_seconds():g}")
        return {"resultType": "matrix", "result": result}


def _result_type(result: Any) -> str:
    """prometheus-api-client hands back only `result`; its shape tells the type."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return "string" if isinstance(result[1], str) and not _is_number(result[1]) else "scalar"
    if result and isinstance(result, list) and "values" in result[0]:
        return "matrix"
    return "vector"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def eval_bytes_repr(text: str) -> str:
    """The text inside the client's `b'…'` repr of a response body."""
    import ast

    value = ast.literal_eval(text)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
