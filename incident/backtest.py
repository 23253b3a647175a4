"""`incident checks backtest`: the incidents a check would have opened, from one read of history.

A cron run at time t reads the check's window [t - lookback, t], judges it and applies the
engine's incident rules. Detectors are causal and PromQL evaluates each point on its own, so
the window of every run is a slice of one frame read once over [from - lookback, to]; `detect`
runs once over that frame, and each step's findings are derived from the episodes and from
vectorised per-row masks (present, beyond `clear`, last seen). The engine's rules — open,
keep, hysteresis, no_data, reopen within `reopen_window` — are then replayed step by step on
those findings, exactly as the store applies them.

A run sees only its window, so an episode that began at or before the window start looks
different to it (its pending run is cut at the window start, its breach may have left the
window). At the steps where an episode straddles the window start, the backtest judges that
step's own window with the engine's `judge`, which is what a cron run does: the result is
the same by construction, at the cost of one `judge` per such step (`Backtest.judged`).
Threshold and absent episodes are derived this way. So are change episodes, whose window
judges like the whole history from `offset` after its start (before that a point has no
reference: no evidence, which holds and never breaches); what straddles that point is
judged. A step whose window holds every row of the frame that has data sees exactly what
the whole history shows, so it is derived for anomaly too (a backtest that starts where
the data does, a check test shorter than the lookback). Everything else (anomaly's
baseline otherwise, burn_rate) is judged at every step, still from the one read.

The one difference that remains: a frame cannot tell a series that returned NaN values
(0/0) for a whole window from a series that returned nothing. Both count as absent here; a
cron run keeps the first as a column. That changes the outcome only for `no_data: alert`
checks whose query yields NaN for a whole lookback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from incident.engine import Finding, State, fingerprint, judge
from incident.errors import UsageError
from incident.model import (
    AbsentParams,
    AnomalyParams,
    ChangeParams,
    Check,
    Labels,
    NoData,
    ThresholdParams,
)
from incident.timeutil import align

if TYPE_CHECKING:
    import pandas as pd

    from incident.sources import Source

# Prometheus refuses more than 11,000 points per series in one query_range.
MAX_POINTS = 10_000
_NONE = np.iinfo(np.int64).max  # "no such row" in the row-index arrays below
# Detectors whose episodes are derived from one pass over the frame (see the module docstring).
_DERIVED = (ThresholdParams, AbsentParams, ChangeParams, AnomalyParams)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestIncident:
    """One incident a run at every step would have opened (and perhaps reopened and resolved)."""

    fingerprint: str
    labels: Labels
    detected_at: datetime
    opened_at: datetime
    resolved_at: datetime | None = None
    reopened: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Backtest:
    """The outcome of a backtest: the steps replayed and the incidents, by opened_at."""

    check: str
    start: datetime
    end: datetime
    every: timedelta
    steps: int
    judged: int  # steps where an episode straddled the window start: judged on their own window
    incidents: tuple[BacktestIncident, ...]
    changed_at: tuple[datetime, ...] = ()  # the runs that opened, reopened or resolved one
    blind: int = 0  # runs whose window held no data at all: their quiet is no all-clear


def steps(check: Check, start: datetime, end: datetime) -> list[datetime]:
    """The run times in [start, end]: every multiple of the check's `every`, as cron aligns them."""
    first = align(start, check.every)
    if first < start:
        first += check.every
    count = int((end - first) / check.every) + 1 if end >= first else 0
    return [first + i * check.every for i in range(count)]


def read(check: Check, source: Source, start: datetime, end: datetime) -> pd.DataFrame:
    """The frame a run reads (the check's query and its detector's own), over [start, end].

    Read in chunks a Prometheus will answer, and put on the full step grid.
    """
    import pandas as pd

    from incident.detectors import inputs

    def one(query: str) -> pd.DataFrame:
        chunks = []
        at = start
        while at <= end:
            stop = min(end, at + (MAX_POINTS - 1) * check.every)
            chunks.append(source.query_range(query, at, stop, check.every))
            at = stop + check.every
        data = pd.concat(chunks, axis=0) if len(chunks) > 1 else chunks[0]
        grid = pd.date_range(start, end, freq=check.every, name="time")
        return data.reindex(index=grid, columns=pd.Index(sorted(data.columns), dtype=object))

    return inputs.combine({name: one(query)
                           for name, query in inputs.queries(check.query, check.detector).items()})


