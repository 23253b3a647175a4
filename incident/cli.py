"""The `incident` command line: parse arguments, call one function, turn errors into exit codes.

Exit codes: 0 ok · 1 unexpected failure · 2 configuration or usage error · 3 a source could
not be read · 4 the incident store failed · 5 no such incident or check · 6 notification error.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

from incident import app
from incident.errors import ConfigError, ConfigProblem, IncidentError, NotFound, UsageError
from incident.model import Check, Incident, Project, Severity, Status
from incident.timeutil import format_duration, iso, parse_duration, parse_time, utcnow

if TYPE_CHECKING:
    from incident.runners import Shard

F = TypeVar("F", bound=Callable[..., Any])


def _fail(exc: IncidentError) -> None:
    if isinstance(exc, ConfigError):
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem{'s' * (len(exc.problems) != 1)} found",
                   err=True)
    else:
        click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


def command(fn: F) -> F:
    """Turn our errors into one clear message per line and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except IncidentError as exc:
            _fail(exc)

    return wrapper  # type: ignore[return-value]


def _warn(problems: Sequence[ConfigProblem], shown: int = 3) -> None:
    """The first few problems of a leniently loaded project, on stderr (stdout may be JSON)."""
    for problem in problems[:shown]:
        click.echo(f"warning: {problem}", err=True)
    if problems:
        more = f" and {len(problems) - shown} more" if len(problems) > shown else ""
        click.echo(f"warning: what these break is left out{more}; `incident checks validate` "
                   "lists every problem", err=True)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _time(text: str | None, now: datetime) -> datetime:
    if text is None:
        return now
    try:
        return parse_time(text, now)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _actor(given: str | None) -> str:
    return given or os.environ.get("INCIDENT_USER") or os.environ.get("USER") or "unknown"


class Ctx:
    """What every command shares: where the project is, loaded on first use."""

    def __init__(self, root: str | None) -> None:
        self.root = app.project_root(root)
        self._project: Project | None = None
        self._with_drills: Project | None = None
        self._strict: Project | None = None

    @property
    def project(self) -> Project:
        """The project without drills/, loaded leniently: a broken drill, check or runbook file
        never stops the cron run or people working incidents; its problems are shown."""
        if self._project is None:
            self._project = app.load(self.root, drills=False, lenient=True)
            _warn(self._project.problems)
        return self._project

    @property
    def strict(self) -> Project:
        """The project without drills/, every problem an error: for the commands that check
        the project itself (runbook lint, checks test), where a left-out part would pass."""
        if self._strict is None:
            self._strict = app.load(self.root, drills=False)
        return self._strict

    @property
    def with_drills(self) -> Project:
        """The project with drills/ read and validated (drill commands, checks validate)."""
        if self._with_drills is None:
            self._with_drills = app.load(self.root)
        return self._with_drills


pass_ctx = click.make_pass_decorator(Ctx)
# How far ahead of this machine's clock `check --at` may be: another host's clock, a cron
# started a moment early.
CLOCK_SKEW = timedelta(minutes=1)
# How many rows to show: 0 would print "no incidents" when there are some, and the store
# refuses a negative limit (or, in SQL, reads it as no limit at all).
_COUNT = click.IntRange(min=1)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--project", "-p", metavar="DIR", envvar="INCIDENT_PROJECT",
              help="Project directory (default: $INCIDENT_PROJECT, else the current directory).")
@click.version_option(package_name="incident")
@click.pass_context
def main(ctx: click.Context, project: str | None) -> None:
    """Monitoring and incident response: checks, incidents, runbooks, drills, reports.

    \b
    Exit codes: 0 ok, 1 unexpected failure, 2 configuration or usage error,
    3 source unreadable, 4 store error, 5 not found, 6 notification error.
    """
    ctx.obj = Ctx(project)


@main.command()
@click.argument("names", nargs=-1)
@click.option("--at", "at", metavar="T", help="Evaluate as if the clock said T (RFC 3339 or -2h).")
@click.option("--dry-run", is_flag=True, help="Show what would change; write and send nothing.")
@click.option("--lease", is_flag=True,
              help="Share the checks with other runners on the same store: evaluate only the "
                   "checks this runner claims for their current cycle.")
@click.option("--runner", "runner_name", metavar="NAME", help="This runner's name in leases "
              "(default HOST:PID).")
@click.option("--shard", metavar="I/N", help="Evaluate only shard I of N (1-based; a stable "
              "hash of the check name).")
@json_option
@pass_ctx
@command
def check(c: Ctx, names: tuple[str, ...], at: str | None, dry_run: bool, lease: bool,
          runner_name: str | None, shard: str | None, as_json: bool) -> None:
    """Evaluate checks; open, update and auto-resolve incidents; notify. Run it from cron.

    \b
    Example:  * * * * *  incident --project /srv/shop check
              * * * * *  incident --project /srv/shop check --lease   (on each cron host)
              incident check api-success-rate --at 2026-11-24T10:00:00Z --dry-run
    """
    from incident import runners
    from incident.views import report_json, report_text

    wall = utcnow()
    now = _time(at, wall)
    if now - wall > CLOCK_SKEW and not dry_run:
        # Judging data that does not exist yet would open incidents stamped in the future and
        # page people for them: a sign slip in --at, not a backfill.
        raise UsageError(f"--at {at} ({iso(now)}) is in the future (now {iso(wall)}): check judges "
                         "what already happened; use --dry-run to look ahead")
    for name in names:
        _known_check(c.project, name)
    part = _shard(shard)
    with _store(c.project) as store:
        plan = runners.plan(c.project, store, names, now=now, wall=utcnow(), shard=part,
                            runner=runner_name or runners.default_runner(),
                            lease=lease and not dry_run)
        report = runners.run(app.engine(c.project, store), store, plan, now, dry_run=dry_run,
                             clock=utcnow)
    click.echo(json.dumps(report_json(report), indent=2) if as_json
               else report_text(report, c.project))
    if report.source_errors:
        sys.exit(3)
    if c.project.problems:
        sys.exit(ConfigError.exit_code)


