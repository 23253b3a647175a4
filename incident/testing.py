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


class HTTPReceiver:
    """A real HTTP server on 127.0.0.1 that records what apprise's json:// and form:// post.

    `fail` makes it answer 500 (a channel that is down); `delay` makes it slow.
    """

    def __init__(self) -> None:
        import http.server
        import threading

        self.received: list[dict[str, Any]] = []
        self.fail = False
        self.delay = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                import json

                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                if receiver.delay:
                    time.sleep(receiver.delay)
                if receiver.fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                try:
                    payload: Any = json.loads(body)
                except ValueError:
                    payload = body
                with receiver._lock:
                    receiver.received.append({"path": self.path, "body": payload})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str = "/hook", scheme: str = "json") -> str:
        """The apprise URL that posts here (short timeouts, so a down receiver fails fast)."""
        return f"{scheme}://127.0.0.1:{self.port}{path}?cto=2&rto=2"

    def __enter__(self) -> HTTPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class SMTPReceiver:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.port = free_port()  # aiosmtpd's Controller cannot bind port 0 itself
        self._controller: Any = None

    def url(self, to: str = "oncall@shop.example", sender: str = "incident@shop.example") -> str:
        """The apprise mailto:// URL that delivers here."""
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={to}&format=text"

    def __enter__(self) -> SMTPReceiver:
        from email import message_from_bytes

        from aiosmtpd.controller import Controller

        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                receiver.messages.append(message_from_bytes(envelope.content))
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
