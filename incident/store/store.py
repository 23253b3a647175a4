"""The incident store: the only state of the whole tool, one transaction per public method."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from incident.errors import NotFound, StoreError
from incident.model import EventKind, Incident, Severity, Status, TimelineEvent
from incident.store import schema
from incident.store.db import Conflict, Database, create_engine, resolve_url, safe
from incident.store.drills import DrillMixin
from incident.store.outbox import Notifications, OutboxMixin, enqueue
from incident.store.records import (
    POSTMORTEM_NUMBER_FIELDS,
    POSTMORTEM_TEXT_FIELDS,
    ActionItem,
    Change,
    InvalidTransition,
    Lease,
    Postmortem,
    SchemaStatus,
    SourceHealth,
    event_from_row,
    from_row,
    incident_from_row,
)
from incident.store.schema import (
    action_items,
    events,
    incidents,
    leases,
    postmortems,
    source_health,
)
from incident.store.types import normalise, utc

# A source's error text is kept for display, not as a log: bound it.
MAX_ERROR_CHARS = 2000


class Store(OutboxMixin, DrillMixin):
    """Incidents, timelines, source health and runner leases, behind SQLAlchemy (SQLite or PostgreSQL).

    Build it with `Store.connect`. Every datetime passed in must be timezone-aware; every
    datetime handed out is aware UTC.
    """

    def __init__(self, db: Database, schema_version: int) -> None:
        self._db = db
        self._schema_version = schema_version

    @classmethod
    def connect(cls, url: str, *, root: Path, upgrade: bool = False) -> Store:
        """Open the store at `url` (relative SQLite paths are relative to `root`).

        Creates the schema in an empty database. A database with a newer schema is refused;
        an older one too, unless `upgrade` is true (what `incident db upgrade` passes).
        """
        db = _database(url, root)
        try:
            _, version = _prepare(db, upgrade=upgrade)
        except BaseException:
            db.close()
            raise
        return cls(db, version)

    @classmethod
    def status(cls, url: str, *, root: Path) -> SchemaStatus:
        """The database's schema version against this code's; creates and changes nothing."""
        parsed = resolve_url(url, root)
        if parsed.get_backend_name() == "sqlite" and parsed.database \
                and not parsed.database.startswith("file:") and parsed.database != ":memory:" \
                and not Path(parsed.database).exists():
            # Connecting would create the file (and its directory): report it empty instead.
            return SchemaStatus(url=safe(parsed), database_version=None,
                                code_version=schema.SCHEMA_VERSION)
        db = Database(parsed, create_engine(parsed))
        try:
            found = db.run("open the database", schema.read_version, write=False)
        except schema.SchemaError as e:
            raise StoreError(f"incident store {db.safe_url}: {e}") from e
        finally:
            db.close()
        return SchemaStatus(url=db.safe_url, database_version=found,
                            code_version=schema.SCHEMA_VERSION)

    @classmethod
    def upgrade(cls, url: str, *, root: Path) -> tuple[int | None, int]:
        """Create or migrate the schema in place, data kept: (version before, version after).

        Before is None for an empty database. Safe to run from several machines at once: the
        migrations run once, under a lock, in one transaction.
        """
        db = _database(url, root)
        try:
            return _prepare(db, upgrade=True)
        finally:
            db.close()

    def close(self) -> None:
        """Release the database connections."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def url(self) -> str:
        """The database URL as it may be printed (password hidden)."""
        return safe(self._db.url)

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return self._schema_version

    # ------------------------------------------------------------------ incidents

    def open_incident(
        self,
        *,
        fingerprint: str,
        check: str | None,
        title: str,
        severity: Severity,
        labels: Mapping[str, str],
        runbook: str | None,
        detected_at: datetime,
        at: datetime,
        value: float | None,
        reopen_window: timedelta,
        actor: str,
        drill: bool = False,
        manual: bool = False,
        notifications: Notifications | None = None,
    ) -> tuple[Incident, Change]:
        """The active incident for `fingerprint` (value updated), else a reopened or new one.

        A fingerprint resolved at or after `at - reopen_window` is reopened (flapping);
        otherwise a new incident opens. The returned incident has no timeline.
        """
        at = utc(at, "at")
        detected_at = utc(detected_at, "detected_at")
        severity = Severity(severity)
        if reopen_window < timedelta(0):
            raise ValueError(f"reopen_window must not be negative (got {reopen_window})")

        def tx(conn: Connection) -> tuple[Incident, Change]:
            active = conn.execute(
                sa.select(incidents.c.id).where(incidents.c.active_key == fingerprint)
            ).scalar()
            if active is not None:
                # Cron sees a firing incident every minute: a value update is no timeline event.
                _update(conn, active, value=value, updated_at=at)
                return _load(conn, active), Change.EXISTING

            last = conn.execute(
                sa.select(incidents.c.id, incidents.c.resolved_at)
                .where(incidents.c.fingerprint == fingerprint, incidents.c.status == "resolved")
                .order_by(incidents.c.resolved_at.desc(), incidents.c.id.desc())
                .limit(1)
            ).first()
            if last is not None and last.resolved_at >= at - reopen_window:
                reopened = conn.execute(
                    sa.update(incidents)
                    .where(incidents.c.id == last.id, incidents.c.status == "resolved")
                    .values(
                        status=Status.OPEN.value,
                        active_key=fingerprint,
                        resolved_at=None,
                        resolved_by=None,
                        # The acknowledgement belonged to the previous episode.
                        acknowledged_at=None,
                        acknowledged_by=None,
                        reopened=incidents.c.reopened + 1,
                        value=value,
                        updated_at=at,
                    )
                )
                if reopened.rowcount != 1:
                    raise Conflict(f"incident {last.id} changed while it was being reopened")
                _insert_event(
                    conn,
                    last.id,
                    at=at,
                    kind=EventKind.REOPENED,
                    actor=actor,
                    text=f"reopened: fired again {_ago(at - last.resolved_at)} after it resolved",
                    data=_firing_data(detected_at, value, previously_resolved_at=last.resolved_at),
                )
                return _load(conn, last.id), Change.REOPENED

            inserted = conn.execute(
                sa.insert(incidents).values(
                    fingerprint=fingerprint,
                    active_key=fingerprint,
                    check_name=check,
                    title=title,
                    status=Status.OPEN.value,
                    severity=severity.value,
                    labels=dict(labels),
                    runbook=runbook,
                    detected_at=detected_at,
                    opened_at=at,
                    value=value,
                    reopened=0,
                    drill=drill,
                    manual=manual,
                    updated_at=at,
                )
            )
            assert inserted.inserted_primary_key is not None
            new_id: int = inserted.inserted_primary_key[0]
            _insert_event(
                conn,
                new_id,
                at=at,
                kind=EventKind.OPENED,
                actor=actor,
                text=title,
                data=_firing_data(detected_at, value),
            )
            return _load(conn, new_id), Change.OPENED

        # A concurrent opener that wins the unique active_key makes ours raise IntegrityError;
        # Database.run then retries, and the retry takes the EXISTING branch.
        return self._db.run(f"open an incident for {fingerprint!r}",
                            _notifying(tx, notifications, at, Change.EXISTING), write=True)

    def resolve(
        self, incident_id: int, *, at: datetime, actor: str, text: str = "", auto: bool = False,
        notifications: Notifications | None = None,
    ) -> tuple[Incident, bool]:
        """Resolve an incident; the bool is True only for the one call that changed it."""
        at = utc(at, "at")

        def tx(conn: Connection) -> tuple[Incident, bool]:
            # The WHERE clause makes the change atomic: of racing resolvers exactly one sees
            # rowcount 1, so exactly one of them notifies.
            changed = (
                conn.execute(
                    sa.update(incidents)
                    .where(incidents.c.id == incident_id, incidents.c.status != "resolved")
                    .values(
                        status=Status.RESOLVED.value,
                        active_key=None,
                        resolved_at=at,
                        resolved_by=actor,
                        updated_at=at,
                    )
                ).rowcount
                == 1
            )
            if changed:
                default = "resolved automatically" if auto else f"resolved by {actor}"
                _insert_event(
                    conn,
                    incident_id,
                    at=at,
                    kind=EventKind.RESOLVED,
                    actor=actor,
                    text=text or default,
                    data={"auto": auto},
                )
            return _load(conn, incident_id), changed

        return self._db.run(f"resolve incident {incident_id}",
                            _notifying(tx, notifications, at, False), write=True)

    def raise_severity(self, incident_id: int, severity: Severity, *, at: datetime, actor: str,
                       reason: str = "", notifications: Notifications | None = None
                       ) -> tuple[Incident, bool]:
        """Make an active incident more urgent; False when it was already as urgent or is over."""
        at = utc(at, "at")
        severity = Severity(severity)
        less_urgent = [s.value for s in Severity if s.rank > severity.rank]

        def tx(conn: Connection) -> tuple[Incident, bool]:
            before = _load(conn, incident_id)
            # The WHERE makes it atomic: of two runners raising together, one records it.
            changed = conn.execute(
                sa.update(incidents).where(incidents.c.id == incident_id,
                                           incidents.c.active_key.is_not(None),
                                           incidents.c.severity.in_(less_urgent))
                .values(severity=severity.value, updated_at=at)).rowcount == 1
            if changed:
                _insert_event(conn, incident_id, at=at, kind=EventKind.ESCALATED, actor=actor,
                              text=f"severity {before.severity.value} → {severity.value}"
                                   + (f": {reason}" if reason else ""),
                              data={"from": before.severity.value, "to": severity.value})
            return _load(conn, incident_id), changed

        return self._db.run(f"raise the severity of incident {incident_id}",
                            _notifying(tx, notifications, at, False), write=True)

    def acknowledge(self, incident_id: int, *, at: datetime, actor: str,
                    notifications: Notifications | None = None) -> tuple[Incident, bool]:
        """Acknowledge an open incident; False if it already was; InvalidTransition if resolved."""
        at = utc(at, "at")

        def tx(conn: Connection) -> tuple[Incident, bool]:
            changed = (
                conn.execute(
                    sa.update(incidents)
                    .where(incidents.c.id == incident_id, incidents.c.status == "open")
                    .values(
                        status=Status.ACKNOWLEDGED.value,
                        acknowledged_at=at,
                        acknowledged_by=actor,
                        updated_at=at,
                    )
                ).rowcount
                == 1
            )
            if changed:
                _insert_event(
                    conn,
                    incident_id,
                    at=at,
                    kind=EventKind.ACKNOWLEDGED,
                    actor=actor,
                    text=f"acknowledged by {actor}",
                    data={},
                )
            incident = _load(conn, incident_id)
            if incident.status is Status.RESOLVED:
                when = incident.resolved_at.isoformat() if incident.resolved_at else "?"
                raise InvalidTransition(
                    f"incident {incident_id} was resolved at {when} by {incident.resolved_by};"
                    " a resolved incident cannot be acknowledged"
                )
            return incident, changed

        return self._db.run(f"acknowledge incident {incident_id}",
                            _notifying(tx, notifications, at, False), write=True)

    def add_event(
        self,
        incident_id: int,
        *,
        at: datetime,
        kind: EventKind,
        actor: str,
        text: str,
        data: Mapping[str, Any] | None = None,
    ) -> TimelineEvent:
        """Append one event (a note, a notification, a runbook step …) to an incident's timeline."""
        at = utc(at, "at")
        kind = EventKind(kind)

        def tx(conn: Connection) -> TimelineEvent:
            _require(conn, incident_id)
            return _insert_event(
                conn, incident_id, at=at, kind=kind, actor=actor, text=text, data=data or {}
            )

        return self._db.run(f"add an event to incident {incident_id}", tx, write=True)

    def get(self, incident_id: int) -> Incident:
        """One incident with its whole timeline, ordered by time; NotFound if there is none."""

        def tx(conn: Connection) -> Incident:
            row = _require(conn, incident_id)
            timeline = tuple(
                event_from_row(r)
                for r in conn.execute(
                    sa.select(events)
                    .where(events.c.incident_id == incident_id)
                    .order_by(events.c.at, events.c.id)
                )
            )
            return incident_from_row(row, timeline)

        return self._db.run(f"read incident {incident_id}", tx, write=False)

    def find_active(self, fingerprint: str) -> Incident | None:
        """The open or acknowledged incident for `fingerprint`, if any (no timeline)."""

        def tx(conn: Connection) -> Incident | None:
            row = conn.execute(
                sa.select(incidents).where(incidents.c.active_key == fingerprint)
            ).first()
            return None if row is None else incident_from_row(row)

        return self._db.run(f"find the active incident for {fingerprint!r}", tx, write=False)

    def active(self, check: str | None = None) -> builtins.list[Incident]:
        """Open and acknowledged incidents, newest first, of one check or all (no timelines)."""
        query = sa.select(incidents).where(incidents.c.active_key.is_not(None))
        if check is not None:
            query = query.where(incidents.c.check_name == check)
        query = query.order_by(incidents.c.opened_at.desc(), incidents.c.id.desc())
        return self._db.run(
            "list active incidents",
            lambda conn: [incident_from_row(r) for r in conn.execute(query)],
            write=False,
        )

    def list(
        self,
        *,
        statuses: Collection[Status] | None = None,
        check: str | None = None,
        runbook: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        include_drills: bool = True,
    ) -> builtins.list[Incident]:
        """Incidents, newest opened first, filtered (`since` bounds opened_at); no timelines."""
        if limit < 0:
            raise ValueError(f"limit must not be negative (got {limit})")
        query = sa.select(incidents)
        if statuses is not None:
            query = query.where(incidents.c.status.in_([Status(s).value for s in statuses]))
        if check is not None:
            query = query.where(incidents.c.check_name == check)
        if runbook is not None:
            query = query.where(incidents.c.runbook == runbook)
        if since is not None:
            query = query.where(incidents.c.opened_at >= utc(since, "since"))
        if not include_drills:
            query = query.where(incidents.c.drill.is_(sa.false()))
        query = query.order_by(incidents.c.opened_at.desc(), incidents.c.id.desc()).limit(limit)
        return self._db.run(
            "list incidents",
            lambda conn: [incident_from_row(r) for r in conn.execute(query)],
            write=False,
        )

    def runbook_usage(self) -> dict[str, int]:
        """How many incidents (drills included) named each runbook."""
        query = (sa.select(incidents.c.runbook, sa.func.count())
                 .where(incidents.c.runbook.is_not(None)).group_by(incidents.c.runbook))
        return self._db.run("count incidents per runbook",
                            lambda conn: {r[0]: int(r[1]) for r in conn.execute(query)},
                            write=False)

    # ------------------------------------------------------------------ sources

    def record_source(
        self, source: str, *, ok: bool, at: datetime, error: str | None = None,
        cycle: datetime | None = None,
    ) -> int:
        """Record one attempt to read `source`; the consecutive failures after it (0 when ok).

        A failure within `cycle` (at or after that start) of the last recorded failure counts
        once: runners sharing the store each fail a cycle, and the limit counts cycles.
        """
        at = utc(at, "at")
        cycle = None if cycle is None else utc(cycle, "cycle")
        if error is not None and len(error) > MAX_ERROR_CHARS:
            error = error[: MAX_ERROR_CHARS - 1] + "…"
        t = source_health

        def tx(conn: Connection) -> int:
            # FOR UPDATE (PostgreSQL) keeps two concurrent failures from counting as one;
            # SQLite is already serialised by BEGIN IMMEDIATE and SQLAlchemy omits the clause.
            row = conn.execute(sa.select(t).where(t.c.source == source).with_for_update()).first()
            failures = 0 if ok else (row.consecutive_failures if row else 0) + 1
            if (not ok and row is not None and row.consecutive_failures and cycle is not None
                    and row.last_failure_at is not None and row.last_failure_at >= cycle):
                failures = row.consecutive_failures
            values: dict[str, Any] = {"consecutive_failures": failures, "checked_at": at}
            if ok:
                values |= {"last_ok_at": at, "failing_since": None}
            else:
                since = row.failing_since if row and row.failing_since else at
                # A slow run that started in an earlier cycle may finish after a later one: the
                # latest failure stays, or the cycle test above would count a cycle twice.
                latest = max(at, row.last_failure_at) if row and row.last_failure_at else at
                values |= {"last_failure_at": latest, "last_error": error, "failing_since": since}
            if row is None:
                # Two first-ever reports racing: the loser's IntegrityError is retried.
                conn.execute(sa.insert(t).values(source=source, **values))
            else:
                conn.execute(sa.update(t).where(t.c.source == source).values(**values))
            return failures

        return self._db.run(f"record the health of source {source!r}", tx, write=True)

    def source_health(self) -> builtins.list[SourceHealth]:
        """The health of every source ever recorded, by name."""
        query = sa.select(source_health).order_by(source_health.c.source)
        return self._db.run(
            "read source health",
            lambda conn: [from_row(SourceHealth, r) for r in conn.execute(query)],
            write=False,
        )

    # ------------------------------------------------------------------ leases

    def claim_lease(
        self, check: str, cycle: datetime, *, runner: str, at: datetime, ttl: timedelta
    ) -> bool:
        """Claim `check` for `cycle`; True for the one runner that should evaluate it now.

        The primary key (check, cycle) arbitrates concurrent claims. A claim made before
        `at - ttl` and never marked done belonged to a runner that died: it is taken over.
        One transaction per claim, so runners interleave instead of queueing or deadlocking.
        """
        cycle, at = utc(cycle, "cycle"), utc(at, "at")
        if ttl <= timedelta(0):
            raise ValueError(f"ttl must be positive (got {ttl})")
        key = (leases.c.check_name == check) & (leases.c.cycle == cycle)

        def tx(conn: Connection) -> bool:
            # FOR UPDATE: two runners finding the same expired claim take it over one at a time.
            row = conn.execute(sa.select(leases).where(key).with_for_update()).first()
            if row is None:
                # A concurrent claim wins the primary key; our IntegrityError is retried and
                # the retry finds its row.
                conn.execute(sa.insert(leases).values(
                    check_name=check, cycle=cycle, runner=runner, claimed_at=at, takeovers=0))
                return True
            if row.done_at is not None or row.claimed_at >= at - ttl:  # held for ttl, then expired
                return False
            taken = conn.execute(
                sa.update(leases)
                .where(key, leases.c.done_at.is_(None), leases.c.runner == row.runner,
                       leases.c.claimed_at == row.claimed_at)
                .values(runner=runner, claimed_at=at, takeovers=leases.c.takeovers + 1)
            )
            return taken.rowcount == 1

        return self._db.run(f"claim check {check!r}", tx, write=True)

    def finish_leases(
        self, claims: Collection[tuple[str, datetime]], *, runner: str, at: datetime
    ) -> builtins.list[tuple[str, datetime]]:
        """Mark `runner`'s claims (check, cycle) done; the ones another runner took over meanwhile."""
        at = utc(at, "at")

        def tx(conn: Connection) -> builtins.list[tuple[str, datetime]]:
            lost = []
            for check, cycle in claims:
                done = conn.execute(
                    sa.update(leases)
                    .where(leases.c.check_name == check, leases.c.cycle == utc(cycle, "cycle"),
                           leases.c.runner == runner, leases.c.done_at.is_(None))
                    .values(done_at=at)
                ).rowcount
                if done != 1:
                    lost.append((check, cycle))
            return lost

        return self._db.run("mark checks evaluated", tx, write=True)

    def leases(self, *, since: datetime | None = None) -> builtins.list[Lease]:
        """Claims of cycles starting at or after `since` (all when None), by cycle then check."""
        query = sa.select(leases).order_by(leases.c.cycle, leases.c.check_name)
        if since is not None:
            query = query.where(leases.c.cycle >= utc(since, "since"))
        return self._db.run(
            "read leases",
            lambda conn: [from_row(Lease, r, {"check": "check_name"}) for r in conn.execute(query)],
            write=False,
        )

    def prune_leases(self, before: datetime) -> int:
        """Delete the claims of cycles that started before `before`; how many went."""
        query = sa.delete(leases).where(leases.c.cycle < utc(before, "before"))
        return self._db.run(
            "prune old leases", lambda conn: conn.execute(query).rowcount or 0, write=True
        )

    # ------------------------------------------------------------------ postmortems

    def postmortem(self, incident_id: int) -> Postmortem:
        """The written part of an incident's postmortem (empty until edited); NotFound if no incident."""

        def tx(conn: Connection) -> Postmortem:
            _require(conn, incident_id)
            row = conn.execute(
                sa.select(postmortems).where(postmortems.c.incident_id == incident_id)).first()
            return Postmortem(incident_id=incident_id) if row is None else from_row(Postmortem, row)

        return self._db.run(f"read the postmortem of incident {incident_id}", tx, write=False)

    def update_postmortem(self, incident_id: int, *, at: datetime, actor: str,
                          **fields: Any) -> Postmortem:
        """Set some postmortem fields (the rest kept); ValueError for a field that does not exist."""
        at = utc(at, "at")
        known = {*POSTMORTEM_TEXT_FIELDS, *POSTMORTEM_NUMBER_FIELDS, "mitigated_at"}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ValueError(f"unknown postmortem fields {unknown} (known: {sorted(known)})")
        if fields.get("mitigated_at") is not None:
            fields["mitigated_at"] = utc(fields["mitigated_at"], "mitigated_at")
        values = {**fields, "updated_at": at, "updated_by": actor}
        where = postmortems.c.incident_id == incident_id

        def tx(conn: Connection) -> Postmortem:
            _require(conn, incident_id)
            if conn.execute(sa.select(postmortems.c.incident_id).where(where).with_for_update()
                            ).first() is None:
                # Two first edits racing: the loser's IntegrityError is retried as an update.
                conn.execute(sa.insert(postmortems).values(incident_id=incident_id, **values))
            else:
                conn.execute(sa.update(postmortems).where(where).values(**values))
            return from_row(Postmortem, conn.execute(sa.select(postmortems).where(where)).one())

        return self._db.run(f"edit the postmortem of incident {incident_id}", tx, write=True)

    def add_action_item(self, incident_id: int, *, text: str, owner: str, due: date | None,
                        at: datetime) -> ActionItem:
        """A new open action item on an incident's postmortem."""
        at = utc(at, "at")

        def tx(conn: Connection) -> ActionItem:
            _require(conn, incident_id)
            inserted = conn.execute(sa.insert(action_items).values(
                incident_id=incident_id, text=text, owner=owner, due=due, status="open",
                created_at=at))
            assert inserted.inserted_primary_key is not None
            return _action_item(conn, inserted.inserted_primary_key[0])

        return self._db.run(f"add an action item to incident {incident_id}", tx, write=True)

    def finish_action_item(self, item_id: int, *, at: datetime) -> tuple[ActionItem, bool]:
        """Mark an action item done; the bool is False when it already was."""
        at = utc(at, "at")

        def tx(conn: Connection) -> tuple[ActionItem, bool]:
            changed = conn.execute(
                sa.update(action_items)
                .where(action_items.c.id == item_id, action_items.c.status == "open")
                .values(status="done", done_at=at)).rowcount == 1
            return _action_item(conn, item_id), changed

        return self._db.run(f"finish action item {item_id}", tx, write=True)

    def action_items(self, *, incident_ids: Collection[int] | None = None,
                     open_only: bool = False) -> builtins.list[ActionItem]:
        """Action items of some incidents (all when None), by due date (undated last) then id."""
        query = sa.select(action_items)
        if incident_ids is not None:
            query = query.where(action_items.c.incident_id.in_(list(incident_ids)))
        if open_only:
            query = query.where(action_items.c.status == "open")
        query = query.order_by(action_items.c.due.is_(None), action_items.c.due,
                               action_items.c.id)
        return self._db.run(
            "list action items",
            lambda conn: [from_row(ActionItem, r) for r in conn.execute(query)],
            write=False,
        )