@main.group()
def db() -> None:
    """The incident store's schema: its version, and upgrading it in place."""


@db.command("status")
@json_option
@pass_ctx
@command
def db_status(c: Ctx, as_json: bool) -> None:
    """Show the store's schema version next to this incident's; changes nothing.

    Example:  incident db status --json
    """
    from incident.store import Store

    st = Store.status(c.project.settings.store, root=c.project.root)
    advice = {"empty": "no schema yet (created on first use)", "current": "up to date",
              "older": "run `incident db upgrade`", "newer": "upgrade incident on this machine"}
    if as_json:
        _emit({"url": st.url, "database_version": st.database_version,
               "code_version": st.code_version, "state": st.state})
    else:
        click.echo(f"{st.url}: schema version {st.database_version or '-'}, this incident's "
                   f"{st.code_version}: {advice[st.state]}")


@db.command("upgrade")
@pass_ctx
@command
def db_upgrade(c: Ctx) -> None:
    """Create the store's schema or migrate it to this incident's version, data kept.

    Safe to run from several machines at once.  Example:  incident db upgrade
    """
    from incident.store import Store

    before, after = Store.upgrade(c.project.settings.store, root=c.project.root)
    click.echo(f"schema created at version {after}" if before is None else
               f"schema version {after}: already up to date" if before == after else
               f"schema upgraded from version {before} to {after}")


@main.command("open")
@click.argument("title")
@click.option("--severity", type=click.Choice([s.value for s in Severity]), default="high",
              show_default=True)
@click.option("--runbook", help="Name of a runbook in runbooks/.")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="A label (repeatable).")
@click.option("--by", help="Who opens it (default $INCIDENT_USER or $USER).")
@json_option
@pass_ctx
@command
def open_(c: Ctx, title: str, severity: str, runbook: str | None, labels: tuple[str, ...],
          by: str | None, as_json: bool) -> None:
    """Open an incident by hand (a customer report, a vendor's outage notice) and page its routes.

    It is routed and notified like a detected one; a failed page is retried by the next check.

    Example:  incident open "Card payments failing per support" --severity critical --runbook payment-failure
    """
    from incident.manual import delivery_text, open_manual
    from incident.views import incident_json

    _said(title, "TITLE", 'e.g. incident open "Card payments failing per support"')
    if runbook:
        _known_runbook(c.project, runbook)
    pairs = dict(_label(x) for x in labels)
    with _store(c.project) as store:
        incident, sent = open_manual(c.project, store, title=title, severity=Severity(severity),
                                     labels=pairs, runbook=runbook, actor=_actor(by), now=utcnow())
    told = delivery_text(incident, sent)
    _emit(incident_json(incident)) if as_json else click.echo(
        f"opened #{incident.id}: {incident.title}" + (f"; {told}" if told else ""))


@main.command()
@click.argument("incident_id", type=int)
@click.option("--by", help="Who acknowledges (default $INCIDENT_USER or $USER).")
@json_option
@pass_ctx
@command
def ack(c: Ctx, incident_id: int, by: str | None, as_json: bool) -> None:
    """Acknowledge an incident: you are on it.

    Example:  incident ack 42
    """
    from incident.notify.actions import acknowledge
    from incident.views import incident_json

    with _store(c.project) as store:
        incident, changed, _ = acknowledge(c.project, store, incident_id, actor=_actor(by),
                                           now=utcnow())
    _emit(incident_json(incident)) if as_json else click.echo(
        f"#{incident.id} acknowledged by {incident.acknowledged_by}" if changed
        else f"#{incident.id} is already {incident.status.value}")


@main.command()
@click.argument("incident_id", type=int)
@click.option("--by", help="Who resolves (default $INCIDENT_USER or $USER).")
@click.option("--note", "text", default="", help="What fixed it.")
@click.option("--learned", default="",
              help="A lesson for the runbook's history (shown by `incident runbook show`).")
@json_option
@pass_ctx
@command
def resolve(c: Ctx, incident_id: int, by: str | None, text: str, learned: str,
            as_json: bool) -> None:
    """Resolve an incident by hand and tell the channels that were paged about it.

    Example:  incident resolve 42 --note "failed over" --learned "check replica lag first"
    """
    from incident.model import EventKind
    from incident.notify.actions import resolve as resolve_and_notify
    from incident.views import incident_json

    with _store(c.project) as store:
        # Announced like an ack: a manual incident never resolves by itself, so this is its only news.
        incident, changed, _ = resolve_and_notify(c.project, store, incident_id, actor=_actor(by),
                                                  now=utcnow(), text=text)
        if learned:
            store.add_event(incident_id, at=utcnow(), kind=EventKind.LEARNED, actor=_actor(by),
                            text=learned, data={"runbook": incident.runbook})
    _emit(incident_json(incident)) if as_json else click.echo(
        f"#{incident.id} resolved by {incident.resolved_by}" if changed
        else f"#{incident.id} was already resolved")


