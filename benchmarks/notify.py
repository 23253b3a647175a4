"""1,000 notifications to a receiver that answers in 50 ms: wall time and throughput,
sequential (one send at a time) against concurrent delivery (a pool of senders).

Run:  python benchmarks/notify.py [--n 1000] [--delay 0.05] [--workers 1,8,32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from incident.config import load_project
from incident.model import Envelope
from incident.notify import Notifier
from incident.notify.pipeline import Pipeline
from incident.store import Store
from incident.testing import HTTPReceiver

NOW = datetime(2026, 11, 2, tzinfo=UTC)


def run(n: int, delay: float, workers: int) -> tuple[float, int]:
    """Enqueue n notifications (one per incident) and deliver them all; (seconds, arrived)."""
    with tempfile.TemporaryDirectory() as tmp, HTTPReceiver() as rx:
        rx.delay = delay
        root = Path(tmp)
        (root / "incident.yaml").write_text(
            f'sources:\n  local: {{type: file, path: data/}}\nchannels:\n  oncall: "{rx.url()}"\n'
            f"routes:\n  - notify: [oncall]\n"
            f"delivery: {{rate_limit: {n * 2}/1m, group_over: {n * 2}}}\n")
        project = load_project(root, {})
        with Store.connect(project.settings.store, root=root) as store:
            from incident.model import Severity

            ids = []
            for i in range(n):
                incident, _ = store.open_incident(
                    fingerprint=f"bench-{i}", check=None, title=f"bench {i}",
                    severity=Severity.HIGH, labels={}, runbook=None, detected_at=NOW, at=NOW,
                    value=None, reopen_window=NOW - NOW, actor="bench")
                ids.append(incident.id)
            store.enqueue([Envelope(incident_id=i, event="opened", event_key="opened",
                                    channel="oncall", title=f"[HIGH] OPENED #{i}: bench",
                                    body="bench", severity="high") for i in ids], at=NOW)
            pipeline = Pipeline(project, store, Notifier(project.settings, root),
                                concurrency=workers)
            start = time.perf_counter()
            pipeline.deliver(NOW)
            seconds = time.perf_counter() - start
            return seconds, len(rx.received)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--workers", default="1,8,32")
    args = parser.parse_args()
    print(f"{args.n} notifications, receiver answers in {args.delay * 1000:.0f} ms")
    print(f"{'delivery':<22}{'wall s':>9}{'msg/s':>9}{'arrived':>9}")
    for w in (int(x) for x in args.workers.split(",")):
        seconds, arrived = run(args.n, args.delay, w)
        name = "sequential" if w == 1 else f"concurrent ({w} senders)"
        print(f"{name:<22}{seconds:>9.2f}{arrived / seconds:>9.1f}{arrived:>9}")


if __name__ == "__main__":
    main()
