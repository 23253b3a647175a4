"""A real Prometheus 2.x with a backfilled history, shared by the differential tests."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from promql_history import read_history, write_history

from incident.sources.promql.storage import MemoryStorage
from incident.testing import PrometheusServer


@dataclass(frozen=True)
class Reference:
    """A running Prometheus and the same history in a MemoryStorage."""

    url: str
    storage: MemoryStorage
    first: float  # first sample time, Unix s
    last: float  # last sample time

    def get(self, path: str, **params: object) -> dict[str, Any]:
        """GET an API path on 127.0.0.1 and return its JSON (errors included, not raised)."""
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=30) as r:
                return json.loads(r.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    """Start Prometheus on a free port with the differential history; stop it at teardown."""
    missing = [b for b in ("prometheus", "promtool") if shutil.which(b) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} not installed; in CI every component must be "
                        "present")
        pytest.skip(f"{', '.join(missing)} not installed")
    workdir = tmp_path_factory.mktemp("promql-diff")
    history = workdir / "history.om"
    # Whole hours, an hour in the past: every sample is before now, as backfill needs.
    end = (time.time() // 3600 - 1) * 3600
    first, last = write_history(history, end)
    server = PrometheusServer(workdir / "prom", history)
    server.start()
    try:
        yield Reference(server.url, read_history(history), first, last)
    finally:
        server.stop()