@main.command()
@click.argument("incident_id", type=int)
@click.argument("text")
@click.option("--by", help="Who writes the note (default $INCIDENT_USER or $USER).")
@pass_ctx
@command
def note(c: Ctx, incident_id: int, text: str, by: str | None) -> None:
    """Add a note to an incident's timeline.

    Example:  incident note 42 "replica lag 3s, failing over"
    """
    from incident.model import EventKind

    _said(text, "TEXT", 'e.g. incident note 42 "replica lag 3s, failing over"')
    with _store(c.project) as store:
        store.get(incident_id)
        store.add_event(incident_id, at=utcnow(), kind=EventKind.NOTE, actor=_actor(by), text=text)
    click.echo(f"#{incident_id}: note added")


@main.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved incidents.")
@click.option("--status", type=click.Choice([s.value for s in Status]), multiple=True)
@click.option("--check", "check_name", help="Only this check's incidents.")
@click.option("--limit", type=_COUNT, default=50, show_default=True,
              help="Show at most this many.")
@json_option
@pass_ctx
@command
def list_(c: Ctx, show_all: bool, status: tuple[str, ...], check_name: str | None, limit: int,
          as_json: bool) -> None:
    """List incidents, newest first (open and acknowledged unless --all).

    Example:  incident list --all --check api-success-rate
    """
    from incident.views import incident_json, incident_line

    statuses = [Status(s) for s in status] or (None if show_all else
                                                [Status.OPEN, Status.ACKNOWLEDGED])
    with _store(c.project) as store:
        found = store.list(statuses=statuses, check=check_name, limit=limit)
    if as_json:
        _emit([incident_json(i) for i in found])
    else:
        click.echo("\n".join(incident_line(i, c.project) for i in found) or "no incidents")


@main.command()
@click.argument("incident_id", type=int)
@json_option
@pass_ctx
@command
def show(c: Ctx, incident_id: int, as_json: bool) -> None:
    """Show one incident with its timeline.

    Example:  incident show 42
    """
    from incident.runbooks import step_states, steps_of
    from incident.views import incident_json, incident_text

    with _store(c.project) as store:
        incident = store.get(incident_id)
    steps = step_states(steps_of(c.project.runbooks.get(incident.runbook or ""),
                                 incident.timeline), incident.timeline)
    if as_json:
        _emit({**incident_json(incident), "steps": [
            {"number": s.step.number, "text": s.step.text, "state": s.state, "by": s.actor,
             "note": s.note} for s in steps]})
    else:
        click.echo(incident_text(incident, c.project, steps))


@main.command()
@click.argument("expr")
@click.option("--source", help="Source name (default: default_source).")
@click.option("--at", "at", metavar="T", help="Instant query time (default now).")
@click.option("--start", metavar="T", help="Range query start.")
@click.option("--end", metavar="T", help="Range query end (default now; needs --start).")
@click.option("--step", metavar="D", help="Range query step (default 1m; needs --start).")
@json_option
@pass_ctx
@command
def query(c: Ctx, expr: str, source: str | None, at: str | None, start: str | None,
          end: str | None, step: str | None, as_json: bool) -> None:
    """Evaluate PromQL on a source, like `promtool query`: at an instant, or over a range.

    \b
    Example:  incident query 'sum by (service) (rate(http_requests_total[5m]))' --start -1h
              incident query 'up' --at 2026-11-24T10:00:00Z
    """
    from incident.views import query_text

    now = utcnow()
    name = source or c.project.settings.default_source
    if name not in c.project.settings.sources:
        raise UsageError(f"unknown source {name!r} (known: {', '.join(c.project.settings.sources)})")
    span = _query_span(at, start, end, step, now)
    src = app.make_source(c.project.settings.sources[name])
    data = src.api_query(expr, span) if isinstance(span, datetime) else src.api_query_range(expr, *span)
    _emit(data) if as_json else click.echo(query_text(data))


def _query_span(at: str | None, start: str | None, end: str | None, step: str | None,
                now: datetime) -> datetime | tuple[datetime, datetime, timedelta]:
    """`--at T` → an instant; `--start T [--end T] [--step D]` → a range; anything else is refused."""
    ranged = [f for f, v in (("--start", start), ("--end", end), ("--step", step)) if v is not None]
    if at is not None and ranged:
        raise UsageError(f"--at asks for an instant and {'/'.join(ranged)} for a range: give "
                         "--at T, or --start T [--end T] [--step D], not both")
    if start is None and ranged:
        raise UsageError(f"{' and '.join(ranged)} need{'s' * (len(ranged) == 1)} --start: a range "
                         "query is --start T [--end T] [--step D]")
    if start is None:
        return _time(at, now)
    first, last = _time(start, now), _time(end, now)
    if last < first:
        raise UsageError(f"--end {end or 'now'} ({iso(last)}) is before --start {start} ({iso(first)})")
    return first, last, _duration(step or "1m", "--step")


@main.command()
@click.option("--end", metavar="T", help="Last simulated minute (default now).")
@click.option("--days", type=click.FloatRange(min=0, min_open=True), default=8.0,
              show_default=True, help="How much history to write.")
@pass_ctx
@command
def simulate(c: Ctx, end: str | None, days: float) -> None:
    """Write the sample shop's metrics (deterministic, with scripted faults) into data/.

    Example:  incident simulate --days 8
    """
    from incident.simulator import write_project_data

    for path in write_project_data(c.root, _time(end, utcnow()), days=days):
        click.echo(f"wrote {path.relative_to(c.root)}")


