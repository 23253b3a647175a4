"""Wall time of each sample drill: `incident drill run NAME` on a freshly simulated sample.

Usage:  python benchmarks/drills.py [--runs 3]

Target (issue #7): each sample drill in under 5 seconds, the whole command included. Prints
the median and minimum of the command's wall time, the run's own time (from the scorecard:
the replay without interpreter start-up), and how many scenario minutes were replayed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from check_run import copy_sample


def main() -> None:
    """Simulate the sample once, then time every drill in it."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    incident = [sys.executable, "-m", "incident"]
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_sample(Path(tmp) / "shop")
        subprocess.run([*incident, "--project", str(root), "simulate"], check=True,
                       capture_output=True)
        names = sorted(p.stem for p in (root / "drills").glob("*.yaml"))
        print(f"{'drill':<20} {'scenario':>9} {'median s':>9} {'min s':>7} {'replay s':>9}  result")
        for name in names:
            walls, inner, minutes, status = [], [], 0.0, ""
            for _ in range(args.runs):
                t = time.perf_counter()
                done = subprocess.run([*incident, "--project", str(root), "drill", "run", name,
                                       "--json"], capture_output=True, text=True)
                walls.append(time.perf_counter() - t)
                card = json.loads(done.stdout)[0]
                inner.append(card["elapsed_seconds"])
                status = card["status"]
                start, end = (card[k] for k in ("start", "end"))
                minutes = (datetime.fromisoformat(end) - datetime.fromisoformat(start)
                           ).total_seconds() / 60
            print(f"{name:<20} {minutes:>7.0f}m {statistics.median(walls):>9.2f} "
                  f"{min(walls):>7.2f} {statistics.median(inner):>9.2f}  {status}")


if __name__ == "__main__":
    main()
