"""Detection quality on the NAB DEV corpus: our detectors scored beside the published leaderboard.

Usage:  python benchmarks/nab.py [--data DIR] [--scorer FILE] [--per-file]

Each NAB file becomes a one-column frame (rows paired by position on a regular 5-minute
grid, as NAB's README asks for its few duplicate and missing timestamps) and goes through
the same path as `incident checks backtest`: one `detect` call with `now` = the last row,
which for a causal detector is the same as stepping a check through the file. One incident
is one alert, at its `fired` time. The anomaly detector runs with its defaults, the same
configuration for every file: nothing is tuned per file.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from incident.detectors import detect
from incident.model import AnomalyParams, Labels

SHARED = Path("/work/shared")
STEP = pd.Timedelta(minutes=5)
PROFILES = (("standard", "standard"), ("reward_low_FP_rate", "low FP"), ("reward_low_FN_rate", "low FN"))

# The configurations scored: the default anomaly detector, and the plain rolling
# median/MAD z-score it grew from, to show what each stage is worth.
CONFIGS: dict[str, Any] = {
    "incident anomaly (defaults)": AnomalyParams(),
    "incident anomaly, season none": AnomalyParams(season="none"),
    "incident anomaly, no novelty/level stage": AnomalyParams(
        novelty=0.0, smooth=timedelta(minutes=5), sensitivity=6.0),
}


def load_scorer(path: Path) -> Any:
    """The shared NAB scorer, imported from its file."""
    spec = importlib.util.spec_from_file_location("nab_score", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["nab_score"] = module
    spec.loader.exec_module(module)
    return module


def alerts(values: np.ndarray, params: Any) -> np.ndarray:
    """One 0/1 alert per row: 1 where an incident opens (a Firing's `fired`)."""
    index = pd.date_range("2020-01-01", periods=len(values), freq=STEP, tz="UTC")
    frame = pd.DataFrame({Labels({"file": "nab"}): values}, index=index, dtype=np.float64)
    out = np.zeros(len(values), dtype=bool)
    for firing in detect(frame, params, index[-1].to_pydatetime()):
        out[index.get_loc(firing.fired)] = True
    return out


def run(data: Path, scorer: Any, params: Any) -> tuple[dict[str, Any], float]:
    """Score one configuration over every labelled file; (scorer result, detect seconds)."""
    windows = scorer.load_windows(str(data / "labels" / "combined_windows.json"))
    files = {}
    spent = 0.0
    for rel in windows:
        table = pd.read_csv(data / "data" / rel)
        started = time.perf_counter()
        flags = alerts(table["value"].to_numpy(dtype=np.float64), params)
        spent += time.perf_counter() - started
        files[rel] = (scorer.to_datetime64(table["timestamp"]), flags)
    return scorer.score_corpus(files, windows), spent


def leaderboard(readme: Path) -> list[tuple[str, str, str, str]]:
    """The published DEV-only rows from the corpus README: (detector, standard, low FP, low FN)."""
    text = readme.read_text(encoding="utf-8")
    section = text.split("## The same published detectors on DEV only", 1)[-1]
    section = section.split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"-?\d+(\.\d+)?", cells[1]):
            rows.append((cells[0], cells[1], cells[2], cells[3]))
    return rows


def main() -> int:
    """Score the configurations and print them beside the published DEV figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "data" / "nab-dev")
    parser.add_argument("--scorer", type=Path, default=SHARED / "bench" / "nab_score.py")
    parser.add_argument("--per-file", action="store_true", help="print per-file TP/FN/FP")
    args = parser.parse_args()
    scorer = load_scorer(args.scorer)
    ours = []
    for name, params in CONFIGS.items():
        result, spent = run(args.data, scorer, params)
        total = result["total"]
        counts = total["counts"]
        ours.append((name, *(f"{total[p]['normalized']:.2f}" for p, _ in PROFILES),
                     f"{counts['tp']}/{counts['windows']}", str(counts["fp"]), f"{spent:.2f}s"))
        if args.per_file:
            print(f"\n{name}")
            for r in result["files"]:
                print(f"  {r.file:60s} tp={r.tp} fn={r.fn} fp={r.fp}")
    print(f"\nNAB DEV ({args.data}), binary alerts, one configuration for all files\n")
    print(f"| {'detector':<44} | standard | low FP | low FN | windows found | FP alerts | time |")
    print(f"|{'-' * 46}|----------|--------|--------|---------------|-----------|------|")
    for row in ours:
        print(f"| {row[0]:<44} | {row[1]:>8} | {row[2]:>6} | {row[3]:>6} | {row[4]:>13} "
              f"| {row[5]:>9} | {row[6]} |")
    for name, std, low_fp, low_fn in leaderboard(args.data / "README.md"):
        print(f"| {'published: ' + name:<44} | {std:>8} | {low_fp:>6} | {low_fn:>6} "
              f"| {'':>13} | {'':>9} | |")
    print("\nPublished rows: NAB's detectors at their corpus-wide thresholds, scored on DEV "
          "(from the corpus README).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