@main.command()
@click.argument("incident_id", type=int)
@click.argument("number")
# Two flags, not one flag_value pair: with a shared destination click keeps the last one given,
# so `--done --skip` would quietly record "skipped".
@click.option("--done", is_flag=True, help="The step was carried out.")
@click.option("--skip", is_flag=True, help="The step was skipped on purpose.")
@click.option("--note", default="", help="What came of it, or why it was skipped.")
@click.option("--by", help="Who did it (default $INCIDENT_USER or $USER).")
@pass_ctx
@command
def step(c: Ctx, incident_id: int, number: str, done: bool, skip: bool, note: str,
         by: str | None) -> None:
    """Record a runbook step as done or skipped on the incident's timeline.

    Example:  incident step 42 2 --done --note "replica lag 0.4s"
    """
    from incident.model import EventKind
    from incident.runbooks import find_step, steps_of

    if done == skip:
        raise UsageError("say --done or --skip" if not done else
                         "--done and --skip contradict each other: give one of them")
    state = "done" if done else "skipped"
    with _store(c.project) as store:
        incident = store.get(incident_id)
        steps = steps_of(c.project.runbooks.get(incident.runbook or ""), incident.timeline)
        found = find_step(steps, number)
        if found is None:
            raise NotFound(f"incident #{incident_id} has no runbook step {number!r}"
                           + (f" (steps: {', '.join(s.number for s in steps)})" if steps
                              else " (it has no runbook)"))
        store.add_event(incident_id, at=utcnow(), kind=EventKind.STEP, actor=_actor(by),
                        text=f"step {found.number} {state}: {found.text}"
                             + (f" — {note}" if note else ""),
                        data={"step": found.number, "state": state, "note": note})
    click.echo(f"#{incident_id}: step {found.number} {state}")


@main.group()
def runbook() -> None:
    """Runbooks: the emergency plans, their steps and their history."""


@runbook.command("list")
@json_option
@pass_ctx
@command
def runbook_list(c: Ctx, as_json: bool) -> None:
    """List runbooks with owner, last review, overdue flag and how many incidents used them.

    Example:  incident runbook list
    """
    from incident.views import runbook_row

    today = utcnow().date()
    with _store(c.project) as store:
        used = store.runbook_usage()
    rows = [runbook_row(rb, today, used.get(name, 0))
            for name, rb in sorted(c.project.runbooks.items())]
    if as_json:
        _emit(rows)
        return
    for r in rows:
        flag = "  OVERDUE" if r["overdue"] else ""
        click.echo(f"{r['name']:<22} {r['owner'] or '-':<16} reviewed {r['reviewed'] or 'never':<10}"
                   f" {r['steps']:>2} steps {r['incidents']:>4} incident{'s' * (r['incidents'] != 1)}"
                   f"  {r['title']}{flag}")


@runbook.command("show")
@click.argument("name")
@click.option("--history", "limit", type=_COUNT, default=20, show_default=True,
              help="How many past incidents to show.")
@pass_ctx
@command
def runbook_show(c: Ctx, name: str, limit: int) -> None:
    """Show a runbook for a terminal, ending with the incidents that used it.

    Example:  incident runbook show database-failure
    """
    from incident.runbooks import history_entry
    from incident.views import runbook_text

    rb = _known_runbook(c.project, name)
    with _store(c.project) as store:
        history = [history_entry(store.get(i.id))
                   for i in store.list(runbook=name, limit=limit)]
    click.echo(runbook_text(rb, history, utcnow().date(), c.project))


@runbook.command("search")
@click.argument("words", nargs=-1, required=True)
@pass_ctx
@command
def runbook_search(c: Ctx, words: tuple[str, ...]) -> None:
    """Find runbooks by words in their title, tags and body.

    Example:  incident runbook search failover replica
    """
    from incident.runbooks import search

    hits = search(c.project.runbooks, words)
    for _, rb in hits:
        click.echo(f"{rb.name:<22} {rb.title}")
    if not hits:
        click.echo("no runbook mentions " + " and ".join(words))


@runbook.command("lint")
@json_option
@pass_ctx
@command
def runbook_lint(c: Ctx, as_json: bool) -> None:
    """Report checks without runbooks, unknown checks, missing steps, overdue reviews, broken links.

    Exits 1 when it finds anything.  Example:  incident runbook lint
    """
    from incident.runbooks import lint

    project = c.strict
    problems = lint(project.runbooks, project.checks, project.root, utcnow().date())
    if as_json:
        _emit([{"path": p.path, "line": p.line, "kind": p.kind, "message": p.message}
               for p in problems])
    else:
        for p in problems:
            click.echo(str(p))
        click.echo(f"{len(project.runbooks)} runbooks, {len(project.checks)} checks: "
                   + (f"{len(problems)} problems" if problems else "clean"))
    if problems:
        sys.exit(1)


@main.group()
def checks() -> None:
    """Work with check definitions."""


@checks.command("validate")
@pass_ctx
@command
def checks_validate(c: Ctx) -> None:
    """Validate incident.yaml, every check and drill; print every problem with file:line:col.

    Example:  incident checks validate
    """
    app.validate_channels(c.with_drills)
    p = c.with_drills
    click.echo(f"ok: {len(p.checks)} checks, {len(p.drills)} drills, "
               f"{len(p.settings.sources)} sources, {len(p.settings.channels)} channels, "
               f"{len(p.settings.routes)} routes")


@checks.command("list")
@json_option
@pass_ctx
@command
def checks_list(c: Ctx, as_json: bool) -> None:
    """List checks with their source, detector, severity and runbook.

    Example:  incident checks list --json
    """
    from incident.views import check_json

    if as_json:
        _emit([check_json(ch) for ch in c.project.checks])
        return
    for ch in c.project.checks:
        click.echo(f"{ch.name:<28} {ch.severity.value:<8} {ch.detector_type:<10} "
                   f"{ch.source:<8} every {format_duration(ch.every):<5} "
                   f"runbook {ch.runbook or '-'}")


