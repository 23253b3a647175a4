"""Postmortem and trends reports of the sample project's real incident, through the CLI."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from incident.cli import main
from incident.model import Severity
from incident.store import Store
from tests.conftest import IN_CI

END = "2026-11-24T10:00:00Z"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def cli(project: Path, *args: str) -> str:
    """Run `incident --project P ARGS` as ana; stdout, asserting success."""
    result = CliRunner().invoke(main, ["--project", str(project), *args],
                                env={"INCIDENT_USER": "ana"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def shop(sample: Path) -> Path:
    """The sample shop with its payment incident #1 opened, acknowledged and written up."""
    cli(sample, "simulate", "--end", END, "--days", "1")
    assert "opened #1" in cli(sample, "check", "payment-success-rate", "--at", END)
    cli(sample, "ack", "1")
    cli(sample, "step", "1", "1", "--done", "--note", "alipay only")
    cli(sample, "step", "1", "2", "--skip", "--note", "status page down too")
    cli(sample, "edit", "1", "--summary", "Alipay payments failed", "--orders-affected", "120",
        "--revenue-at-risk", "4200.5", "--root-cause", "expired certificate")
    cli(sample, "action", "add", "1", "Alert on certificate expiry", "--owner", "bob",
        "--due", "2026-11-01")
    return sample


def test_postmortem_json_has_the_machine_built_numbers(shop: Path) -> None:
    """TTD is opened − first breach; steps, notifications and action items are counted."""
    data = json.loads(cli(shop, "report", "postmortem", "1", "--json"))
    assert data["incident"]["detected_at"] == "2026-11-24T09:38:00Z"
    assert data["seconds_to"]["detect"] == 22 * 60
    assert data["seconds_to"]["resolve"] is None
    # opened (and, with the outbox, acknowledged) to oncall and managers, all delivered
    assert data["notifications"]["sent"] in (2, 4) and data["notifications"]["failed"] == 0
    assert [s["state"] for s in data["steps"]][:3] == ["done", "skipped", "pending"]
    assert data["postmortem"]["orders_affected"] == 120
    assert data["action_items"][0]["overdue"] is True
    assert "OVERDUE" in cli(shop, "action", "list")


def test_postmortem_markdown_and_html_are_written_under_reports(shop: Path) -> None:
    """Stable names under reports/; the HTML inlines its SVG plot and requests nothing."""
    assert "postmortem-1.md" in cli(shop, "report", "postmortem", "1", "--format", "md")
    assert "postmortem-1.html" in cli(shop, "report", "postmortem", "1")
    md = (shop / "reports" / "postmortem-1.md").read_text()
    assert "| Time to detect |" in md and "| 22m |" in md and "expired certificate" in md
    assert "data:image/svg+xml;base64," in md
    html = (shop / "reports" / "postmortem-1.html").read_text()
    assert "<svg" in html and 'id="timeline"' in html and "2026-11-24 17:38:00 CST" in html
    assert "<td>first breach</td>" in html and "| first breach |" in md
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@media print" in html and 'name="viewport"' in html


def test_a_project_template_overrides_the_built_in_one(shop: Path) -> None:
    """A project's templates/reports/postmortem.md.j2 replaces the built-in one."""
    (shop / "templates" / "reports").mkdir(parents=True)
    (shop / "templates" / "reports" / "postmortem.md.j2").write_text("custom {{ incident.id }}\n")
    cli(shop, "report", "postmortem", "1", "--format", "md", "-o", str(shop / "x.md"))
    assert (shop / "x.md").read_text() == "custom 1\n"


def test_script_in_a_title_or_label_is_shown_as_text(sample: Path) -> None:
    """An incident title and label holding <script> are escaped in HTML and Markdown."""
    cli(sample, "open", "<script>alert('t')</script> checkout", "--label",
        "team=<script>alert('l')</script>")
    cli(sample, "edit", "1", "--summary", "<img src=x onerror=alert(1)>")
    cli(sample, "report", "postmortem", "1")
    html = (sample / "reports" / "postmortem-1.html").read_text()
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; checkout" in html
    cli(sample, "report", "postmortem", "1", "--format", "md")
    assert "<script" not in (sample / "reports" / "postmortem-1.md").read_text()
    cli(sample, "report", "trends", "--since", "30d")
    assert "<script" not in (sample / "reports" / "trends-30d.html").read_text()


def test_trends_json_counts_the_period(shop: Path) -> None:
    """The sample's one incident shows up by severity, category and check."""
    data = json.loads(cli(shop, "report", "trends", "--since", "400d", "--json"))
    assert data["incidents"] == 1 and data["still_open"] == 1
    assert data["by_category"] == {"payment": 1}
    assert data["open_action_items"][0]["overdue"] is True


