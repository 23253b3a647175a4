"""What both reports share: templates (project overrides first), times for people, output files."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from incident.timeutil import format_duration, iso

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = ("md", "html")


def render(root: Path, name: str, fmt: str, context: dict[str, Any]) -> str:
    """Render `NAME.FMT.j2`; `<root>/templates/reports/` overrides the built-in templates."""
    from incident.templating import render as render_template

    override = root / "templates" / "reports"
    return render_template(TEMPLATES, f"{name}.{fmt}.j2", {**context, **HELPERS},
                           override=override if override.is_dir() else None, html=fmt == "html")


def output_path(root: Path, stem: str, fmt: str, given: str | None) -> Path:
    """`-o FILE`, else the stable name reports/STEM.FMT under the project."""
    return Path(given) if given else root / "reports" / f"{stem}.{fmt}"


def write(path: Path, text: str) -> Path:
    """Write a report, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def duration(d: timedelta | None) -> str:
    """5m, 1h30m, or an em dash for "not yet"."""
    return "—" if d is None else format_duration(timedelta(seconds=round(d.total_seconds())))


def seconds(d: timedelta | None) -> float | None:
    """A duration for --json."""
    return None if d is None else d.total_seconds()


def local(t: datetime | None, timezone: str) -> str:
    """A time for people, in the project's time zone."""
    return "—" if t is None else t.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def utc(t: datetime | None) -> str:
    """A time in UTC, to the second."""
    return "—" if t is None else (iso(t.replace(microsecond=0)) or "")


def md(text: object) -> str:
    """Text for Markdown: HTML-looking text and table pipes shown as text, not markup."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "\\|").replace("\n", " "))


def svg_data_uri(svg: str) -> str:
    """An SVG as a data: URI, for Markdown viewers (no external file, no request)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


HELPERS: dict[str, Any] = {"duration": duration, "local": local, "utc": utc, "md": md,
                           "svg_data_uri": svg_data_uri}