@checks.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@json_option
@pass_ctx
@command
def checks_test(c: Ctx, files: tuple[str, ...], as_json: bool) -> None:
    """Run unit tests for checks (like promtool test rules); exit 1 if any fails.

    A test file gives input series in expanding notation (0+10x100, 1 _x3 stale) and the
    incidents and firing series expected at evaluation times.

    Example:  incident checks test checks/tests/*.yaml
    """
    from incident.checktest import render, results_json, run_file

    results = {f: run_file(f, c.strict) for f in files}
    if as_json:
        _emit([results_json(f, r) for f, r in results.items()])
    else:
        click.echo("\n".join(render(f, r) for f, r in results.items()))
    if not all(t.passed for r in results.values() for t in r):
        sys.exit(1)


@checks.command("backtest")
@click.argument("name")
@click.option("--from", "start", metavar="T", required=True, help="First run (RFC 3339 or -7d).")
@click.option("--to", "end", metavar="T", help="Last run (default now).")
@json_option
@pass_ctx
@command
def checks_backtest(c: Ctx, name: str, start: str, end: str | None, as_json: bool) -> None:
    """Print the incidents a check would have opened had it run every `every` over a period.

    Example:  incident checks backtest api-success-rate --from -7d --to now --json
    """
    from incident.backtest import backtest, incident_json, text

    _known_check(c.project, name)
    check, now = c.project.check(name), utcnow()
    source = app.make_source(c.project.settings.sources[check.source])
    result = backtest(check, source, _time(start, now), _time(end, now),
                      c.project.settings.reopen_window)
    _emit([incident_json(i) for i in result.incidents]) if as_json else click.echo(text(result))
    if result.blind:
        # On stderr, so --json stays parseable: quiet runs without data are no all-clear.
        click.echo(f"warning: {result.blind} of {result.steps} runs saw no data for {name} in "
                   f"their lookback: the source may not hold this period", err=True)


# ---------------------------------------------------------------- postmortems and reports

_POSTMORTEM_FIELDS: dict[str, tuple[type, str]] = {
    "summary": (str, "What happened, in a paragraph."),
    "impact": (str, "Who and what was affected, in words."),
    "customers_affected": (int, "How many customers were affected."),
    "orders_affected": (int, "How many orders were lost or delayed."),
    "revenue_at_risk": (float, "Revenue at risk, in the shop's currency."),
    "trigger": (str, "What set it off (a deploy, a provider outage …)."),
    "root_cause": (str, "Why it could happen at all."),
    "detection": (str, "How we found out, and how it could have been sooner."),
    "resolution": (str, "What ended it."),
    "went_well": (str, "What went well."),
    "went_badly": (str, "What went badly."),
    "lucky": (str, "Where we got lucky."),
}


def _postmortem_options(fn: F) -> F:
    for name, (kind, text) in reversed(_POSTMORTEM_FIELDS.items()):
        fn = click.option(f"--{name.replace('_', '-')}", name, help=text,
                          **_NUMBER_OPTION.get(kind, {"type": kind}))(fn)
    return fn


def _amount(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    # FloatRange lets nan through (every comparison with it is false) and inf is no amount.
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not an amount (expected a number of 0 or more)")
    return value


# Counts of customers and orders and the revenue at risk are never negative.
_NUMBER_OPTION: dict[type, dict[str, Any]] = {
    int: {"type": click.IntRange(min=0)},
    float: {"type": click.FloatRange(min=0), "callback": _amount},
}


@main.command()
@click.argument("incident_id", type=int)
@_postmortem_options
@click.option("--mitigated-at", metavar="T", help="When the impact stopped (RFC 3339 or -2h).")
@click.option("--by", help="Who edits (default $INCIDENT_USER or $USER).")
@pass_ctx
@command
def edit(c: Ctx, incident_id: int, mitigated_at: str | None, by: str | None,
         **fields: Any) -> None:
    """Write the postmortem fields of an incident (only the ones given change).

    Example:  incident edit 42 --root-cause "expired TLS certificate" --orders-affected 310
    """
    now = utcnow()
    values = {k: v for k, v in fields.items() if v is not None}
    if mitigated_at is not None:
        values["mitigated_at"] = _time(mitigated_at, now)
    if not values:
        raise UsageError("nothing to change: give at least one field (see incident edit --help)")
    with _store(c.project) as store:
        if "mitigated_at" in values:
            _check_mitigated_at(store.get(incident_id), values["mitigated_at"], mitigated_at, now)
        store.update_postmortem(incident_id, at=now, actor=_actor(by), **values)
    click.echo(f"#{incident_id}: postmortem updated ({', '.join(sorted(values))})")


def _check_mitigated_at(incident: Incident, at: datetime, given: str | None, now: datetime) -> None:
    """Refuse a mitigation before the incident began (its first breaching point) or in the future."""
    if at < incident.detected_at:
        raise UsageError(f"--mitigated-at {given} ({iso(at)}) is before incident #{incident.id} "
                         f"began ({iso(incident.detected_at)}): impact cannot stop before it starts")
    if at > now:
        raise UsageError(f"--mitigated-at {given} ({iso(at)}) is in the future (now {iso(now)}): "
                         "give the time the impact stopped")


@main.group()
def action() -> None:
    """Action items: the follow-ups of postmortems, tracked across incidents."""


@action.command("add")
@click.argument("incident_id", type=int)
@click.argument("text")
@click.option("--owner", default="", help="Who does it.")
@click.option("--due", type=click.DateTime(["%Y-%m-%d"]), help="Due date, YYYY-MM-DD.")
@pass_ctx
@command
def action_add(c: Ctx, incident_id: int, text: str, owner: str, due: datetime | None) -> None:
    """Add an action item to an incident's postmortem.

    Example:  incident action add 42 "alert on certificate expiry" --owner ana --due 2026-12-15
    """
    _said(text, "TEXT", 'e.g. incident action add 42 "alert on certificate expiry"')
    with _store(c.project) as store:
        item = store.add_action_item(incident_id, text=text, owner=owner,
                                     due=due.date() if due else None, at=utcnow())
    click.echo(f"action item {item.id} added to #{incident_id}")


@action.command("done")
@click.argument("item_id", type=int)
@pass_ctx
@command
def action_done(c: Ctx, item_id: int) -> None:
    """Mark an action item done.

    Example:  incident action done 7
    """
    with _store(c.project) as store:
        item, changed = store.finish_action_item(item_id, at=utcnow())
    click.echo(f"action item {item.id} done" if changed else f"action item {item.id} was already done")


@action.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include done items.")
@json_option
@pass_ctx
@command
def action_list(c: Ctx, show_all: bool, as_json: bool) -> None:
    """List open action items across incidents, by due date; overdue ones are flagged.

    Example:  incident action list --json
    """
    from incident.reports.postmortem import item_json

    with _store(c.project) as store:
        rows = [item_json(a, utcnow().date()) for a in store.action_items(open_only=not show_all)]
    if as_json:
        _emit(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:>4} #{r['incident']:<5} {r['status']:<5} due {r['due'] or '-':<10} "
                   f"{r['owner'] or '-':<12} {r['text']}" + ("  OVERDUE" if r["overdue"] else ""))
    if not rows:
        click.echo("no open action items")