def _chromium(url: str, *flags: str) -> tuple[str, set[str]]:
    """Open `url` in headless Chromium: the DOM or whatever `flags` ask for, and the URLs the
    page requested (from Chromium's net log; Chromium's own calls home left out)."""
    profile = Path(tempfile.mkdtemp(prefix="incident-chromium-"))
    try:
        run = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--disable-quic", f"--user-data-dir={profile}",
             # Any request for another host fails: the page must render from the file alone.
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--log-net-log={profile / 'net.json'}",
             *flags, url],
            capture_output=True, text=True, timeout=120)
        log = (profile / "net.json").read_text(errors="replace")
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    urls = set(re.findall(r'"url":"([^"]+)"', log))
    own = re.compile(r"^https?://[^/]*\.(google\.com|googleapis\.com)(/|$)")
    return run.stdout, {u for u in urls if not u.startswith(("file:", "data:")) and not own.match(u)}


def test_reports_render_in_headless_chromium(shop: Path, tmp_path: Path) -> None:
    """Chromium renders both HTML reports with title, plot and timeline, requesting nothing
    outside the file; screenshots are saved next to the test's files."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail("chromium is missing; CI must install it")
        pytest.skip("chromium not installed: apt-get install chromium")
    control = tmp_path / "control.html"  # proves the net log would show an external request
    control.write_text('<!DOCTYPE html><title>c</title><img src="https://example.com/x.png">')
    assert "https://example.com/x.png" in _chromium(control.as_uri(), "--dump-dom")[1]
    cli(shop, "report", "postmortem", "1")
    cli(shop, "report", "trends", "--since", "400d")
    for name, title, marker in (
            ("postmortem-1", "Postmortem #1: payment-success-rate (provider=alipay)",
             'id="timeline"'),
            ("trends-400d", "Incident trends, last 400d", 'id="recurring"')):
        url = (shop / "reports" / f"{name}.html").as_uri()
        dom, requested = _chromium(url, "--dump-dom")
        assert f"<title>{title}</title>" in dom and "<svg" in dom and marker in dom, dom[:500]
        assert requested == set(), requested
        shot = tmp_path / f"{name}.png"
        _chromium(url, f"--screenshot={shot}", "--window-size=1000,2000")
        assert shot.stat().st_size > 20_000, f"no screenshot of {name}"


def test_a_drill_incident_is_marked_as_such(sample: Path) -> None:
    """A drill's postmortem says DRILL in its title and at the top, in both formats."""
    from datetime import UTC, datetime, timedelta

    from incident.model import Severity
    from incident.store import Store

    t = datetime(2026, 11, 24, 10, tzinfo=UTC)
    with Store.connect("sqlite:///.incident/incident.db", root=sample) as store:
        store.open_incident(fingerprint="drill:1", check=None, title="payment drill",
                            severity=Severity.HIGH, labels={}, runbook=None, detected_at=t, at=t,
                            value=None, reopen_window=timedelta(0), actor="drill", drill=True)
    cli(sample, "report", "postmortem", "1")
    cli(sample, "report", "postmortem", "1", "--format", "md")
    assert "<title>Postmortem #1: payment drill [DRILL]</title>" in (
        sample / "reports" / "postmortem-1.html").read_text()
    assert "**DRILL**" in (sample / "reports" / "postmortem-1.md").read_text()


def test_matplotlib_stays_off_the_cron_path(sample: Path) -> None:
    """`incident check` never imports matplotlib or the reports package; a report does."""
    import sys

    cli(sample, "simulate", "--end", END, "--days", "1")
    probe = ("import sys\nfrom incident.cli import main\ntry:\n    main()\nexcept SystemExit:\n"
             "    pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'"
             " or m.startswith('incident.reports')))")
    for args, loaded in ((["check", "--at", END], False), (["report", "trends"], True)):
        out = subprocess.run([sys.executable, "-c", probe, "--project", str(sample), *args],
                             capture_output=True, text=True, timeout=120).stdout
        assert ("matplotlib" in out) is loaded, out


def _store(project: Path) -> Store:
    return Store.connect("sqlite:///.incident/incident.db", root=project)