def _notifying(tx: Callable[[Connection], tuple[Incident, Any]],
               notifications: Notifications | None, at: datetime, unchanged: object
               ) -> Callable[[Connection], tuple[Incident, Any]]:
    """`tx`, then the notifications of its change enqueued in the same transaction.

    A crash can then never leave a changed incident whose notification was not written.
    """

    def run(conn: Connection) -> tuple[Incident, Any]:
        incident, change = tx(conn)
        if notifications is not None and change is not unchanged:
            enqueue(conn, notifications(incident), at)
        return incident, change

    return run


def _database(url: str, root: Path) -> Database:
    parsed = resolve_url(url, root)
    return Database(parsed, create_engine(parsed))


def _prepare(db: Database, *, upgrade: bool) -> tuple[int | None, int]:
    """Check the schema version and create or migrate the schema as allowed: (before, after)."""
    try:
        found = db.run("open the database", schema.read_version, write=False)
        if found is not None:
            schema.check_version(found, upgrade=upgrade)  # fail before taking a lock
        if found == schema.SCHEMA_VERSION:
            return found, found
        return db.run(
            "create the schema" if found is None else "upgrade the schema",
            lambda conn: schema.ensure(conn, upgrade=upgrade),
            write=True,
        )
    except schema.SchemaError as e:
        raise StoreError(f"incident store {db.safe_url}: {e}") from e