@main.group()
def report() -> None:
    """Postmortems and trend reports (Markdown or self-contained HTML) under reports/."""


_format_option = click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="html",
                              show_default=True)
_output_option = click.option("-o", "--output", metavar="FILE",
                              help="Where to write it (default: a stable name under reports/).")


@report.command("postmortem")
@click.argument("incident_id", type=int)
@_format_option
@_output_option
@json_option
@pass_ctx
@command
def report_postmortem(c: Ctx, incident_id: int, fmt: str, output: str | None, as_json: bool) -> None:
    """Write an incident's postmortem: timeline, times to detect/ack/mitigate/resolve, plots.

    Example:  incident report postmortem 42 --format html   (writes reports/postmortem-42.html)
    """
    from incident.reports import postmortem
    from incident.reports.render import output_path, write

    with _store(c.project) as store:
        built = postmortem.build(c.project, store, incident_id, utcnow(), app.sources(c.project),
                                 plots=not as_json)
    if as_json:
        return _emit(postmortem.report_json(built))
    path = output_path(c.root, f"postmortem-{incident_id}", fmt, output)
    click.echo(f"wrote {write(path, postmortem.render_report(built, fmt, c.project))}")


@report.command("trends")
@click.option("--since", default="30d", show_default=True, help="How far back (a duration).")
@_format_option
@_output_option
@json_option
@pass_ctx
@command
def report_trends(c: Ctx, since: str, fmt: str, output: str | None, as_json: bool) -> None:
    """Write the trends report: MTTA/MTTR per week, recurring and flapping checks, drills.

    Example:  incident report trends --since 30d --format md   (writes reports/trends-30d.md)
    """
    from incident.reports import trends
    from incident.reports.render import output_path, write

    with _store(c.project) as store:
        built = trends.build(c.project, store, _duration(since, "--since"), utcnow(),
                             plot=not as_json)
    if as_json:
        return _emit(trends.report_json(built))
    path = output_path(c.root, f"trends-{since}", fmt, output)
    click.echo(f"wrote {write(path, trends.render_report(built, fmt, c.project))}")


@main.command()
@click.argument("incident_id", type=int)
@click.argument("message")
@click.option("--to", "to", multiple=True, metavar="CHANNEL",
              help="Also send it to this channel (repeatable).")
@click.option("--by", help="Who posts it (default $INCIDENT_USER or $USER).")
@pass_ctx
@command
def update(c: Ctx, incident_id: int, message: str, to: tuple[str, ...], by: str | None) -> None:
    """Post a status update to the incident's channels and the stakeholders; on the timeline.

    Example:  incident update 42 "Failover done, payments recovering" --to managers
    """
    from incident.notify.actions import post_update

    _said(message, "MESSAGE", 'e.g. incident update 42 "Failover done, payments recovering"')
    with _store(c.project) as store:
        incident, attempts = post_update(c.project, store, incident_id, message,
                                         actor=_actor(by), now=utcnow(), to=to)
    click.echo(f"#{incident.id} update posted; " + (", ".join(
        f"{a.item.envelope.channel}: {'delivered' if a.ok else 'failed, will retry'}"
        for a in attempts) or "no channel to send it to"))


@main.group()
def drill() -> None:
    """Drills: rehearse emergencies through the real pipeline, scored (drills/*.yaml)."""


@drill.command("run")
@click.argument("names", nargs=-1, required=True)
@click.option("--at", "at", metavar="T", help="Start of the scenario's clock (default: the last "
              "DURATION of data for a replay, now for --live).")
@click.option("--live", is_flag=True, help="Run in real time for a game day: people ack, do "
              "runbook steps and resolve with the normal commands, and are scored.")
