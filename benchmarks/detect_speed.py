"""Detector throughput: 10,000 series × 1,440 one-minute points, against a numpy floor.

Usage:  python benchmarks/detect_speed.py [--series 10000] [--points 1440] [--runs 3]

For each detector: best-of-runs seconds for one `detect` call over the whole frame, points
per second, and the ratio to the floor: one trailing rolling median over the same array
(pandas' rolling median, the pass the issue measures against), with the anomaly
detector's `window` in rows. A second ratio is to bottleneck's move_median, the faster
implementation of that same pass which the anomaly detector itself uses three times, so
it shows what the detector costs beyond its medians. The anomaly detector runs season
none with a 1h window and memory (a 1d season or window would leave no verdict in one
day of data).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import bottleneck
import numpy as np
import pandas as pd

from incident.detectors import detect
from incident.model import (
    AbsentParams,
    AnomalyParams,
    BurnRateParams,
    BurnWindow,
    ChangeParams,
    Labels,
    ThresholdParams,
)

H = timedelta(hours=1)
WINDOW = 60
PARAMS = {
    "threshold": ThresholdParams(above=3.0, for_=timedelta(minutes=5)),
    "absent": AbsentParams(for_=timedelta(minutes=5)),
    "change": ChangeParams(offset=H, percent=50, for_=timedelta(minutes=5)),
    "anomaly": AnomalyParams(season="none", window=WINDOW * timedelta(minutes=1), memory=H),
    "burn_rate": BurnRateParams(objective=0.99, windows=(
        BurnWindow(long=H, short=timedelta(minutes=5), burn=14.4),
        BurnWindow(long=6 * H, short=timedelta(minutes=30), burn=6))),
}


def best(fn: Callable[[], object], runs: int) -> float:
    """The fastest of `runs` wall times of fn()."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    """Time every detector and the floor, and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=1_440)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    values = rng.normal(1.0, 0.3, size=(args.points, args.series))
    values[rng.random(values.shape) < 0.001] = np.nan
    values[700:720, ::50] += 5  # some episodes, so detectors do their per-episode work
    index = pd.date_range(datetime(2024, 3, 1, tzinfo=UTC), periods=args.points, freq="1min")
    frame = pd.DataFrame(values, index=index,
                         columns=[Labels({"series": str(i)}) for i in range(args.series)])
    ratio = frame.clip(upper=1.0)  # burn_rate reads a success ratio
    now = index[-1].to_pydatetime()
    total = args.series * args.points
    floor = best(lambda: pd.DataFrame(values).rolling(WINDOW, min_periods=WINDOW // 2).median(),
                 args.runs)
    bn_floor = best(lambda: bottleneck.move_median(values, WINDOW, min_count=WINDOW // 2, axis=0),
                    args.runs)
    print(f"{args.series:,} series × {args.points:,} points = {total:,} points; best of {args.runs}\n")
    print(f"| {'detector':<40} | seconds | points/s     | × floor | × bottleneck floor |")
    print(f"|{'-' * 42}|---------|--------------|---------|--------------------|")

    def row(name: str, seconds: float) -> None:
        print(f"| {name:<40} | {seconds:7.2f} | {total / seconds:12,.0f} | {seconds / floor:7.2f} "
              f"| {seconds / bn_floor:18.2f} |")

    row(f"floor: pandas rolling median ({WINDOW})", floor)
    row(f"bottleneck move_median ({WINDOW})", bn_floor)
    for name, params in PARAMS.items():
        data = ratio if name == "burn_rate" else frame
        row(name, best(lambda data=data, params=params: detect(data, params, now), args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
