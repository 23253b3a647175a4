"""Honest helpers for tests: real servers on loopback, never fakes of our own code.

`PrometheusServer` backfills history with promtool and runs the distribution's Prometheus
on a free 127.0.0.1 port, as a user's would run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_binary(name: str) -> str | None:
    """Why `name` cannot be used here, or None when it is on PATH."""
    return None if shutil.which(name) else f"{name} is not installed (the test command installs it)"


class PrometheusServer:
    """A real Prometheus with backfilled history, started and stopped on demand."""

    def __init__(self, workdir: Path, history: Path | None = None) -> None:
        self.workdir = workdir
        self.data = workdir / "tsdb"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        if history is not None:
            self.backfill(history)

    def backfill(self, history: Path) -> None:
        """Write OpenMetrics history into the TSDB (only while the server is stopped)."""
        assert self._proc is None, "backfill before start: a running server ignores new blocks"
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                        str(history), str(self.data)], check=True, capture_output=True)

    def start(self, timeout: float = 20.0) -> None:
        """Start on 127.0.0.1 and wait until /-/ready answers."""
        config = self.workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        with (self.workdir / "prometheus.log").open("ab") as log:
            self._proc = subprocess.Popen(
                ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.data}",
                 "--storage.tsdb.retention.time=3650d",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready after {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGTERM)
            self._proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._proc = None

    def log_tail(self) -> str:
        """The last lines Prometheus logged."""
        path = self.workdir / "prometheus.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FrameSource:
    """A Source over one in-memory frame of points: the honest stand-in for recorded data.

    It answers any query with the frame's rows inside the requested grid (the query text
    is ignored), so engine tests can script exact series without a file or a server.
    """

    def __init__(self, name: str, frame: pd.DataFrame) -> None:
        self.name = name
        self.frame = frame

    def query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                    ) -> pd.DataFrame:
        """The frame's rows on the grid start..end, NaN where it has none."""
        import pandas as pd

        grid = pd.date_range(start, end, freq=step, name="time")
        return self.frame.reindex(grid).dropna(axis=1, how="all")

    def api_query(self, query: str, at: datetime) -> dict[str, Any]:
        """Not needed by engine tests."""
        raise NotImplementedError

    def api_query_range(self, query: str, start: datetime, end: datetime, step: timedelta
                        ) -> dict[str, Any]:
        """Not needed by engine tests."""
        raise NotImplementedError