@click.option("--by", help="Who runs it (default $INCIDENT_USER or $USER).")
@json_option
@pass_ctx
@command
def drill_run(c: Ctx, names: tuple[str, ...], at: str | None, live: bool, by: str | None,
              as_json: bool) -> None:
    """Replay a scenario's faults through the checks, store and routing; print the scorecard.

    Exit 1 when an expectation failed or the steady state was not met (aborted).

    \b
    Example:  incident drill run database-failure
              incident drill run payment-failure --at 2026-11-24T02:00:00Z
              incident drill run database-failure --live --by alice
    """
    from incident.drills.run import select

    cards = []
    with _store(c.with_drills) as store:
        for d in select(c.with_drills, names):
            start = _time(at, utcnow() if live else utcnow() - d.duration)
            cards.append(app.run_drill(c.with_drills, store, d, start=start, live=live,
                                       actor=_actor(by)))
    _drill_results(c.with_drills, cards, as_json)


def _drill_results(project: Project, cards: list[Any], as_json: bool) -> None:
    from incident.drills import scorecard

    if as_json:
        _emit([card.as_dict() | {"saved": str(path)} for card, path in cards])
    else:
        for card, path in cards:
            click.echo(scorecard.text(card, app.drill_window(card.start, card.end, project)))
            click.echo(f"  scorecard: {path.relative_to(project.root)}")
    if any(card.status != "passed" for card, _ in cards):
        sys.exit(1)


@drill.command("due")
@click.option("--by", help="Who runs them (default $INCIDENT_USER or $USER).")
@json_option
@pass_ctx
@command
def drill_due(c: Ctx, by: str | None, as_json: bool) -> None:
    """Run every drill whose schedule came due since its last run (for cron).

    \b
    Example:  */10 * * * *  incident --project /srv/shop drill due
    """
    with _store(c.with_drills) as store:
        cards = app.run_due_drills(c.with_drills, store, now=utcnow(), actor=_actor(by))
    if not cards and not as_json:
        click.echo("no drill is due")
    _drill_results(c.with_drills, cards, as_json)


@drill.command("list")
@json_option
@pass_ctx
@command
def drill_list(c: Ctx, as_json: bool) -> None:
    """Every drill with its schedule, last run and result, and when it is next due.

    Example:  incident drill list
    """
    from incident.drills.schedule import status
    from incident.views import drill_list_text, drill_rows

    with _store(c.with_drills) as store:
        rows = drill_rows(status(c.with_drills.drills, store.drill_runs(limit=10_000), utcnow()),
                          c.with_drills)
    _emit(rows) if as_json else click.echo(drill_list_text(rows))


@drill.command("history")
@click.argument("name")
@click.option("--limit", type=_COUNT, default=20, show_default=True,
              help="Show at most this many runs.")
@json_option
@pass_ctx
@command
def drill_history(c: Ctx, name: str, limit: int, as_json: bool) -> None:
    """A drill's past runs: when, how, the result and each failed expectation's reason.

    Example:  incident drill history database-failure
    """
    from incident.drills.run import select
    from incident.views import drill_history_text, drill_run_json

    select(c.with_drills, [name])
    with _store(c.with_drills) as store:
        runs = store.drill_runs(name, limit=limit)
    if as_json:
        return _emit([drill_run_json(r) for r in runs])
    click.echo(drill_history_text(name, runs, c.with_drills))


@drill.command("coverage")
@json_option
@pass_ctx
@command
def drill_coverage(c: Ctx, as_json: bool) -> None:
    """Checks no drill exercises and runbooks no drill rehearses.

    Example:  incident drill coverage
    """
    from incident.drills.coverage import coverage
    from incident.views import coverage_json, coverage_text

    cov = coverage(c.with_drills)
    _emit(coverage_json(cov)) if as_json else click.echo(coverage_text(cov))


@drill.command("generate")
@click.argument("check_name")
@click.option("--write", "write_file", is_flag=True,
              help="Write drills/CHECK-drill.yaml instead of printing it.")
@pass_ctx
@command
def drill_generate(c: Ctx, check_name: str, write_file: bool) -> None:
    """A starter scenario whose fault breaches CHECK's detector, to edit and run.

    Example:  incident drill generate db-connections --write
    """
    from incident.drills.generate import scenario

    text = scenario(_known_check(c.with_drills, check_name), c.with_drills.settings)
    if not write_file:
        return click.echo(text, nl=False)
    path = c.root / "drills" / f"{check_name}-drill.yaml"
    if path.exists():
        raise UsageError(f"{path.relative_to(c.root)} exists; remove it or print with no --write")
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path.relative_to(c.root)}; try: incident drill run {check_name}-drill")


@main.group()
def notify() -> None:
    """Notification routing and the outbox."""


@notify.command("routes")
@click.option("--severity", type=click.Choice([s.value for s in Severity]), default="high",
              show_default=True)
@click.option("--check", "check_name", help="The check the incident would come from.")
@click.option("--labels", "labels", multiple=True, metavar="K=V", help="A label (repeatable).")
@json_option
@pass_ctx
@command
def notify_routes(c: Ctx, severity: str, check_name: str | None, labels: tuple[str, ...],
                  as_json: bool) -> None:
    """Show which routes and channels a hypothetical incident would reach (URLs redacted).

    Example:  incident notify routes --severity critical --labels team=payments
    """
    from incident.notify.actions import route_test

    result = route_test(c.project, severity=severity, check=check_name,
                        labels=dict(_label(x) for x in labels))
    if as_json:
        return _emit(result)
    for r in result["routes"]:
        click.echo(f"{r['name']}: notify {', '.join(x['channel'] for x in r['notify']) or '-'}"
                   + (f"; escalate to {', '.join(r['escalate']['notify'])}" if r["escalate"]
                      else ""))
    click.echo(f"channels: {', '.join(result['channels']) or 'none (no route matches)'}")