# ---------------------------------------------------------------------- helpers
# Each takes the caller's connection: they are steps inside one transaction, never their own.


def _require(conn: Connection, incident_id: int) -> sa.Row:
    row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident with id {incident_id}")
    return row


def _load(conn: Connection, incident_id: int) -> Incident:
    return incident_from_row(_require(conn, incident_id))


def _action_item(conn: Connection, item_id: int) -> ActionItem:
    row = conn.execute(sa.select(action_items).where(action_items.c.id == item_id)).first()
    if row is None:
        raise NotFound(f"no action item with id {item_id}")
    return from_row(ActionItem, row)


def _update(conn: Connection, incident_id: int, **values: Any) -> None:
    conn.execute(sa.update(incidents).where(incidents.c.id == incident_id).values(**values))


def _insert_event(
    conn: Connection,
    incident_id: int,
    *,
    at: datetime,
    kind: EventKind,
    actor: str,
    text: str,
    data: Mapping[str, Any],
) -> TimelineEvent:
    conn.execute(
        sa.insert(events).values(
            incident_id=incident_id, at=at, kind=kind.value, actor=actor, text=text, data=data
        )
    )
    # Normalised as it will read back, so callers see exactly what get() will show.
    return TimelineEvent(at=at, kind=kind, actor=actor, text=text, data=normalise(data))


def _firing_data(detected_at: datetime, value: float | None, **extra: datetime) -> dict[str, Any]:
    data: dict[str, Any] = {"detected_at": detected_at}
    if value is not None:
        data["value"] = value
    return data | extra


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