def backtest(check: Check, source: Source, start: datetime, end: datetime,
             reopen_window: timedelta) -> Backtest:
    """The incidents `incident check` run at every step in [start, end] would have produced."""
    from incident.timeutil import format_duration, iso

    if end < start:
        raise UsageError(f"the period ends ({iso(end)}) before it starts ({iso(start)}): "
                         "give --from before --to")
    times = steps(check, start, end)
    if not times:
        raise UsageError(f"no run of {check.name} falls between {iso(start)} and {iso(end)} "
                         f"(it runs every {format_duration(check.every)})")
    span = _rows_per_window(check)
    data = read(check, source, times[0] - check.lookback, times[0] - check.lookback
                + (len(times) - 1 + span) * check.every)
    findings = _Findings(check, data, span, times)
    changed: list[datetime] = []
    incidents = _replay(check, times, findings, reopen_window, changed)
    return Backtest(check=check.name, start=start, end=end, every=check.every, steps=len(times),
                    judged=findings.judged, incidents=tuple(incidents),
                    changed_at=tuple(changed), blind=findings.blind)


def _rows_per_window(check: Check) -> int:
    """K: a run's window holds rows j … j+K of the frame read from the first window's start."""
    return int(check.lookback / check.every)


class _Findings:
    """Each step's findings, as `judge` would return them on that step's window."""

    def __init__(self, check: Check, data: pd.DataFrame, span: int, times: Sequence[datetime]
                 ) -> None:
        from incident.detectors import detect

        self.check, self.data, self.span, self.times = check, data, span, times
        self.index = [t.to_pydatetime() for t in data.index]
        self.judged = 0
        n_steps = len(times)
        values = data.to_numpy(dtype=np.float64)
        n = values.shape[0]
        notna = ~np.isnan(values)
        derived = isinstance(check.detector, _DERIVED) and _pairs_alike(data)
        firings = detect(data, check.detector, self.index[-1]) if n and derived else []
        row = {t: i for i, t in enumerate(self.index)}

        # Group the columns, and every firing, by fingerprint.
        self.groups: dict[str, dict[str, Any]] = {}

        def group(labels: Labels) -> dict[str, Any]:
            fp, glabels = fingerprint(check.name, check.group_by, labels)
            return self.groups.setdefault(fp, {"labels": glabels, "columns": [], "firings": []})

        for c, column in enumerate(data.columns):
            group(column)["columns"].append(c)
        for f in firings:
            group(f.labels)["firings"].append(f)

        # A column is in step j's window when it has a number in rows j … j+K.
        counts = np.vstack([np.zeros((1, values.shape[1]), dtype=np.int64),
                            np.cumsum(notna, axis=0)])
        j = np.arange(n_steps)
        in_window = counts[j + span + 1] - counts[j] > 0  # (steps, columns)
        self.blind = int((~in_window.any(axis=1)).sum()) if values.shape[1] else n_steps

        # Threshold, absent and change episodes differ between a window and the whole history
        # only where they straddle the row from which the window judges like the history
        # (marked below). Anomaly's baseline reaches back past any window: judged whole,
        # unless the window holds all the data there is. So does burn_rate's.
        blind = _blind_rows(check) if derived else None
        self.fallback = np.full(n_steps, blind is None)
        for g in self.groups.values():
            cols = g["columns"]
            last = values[j + span][:, cols] if cols else np.empty((n_steps, 0))
            g["exists"] = in_window[:, cols].any(axis=1) if cols else np.zeros(n_steps, bool)
            g["present"] = [np.flatnonzero(~np.isnan(r)) for r in last]
            g["last"] = last
            rows_present = notna[:, cols].any(axis=1) if cols else np.zeros(n, bool)
            g["missing_since"] = _missing_since(rows_present, j, span)
            g["hold_ended"] = _hold_ended(check, values[:, cols], j, span)
            detected = np.full(n_steps, _NONE, dtype=np.int64)
            cleared = np.full(n_steps, -1, dtype=np.int64)
            for f in g["firings"]:
                s, fr = row[f.start], row[f.fired]
                e = row[f.end] if f.end is not None else _NONE
                lo, hi = max(fr - span, 0), min(e - span, n_steps) if e != _NONE else n_steps
                if hi > lo:  # active: fired at or before the last row, ends after it
                    detected[lo:hi] = np.minimum(detected[lo:hi], s)
                    g["exists"][lo:hi] = True
                # Ended inside the judged part of the window: rows j+O < e ≤ j+K.
                if e != _NONE:
                    lo, hi = max(e - span, 0), min(e - (blind or 0), n_steps)
                    if hi > lo:
                        cleared[lo:hi] = np.maximum(cleared[lo:hi], e)
                        g["exists"][lo:hi] = True
                # Straddling row j+O: this run sees the episode cut; judge its window whole.
                if blind is not None:
                    lo, hi = max(s - blind, fr - span, 0), min(e - blind, n_steps)
                    if hi > lo:
                        self.fallback[lo:hi] = True
            g["detected"], g["cleared"] = detected, cleared
        if derived:
            # Up to the first row with data, a window holds all the data the frame has, so
            # its run sees what the one pass saw.
            first = int(np.argmax(notna.any(axis=1))) if notna.any() else n
            self.fallback[:first + 1] = False

    def at(self, j: int) -> list[Finding]:
        """The findings of the run at step j."""
        if self.fallback[j]:
            self.judged += 1
            window = self.data.iloc[j:j + self.span + 1]
            window = window.loc[:, window.notna().any(axis=0).to_numpy()]
            return judge(self.check, window, self.times[j])
        check = self.check
        out = []
        for fp, g in sorted(self.groups.items()):
            if not g["exists"][j]:
                continue
            present = g["last"][j][g["present"][j]]
            if not len(present) and not isinstance(check.detector, AbsentParams):
                if check.no_data is NoData.ALERT:
                    since = self.index[g["missing_since"][j]]
                    out.append(Finding(fingerprint=fp, labels=g["labels"], state=State.FIRING,
                                       detected_at=since, fired_at=since, reason="no data"))
                else:
                    out.append(Finding(fingerprint=fp, labels=g["labels"], state=State.NO_DATA))
            elif g["detected"][j] != _NONE:
                at = self.index[g["detected"][j]]
                out.append(Finding(fingerprint=fp, labels=g["labels"], state=State.FIRING,
                                   detected_at=at, fired_at=at))
            else:
                holding = _holding(check, present)
                cleared = g["cleared"][j]
                if not holding and g["hold_ended"][j] >= 0:
                    cleared = max(cleared, g["hold_ended"][j])
                out.append(Finding(fingerprint=fp, labels=g["labels"],
                                   state=State.FIRING if holding else State.CLEAR,
                                   cleared_at=self.index[cleared] if cleared >= 0 else None))
        return out