def test_trends_weeks_are_monday_to_sunday_in_the_project_time_zone(
        sample: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample is in Shanghai (UTC+8). 30 days to Tuesday 2026-11-24 18:00 there: the table
    and the chart name the same local weeks; an incident at Sunday 23:59:59 and one at Monday
    00:00 fall in different weeks; week over week compares the last two whole weeks. A manual
    incident (resolved at once, so it would "flap") is counted as (manual), never as a check."""
    now = datetime(2026, 11, 24, 10, tzinfo=UTC)
    monkeypatch.setattr("incident.cli.utcnow", lambda: now)
    monday = datetime(2026, 11, 22, 16, tzinfo=UTC)  # 2026-11-23 00:00 in Shanghai
    with _store(sample) as store:
        for n, at in enumerate((monday - timedelta(days=8), monday - timedelta(seconds=1), monday,
                                monday + timedelta(hours=1))):
            opened, _ = store.open_incident(
                fingerprint=f"fp{n}", check="payment-success-rate", title=f"t{n}",
                severity=Severity.HIGH, labels={}, runbook=None, detected_at=at, at=at, value=1.0,
                reopen_window=timedelta(0), actor="engine")
            store.acknowledge(opened.id, at=at + timedelta(minutes=n + 1), actor="ana")
            store.resolve(opened.id, at=at + timedelta(minutes=30), actor="ana")
    cli(sample, "open", "Customers report failed card payments")
    cli(sample, "resolve", "5")
    cli(sample, "report", "trends", "--since", "30d", "--format", "md")
    md = (sample / "reports" / "trends-30d.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| 2026-")]
    assert rows == [
        "| 2026-10-25 (partial) | 0 | — | — | — | — |",
        "| 2026-10-26 – 11-01 | 0 | — | — | — | — |",
        "| 2026-11-02 – 11-08 | 0 | — | — | — | — |",
        "| 2026-11-09 – 11-15 | 1 | 1m | 1m | 30m | 30m |",
        "| 2026-11-16 – 11-22 | 1 | 2m | 2m | 30m | 30m |",
        "| 2026-11-23 – 11-24 (partial) | 3 | 3m30s | 4m | 30m | 30m |"]
    assert "compares 2026-11-16 – 11-22 with 2026-11-09 – 11-15" in md
    assert "| (manual) | 1 |" in md and "- payment-success-rate: 4" in md
    assert "(manual):" not in md and "- -:" not in md  # in neither flapping nor noisiest
    cli(sample, "report", "trends", "--since", "30d")
    html = (sample / "reports" / "trends-30d.html").read_text()
    ticks = re.findall(r">(\d\d-\d\d[^<\n]*|\(partial\))\s*</text>", html)
    assert ticks == ["10-25", "(partial)", "10-26 – 11-01", "11-02 – 11-08", "11-09 – 11-15",
                     "11-16 – 11-22", "11-23 – 11-24", "(partial)"]
    assert '<td class="nowrap">2026-11-23 – 11-24 (partial)</td><td>3</td>' in html
    data = json.loads(cli(sample, "report", "trends", "--since", "30d", "--json"))
    assert [(w["start"], w["partial"], w["incidents"]) for w in data["weeks"]][-3:] == [
        ("2026-11-08T16:00:00Z", False, 1), ("2026-11-15T16:00:00Z", False, 1),
        ("2026-11-22T16:00:00Z", True, 3)]
    assert data["weeks"][-1]["end"] == "2026-11-24T10:00:00Z"
    assert data["week_over_week"] == {"incidents": 0.0, "mtta_median": 1.0, "mttr_median": 0.0}
    assert data["by_check"] == {"payment-success-rate": 4, "(manual)": 1}
    assert data["noisiest"] == {"payment-success-rate": 4}
    assert data["flapping"] == {} and data["recurring"] == []


def test_a_manual_incident_s_postmortem_presumes_no_check(shop: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Opened by hand while #1 was open: no first-breach row, no time to detect, "manual" where
    the check would be; #1's series is plotted and captioned as #1's, not as this incident's."""
    monkeypatch.setattr("incident.cli.utcnow", lambda: datetime(2026, 11, 24, 10, 10, tzinfo=UTC))
    assert "opened #2" in cli(shop, "open", "Customers report failed card payments")
    assert json.loads(cli(shop, "report", "postmortem", "2", "--json"))["seconds_to"]["detect"] is None
    cli(shop, "report", "postmortem", "2")
    cli(shop, "report", "postmortem", "2", "--format", "md")
    html = (shop / "reports" / "postmortem-2.html").read_text()
    md = (shop / "reports" / "postmortem-2.md").read_text()
    assert "<td>first breach</td>" not in html and "| first breach |" not in md
    assert "· manual (opened by hand) ·" in html and "· manual (opened by hand) ·" in md
    assert "<svg" in html and "payment-success-rate: incident #1's series in red" in html
    assert "![payment-success-rate (incident #1)](data:image/svg+xml;base64," in md
    assert "| — | — | — | open 0s | 1 sent, 0 failed |" in md  # no time to detect: none was
