"""The drill journal: one row per run with its scorecard, and the incidents a run opened."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from incident.errors import NotFound
from incident.model import DrillRun, Incident
from incident.store.records import from_row, incident_from_row
from incident.store.schema import drill_runs, incidents, outbox
from incident.store.types import utc

if TYPE_CHECKING:
    from incident.store.db import Database


class DrillMixin:
    """Store methods for drills (mixed into Store)."""

    _db: Database

    def start_drill_run(self, drill: str, *, mode: str, at: datetime, sim_start: datetime,
                        sim_end: datetime, actor: str) -> DrillRun:
        """A new journal row in state `running`."""
        values = {"drill": drill, "mode": mode, "status": "running", "started_at": utc(at, "at"),
                  "sim_start": utc(sim_start, "sim_start"), "sim_end": utc(sim_end, "sim_end"),
                  "actor": actor, "scorecard": "{}"}

        def tx(conn: sa.Connection) -> DrillRun:
            key = conn.execute(sa.insert(drill_runs).values(**values)).inserted_primary_key
            assert key is not None
            return _run(conn, key[0])

        return self._db.run("start a drill run", tx, write=True)

    def finish_drill_run(self, run_id: int, *, status: str, at: datetime,
                         scorecard: Mapping[str, Any]) -> DrillRun:
        """Record how a run ended, with its scorecard."""
        def tx(conn: sa.Connection) -> DrillRun:
            conn.execute(sa.update(drill_runs).where(drill_runs.c.id == run_id).values(
                status=status, finished_at=utc(at, "at"),
                scorecard=json.dumps(scorecard, sort_keys=True, default=str)))
            return _run(conn, run_id)

        return self._db.run("finish a drill run", tx, write=True)

    def drill_run(self, run_id: int) -> DrillRun:
        """One journal row; NotFound when there is none."""
        return self._db.run("read a drill run", lambda conn: _run(conn, run_id), write=False)

    def drill_runs(self, drill: str | None = None, *, since: datetime | None = None,
                   limit: int = 100) -> builtins.list[DrillRun]:
        """Journal rows, newest first."""
        query = sa.select(drill_runs)
        if drill is not None:
            query = query.where(drill_runs.c.drill == drill)
        if since is not None:
            query = query.where(drill_runs.c.started_at >= utc(since, "since"))
        query = query.order_by(drill_runs.c.started_at.desc(), drill_runs.c.id.desc()).limit(limit)
        return self._db.run("list drill runs",
                            lambda conn: [_from_row(r) for r in conn.execute(query)], write=False)

    def drill_incidents(self, run: DrillRun) -> builtins.list[Incident]:
        """The incidents one run opened, oldest first (no timelines)."""
        prefix = run.fingerprint_prefix
        query = sa.select(incidents).where(
            incidents.c.drill.is_(sa.true()),
            sa.func.substr(incidents.c.fingerprint, 1, len(prefix)) == prefix,
        ).order_by(incidents.c.opened_at, incidents.c.id)
        return self._db.run("list drill incidents",
                            lambda conn: [incident_from_row(r) for r in conn.execute(query)],
                            write=False)

    def abandon_drill_messages(self, run: DrillRun) -> int:
        """Give up the run's undelivered messages (the drill is over); how many there were."""
        prefix = run.fingerprint_prefix
        mine = sa.select(incidents.c.id).where(
            incidents.c.drill.is_(sa.true()),
            sa.func.substr(incidents.c.fingerprint, 1, len(prefix)) == prefix)
        query = sa.update(outbox).where(outbox.c.status == "pending",
                                        outbox.c.incident_id.in_(mine)).values(
            status="dead", last_error="drill ended before delivery")
        return self._db.run("abandon drill messages",
                            lambda conn: conn.execute(query).rowcount, write=True)


def _run(conn: sa.Connection, run_id: int) -> DrillRun:
    row = conn.execute(sa.select(drill_runs).where(drill_runs.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"no drill run #{run_id}")
    return _from_row(row)


def _from_row(row: sa.Row) -> DrillRun:
    return from_row(DrillRun, row, scorecard=json.loads(row._mapping["scorecard"] or "{}"))
