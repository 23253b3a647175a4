"""Wall time of a cron run: `incident check` on the sample project, and the CLI's import cost.

Usage:  python benchmarks/check_run.py [--runs 5]

Prints a table of medians, then the heaviest imports on the cron path (from -X importtime),
so a change that drags pandas or scipy onto a path that does not need it shows up here.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median and min wall seconds of `cmd` over `runs` runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def import_profile(code: str, env: dict[str, str], top: int) -> list[tuple[float, str]]:
    """Import time (seconds) spent in each top-level package while running `code`.

    Sums each module's own time, so a library imported deep inside our code is charged to
    the library, not to `incident`.
    """
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], env=env,
                            capture_output=True, text=True, check=True)
    totals: dict[str, float] = {}
    for line in result.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            pkg = m.group(2).split(".")[0]
            totals[pkg] = totals.get(pkg, 0.0) + int(m.group(1)) / 1e6
    return sorted(((t, p) for p, t in totals.items()), reverse=True)[:top]


def copy_sample(root: Path) -> Path:
    """The repository's sample project (config, checks, runbooks, drills) copied to `root`."""
    root.mkdir()
    shutil.copy(REPO / "incident.yaml", root)
    for part in ("checks", "runbooks", "drills"):
        shutil.copytree(REPO / part, root / part)
    return root


def main() -> None:
    """Build a sample project in a temp dir, time the runs, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    incident = [sys.executable, "-m", "incident"]
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_sample(Path(tmp) / "shop")
        env = {**os.environ, "INCIDENT_PROJECT": str(root)}
        subprocess.run([*incident, "simulate"], env=env, check=True, capture_output=True)
        subprocess.run([*incident, "check"], env=env, check=True, capture_output=True)
        rows = [
            ('python -c "import incident.cli"',
             timed([sys.executable, "-c", "import incident.cli"], env, args.runs)),
            ("incident --help", timed([*incident, "--help"], env, args.runs)),
            ("incident check (sample project, steady state)",
             timed([*incident, "check"], env, args.runs)),
            ("incident list", timed([*incident, "list"], env, args.runs)),
        ]
        checks = len(list((root / "checks").glob("*.yaml")))
        print(f"{'what':<50} {'median s':>9} {'min s':>7}")
        for name, (median, best) in rows:
            print(f"{name:<50} {median:>9.3f} {best:>7.3f}")
        print(f"\n({args.runs} runs each; sample project with {checks} check files, "
              "8 days of 1-minute data)")
        print("\nImport time of a cron run by package (s):")
        code = ("import sys; sys.argv=['incident','check']; from incident.cli import main; "
                "main(standalone_mode=False)")
        for seconds, pkg in import_profile(code, env, 12):
            print(f"  {pkg:<28} {seconds:6.3f}")


if __name__ == "__main__":
    main()