def _pairs_alike(data: pd.DataFrame) -> bool:
    """True when every window pairs the detector's extra columns with its own as the frame does.

    A lone extra column (a `total` summed over everything) applies to every series; with
    several, a window that lost all but one of them would apply that one to every series.
    """
    from incident.detectors.inputs import split

    return all(extra.shape[1] <= 1 for extra in split(data)[1].values())


def _blind_rows(check: Check) -> int | None:
    """O: the rows at a window's start where its run judges unlike the whole history does.

    A run at step j judges rows j+O … j+K exactly as one pass over the whole history, and
    rows j … j+O-1 as no evidence either way (they hold, they never breach): 0 for
    threshold and absent, the `offset` for change (no reference inside the window). None
    when no such O exists (anomaly's baseline, burn_rate's windows).
    """
    p = check.detector
    if isinstance(p, (ThresholdParams, AbsentParams)):
        return 0
    if isinstance(p, ChangeParams):
        return -(-p.offset // check.every)  # a row that is not on the grid has no reference
    return None


def _missing_since(rows_present: np.ndarray, j: np.ndarray, span: int) -> np.ndarray:
    """Per step, the row after the group's last data row in the window, else the window's first."""
    seen = np.where(rows_present, np.arange(len(rows_present)), -1)
    last_seen = np.maximum.accumulate(seen) if len(seen) else seen
    at_end = last_seen[j + span]
    return np.where(at_end >= j, np.minimum(at_end + 1, j + span), j)


def _hold_ended(check: Check, values: np.ndarray, j: np.ndarray, span: int) -> np.ndarray:
    """Per step, the row after the group last sat beyond `clear` in the window; -1 for none."""
    p = check.detector
    if not isinstance(p, ThresholdParams) or p.clear is None or not values.shape[1]:
        return np.full(len(j), -1, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        beyond = (values > p.clear) if p.above is not None else (values < p.clear)
    rows = np.asarray(beyond.any(axis=1))
    seen = np.where(rows, np.arange(rows.shape[0]), -1)
    last = np.maximum.accumulate(seen)[j + span]
    return np.where((last >= j) & (last < j + span), last + 1, -1)


def _holding(check: Check, values: np.ndarray) -> bool:
    p = check.detector
    if not isinstance(p, ThresholdParams) or p.clear is None:
        return False
    if p.above is not None:
        return bool((values > p.clear).any())
    return p.below is not None and bool((values < p.clear).any())


@dataclass(slots=True)
class _Open:
    fingerprint: str
    labels: Labels
    detected_at: datetime
    opened_at: datetime
    resolved_at: datetime | None = None
    reopened: int = 0


def _replay(check: Check, times: Sequence[datetime], findings: _Findings,
            reopen_window: timedelta, changed: list[datetime]) -> list[BacktestIncident]:
    """The engine's incident rules (Engine._apply, Store.open_incident), one step at a time.

    Appends to `changed` each run time at which an incident opened, reopened or resolved.
    """
    every: list[_Open] = []
    active: dict[str, _Open] = {}
    latest: dict[str, _Open] = {}  # the last incident of each fingerprint
    for j, now in enumerate(times):
        found = findings.at(j)
        covered = {f.fingerprint for f in found}
        found += [Finding(fingerprint=fp, labels=Labels(), state=State.NO_DATA)
                  for fp in sorted(active) if fp not in covered]
        for f in found:
            current = active.get(f.fingerprint)
            if f.state is State.FIRING:
                if current is not None or f.fired_at is None:
                    continue
                last = latest.get(f.fingerprint)
                if last is not None and last.resolved_at is not None \
                        and last.resolved_at >= now - reopen_window:
                    last.reopened += 1
                    last.resolved_at = None
                    active[f.fingerprint] = last
                else:
                    new = _Open(fingerprint=f.fingerprint, labels=f.labels,
                                detected_at=f.detected_at or now, opened_at=now)
                    every.append(new)
                    active[f.fingerprint] = latest[f.fingerprint] = new
                changed.append(now)
            elif current is not None and (f.state is State.CLEAR
                                          or check.no_data is NoData.RESOLVE):
                cleared = f.cleared_at
                current.resolved_at = cleared if cleared and cleared > current.opened_at else now
                del active[f.fingerprint]
                changed.append(now)
    return [BacktestIncident(fingerprint=o.fingerprint, labels=o.labels,
                             detected_at=o.detected_at, opened_at=o.opened_at,
                             resolved_at=o.resolved_at, reopened=o.reopened) for o in every]


def incident_json(incident: BacktestIncident) -> dict[str, Any]:
    """A backtest incident for --json: fingerprint, labels and the three times (RFC 3339)."""
    from incident.timeutil import iso

    return {"fingerprint": incident.fingerprint, "labels": incident.labels.as_dict(),
            "detected_at": iso(incident.detected_at), "opened_at": iso(incident.opened_at),
            "resolved_at": iso(incident.resolved_at), "reopened": incident.reopened}


def text(result: Backtest) -> str:
    """A table, one incident a line, then a summary line."""
    from incident.timeutil import format_duration, iso

    lines = [f"{'fingerprint':<40} {'detected_at':<21} {'opened_at':<21} {'resolved_at':<21} "
             "reopened"]
    for i in result.incidents:
        lines.append(f"{i.fingerprint:<40} {iso(i.detected_at):<21} {iso(i.opened_at):<21} "
                     f"{iso(i.resolved_at) or '-':<21} {i.reopened}")
    lines.append(f"{len(result.incidents)} incident{'s' * (len(result.incidents) != 1)} from "
                 f"{result.steps} runs of {result.check}, one every "
                 f"{format_duration(result.every)}")
    return "\n".join(lines)