@notify.command("pending")
@click.option("--all", "show_all", is_flag=True, help="Include sent notifications.")
@json_option
@pass_ctx
@command
def notify_pending(c: Ctx, show_all: bool, as_json: bool) -> None:
    """List the outbox: notifications waiting for a retry, and dead ones.

    Example:  incident notify pending --json
    """
    with _store(c.project) as store:
        items = store.outbox(statuses=None if show_all else ("pending", "dead"))
    rows = [{"id": i.id, "incident_id": i.envelope.incident_id, "event": i.envelope.event_key,
             "channel": i.envelope.channel, "status": i.status, "attempts": i.attempts,
             "next_attempt_at": i.next_attempt_at.isoformat(), "last_error": i.last_error}
            for i in items]
    if as_json:
        return _emit(rows)
    for r in rows:
        click.echo(f"{r['id']:>6} #{r['incident_id']} {r['event']} → {r['channel']}: "
                   f"{r['status']}, {r['attempts']} attempts" + (
                       f", next {r['next_attempt_at']}" if r["status"] == "pending" else "")
                   + (f" ({r['last_error']})" if r["last_error"] else ""))


@main.group()
def silence() -> None:
    """Silences: matching incidents still open and are recorded, but do not page."""


@silence.command("add")
@click.option("--match", "matchers", multiple=True, required=True, metavar="K=V|K=~RE",
              help="A label to match, exactly or by regex (repeatable).")
@click.option("--for", "duration", default="2h", show_default=True, help="How long it lasts.")
@click.option("--comment", default="", help="Why.")
@click.option("--by", help="Who (default $INCIDENT_USER or $USER).")
@json_option
@pass_ctx
@command
def silence_add(c: Ctx, matchers: tuple[str, ...], duration: str, comment: str, by: str | None,
                as_json: bool) -> None:
    """Silence matching incidents for a while.

    Example:  incident silence add --match team=dba --match service=~db-.* --for 2h --comment "failover"
    """
    from incident.notify.silence import describe, parse_matchers

    try:
        match, match_re = parse_matchers(matchers)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    now = utcnow()
    ends_at = now + _duration(duration, "--for")
    with _store(c.project) as store:
        s = store.add_silence(match=match, match_re=match_re, starts_at=now, ends_at=ends_at,
                              comment=comment, created_by=_actor(by), at=now)
    _emit(_silence_json(s)) if as_json else click.echo(
        f"silence #{s.id} ({describe(s)}) until {app.local_time(s.ends_at, c.project)}")


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
@json_option
@pass_ctx
@command
def silence_list(c: Ctx, show_all: bool, as_json: bool) -> None:
    """List the silences in force (or all of them).

    Example:  incident silence list --all
    """
    from incident.notify.silence import describe

    with _store(c.project) as store:
        items = store.silences(active_at=None if show_all else utcnow())
    if as_json:
        return _emit([_silence_json(s) for s in items])
    now = utcnow()
    for s in items:
        ended = s.expired_at or (s.ends_at if s.ends_at <= now else None)
        when = (f"ended {app.local_time(ended, c.project)}" + (" (expired early)" if s.expired_at else "")
                if ended else f"until {app.local_time(s.ends_at, c.project)}")
        click.echo(f"#{s.id} {describe(s)} {when} by {s.created_by}"
                   + (f": {s.comment}" if s.comment else ""))


@silence.command("expire")
@click.argument("silence_id", type=int)
@pass_ctx
@command
def silence_expire(c: Ctx, silence_id: int) -> None:
    """End a silence now.

    Example:  incident silence expire 3
    """
    with _store(c.project) as store:
        s = store.expire_silence(silence_id, at=utcnow())
    click.echo(f"silence #{s.id} expired")


def _silence_json(s: Any) -> dict[str, Any]:
    return {"id": s.id, "match": dict(s.match), "match_re": dict(s.match_re),
            "starts_at": s.starts_at.isoformat(), "ends_at": s.ends_at.isoformat(),
            "expired_at": s.expired_at.isoformat() if s.expired_at else None,
            "comment": s.comment, "created_by": s.created_by}


def _known_check(project: Project, name: str) -> Check:
    try:
        return project.check(name)
    except KeyError:
        raise NotFound(f"no check named {name!r} (see: incident checks list)") from None


def _known_runbook(project: Project, name: str) -> Any:
    if name not in project.runbooks:
        raise NotFound(f"no runbook {name!r} in runbooks/ (known: "
                       f"{', '.join(sorted(project.runbooks)) or 'none'})")
    return project.runbooks[name]


def _said(text: str, what: str, example: str) -> None:
    # A blank title or message still pages people or lands on the timeline, telling them nothing.
    if not text.strip():
        raise UsageError(f"{what} is empty (got {text!r}): say what it is about, {example}")


def _label(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--label takes K=V, got {text!r}")
    return key, value


def _shard(text: str | None) -> Shard | None:
    from incident.runners import parse_shard

    try:
        return parse_shard(text) if text else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _duration(text: str, option: str) -> timedelta:
    try:
        delta = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    # Every duration the CLI takes is a length (a step, a look-back, a silence): zero is none.
    if delta <= timedelta(0):
        raise UsageError(f"{option} must be longer than zero, got {text!r} (e.g. 90s, 5m, 1h30m, 7d)")
    return delta


class _store:
    """`with _store(project) as store:` — open the store, always close it."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def __enter__(self) -> Any:
        self.store = app.open_store(self.project)
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()
