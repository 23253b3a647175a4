"""Report plots as inline SVG text: the only module that imports matplotlib.

Imported only when a report is made, never on the cron path. Text stays text in the SVG
(fonttype none), so it is searchable, small, and escaped by matplotlib's XML writer.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from incident.reports.metrics import Week

HIGHLIGHT = "#c0392b"
OTHER = "#95a5a6"
SHADE = "#f5b7b1"
MAX_TICKS = 6  # week labels are ~1 inch wide at 9pt; the plot is 8 inches


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "incident",
                                "font.size": 9, "axes.spines.top": False,
                                "axes.spines.right": False})
    import matplotlib.pyplot as plt

    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # no XML prolog or DOCTYPE inside HTML


def series_plot(frame: pd.DataFrame, *, title: str, highlight: Sequence[object],
                thresholds: Sequence[tuple[float, str]], window: tuple[datetime, datetime],
                detected_at: datetime, timezone: str) -> str:
    """The check's series around an incident: its own series bold, thresholds, window shaded."""
    import matplotlib.dates as mdates

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3))
    for column in frame.columns:
        mine = column in highlight
        ax.plot(frame.index, frame[column], color=HIGHLIGHT if mine else OTHER,
                linewidth=1.8 if mine else 0.8, label=str(column) if mine else None,
                zorder=3 if mine else 2)
    ax.axvspan(window[0], window[1], color=SHADE, alpha=0.45, label="incident open", zorder=1)
    ax.axvline(detected_at, color="#7f8c8d", linestyle=":", linewidth=1, label="first breach")
    for level, name in thresholds:
        ax.axhline(level, color="#2c3e50", linestyle="--" if name == "threshold" else ":",
                   linewidth=1, label=f"{name} {level:g}")
    ax.set_title(title, loc="left", fontsize=10)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=timezone))
    ax.set_xlabel(f"time ({timezone})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7, frameon=False)
    return _svg(fig)


def weekly_plot(weeks: Sequence[Week], labels: Sequence[str]) -> str:
    """MTTA and MTTR medians and p90 per week, in minutes; `labels` name the weeks as the
    report's table does, so the two cannot disagree."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3))
    x = list(range(len(weeks)))

    def minutes(values: Sequence[Any]) -> list[float]:
        return [v.total_seconds() / 60 if v is not None else float("nan") for v in values]

    ax.plot(x, minutes([w.mttr_median for w in weeks]), "o-", color=HIGHLIGHT, label="MTTR median")
    ax.plot(x, minutes([w.mttr_p90 for w in weeks]), "o--", color=HIGHLIGHT, alpha=0.5,
            label="MTTR p90")
    ax.plot(x, minutes([w.mtta_median for w in weeks]), "s-", color="#2471a3", label="MTTA median")
    ax.plot(x, minutes([w.mtta_p90 for w in weeks]), "s--", color="#2471a3", alpha=0.5,
            label="MTTA p90")
    every = math.ceil(len(weeks) / MAX_TICKS)  # a year of weeks would print over each other
    ax.set_xticks(x[::every], [lab.replace(" (partial)", "\n(partial)") for lab in labels][::every])
    ax.set_ylabel("minutes")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=7, frameon=False)
    return _svg(fig)
