"""The notification outbox and silences: the store side of `incident.notify`'s Outbox.

Enqueueing is idempotent (a duplicate (incident, event_key, channel) is ignored), and claiming
is exclusive (a conditional UPDATE whose rowcount says who won), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from incident.errors import NotFound
from incident.model import DRILL_PREFIX, Attempt, Envelope, EventKind, IfPaged, Incident, OutboxItem, Silence
from incident.store.schema import events, incidents, outbox, silences
from incident.store.types import utc

if TYPE_CHECKING:
    from incident.store.db import Database

# What a store method that changes an incident calls, inside its transaction, to learn what
# to enqueue with the change: the changed incident → envelopes (none when nothing changed).
Notifications = Callable[[Incident], Sequence[Envelope]]

MAX_ERROR_CHARS = 500


class OutboxMixin:
    """Outbox and silence methods of Store (each one transaction)."""

    _db: Database

    def enqueue(self, envelopes: Sequence[Envelope], *, at: datetime) -> builtins.list[Envelope]:
        """Write envelopes to the outbox, due at `at`; the ones that were new (duplicates ignored)."""
        at = utc(at, "at")
        return self._db.run("enqueue notifications",
                            lambda conn: enqueue(conn, envelopes, at), write=True)

    def claim_due(self, *, now: datetime, runner: str, lease: timedelta, limit: int = 10_000,
                  drills: bool = False) -> builtins.list[OutboxItem]:
        """Claim pending rows due at `now` for `runner` until `now + lease`; no two runners get one row.

        Rows for drill channels (`drill:oncall`) are claimed only with `drills`, by drill runs.
        """
        now = utc(now, "now")
        free = sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now)
        drill = outbox.c.channel.startswith(DRILL_PREFIX, autoescape=True)
        due = (outbox.c.status == "pending") & (outbox.c.next_attempt_at <= now) & free & (
            drill if drills else ~drill)

        def tx(conn: Connection) -> builtins.list[OutboxItem]:
            query = sa.select(outbox).where(due).order_by(outbox.c.id).limit(limit)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
            won = []
            for row in rows:
                # The WHERE repeats the test: of two racing claimers exactly one sees rowcount 1.
                taken = conn.execute(sa.update(outbox).where(outbox.c.id == row.id, due).values(
                    claimed_by=runner, claimed_until=now + lease)).rowcount
                if taken == 1:
                    won.append(item_from_row(row))
            return won

        return self._db.run("claim due notifications", tx, write=True)

    def release(self, ids: Iterable[int], *, runner: str) -> None:
        """Give back claimed rows untried (a rate limit held them): due again at once."""
        ids = list(ids)
        if not ids:
            return
        query = sa.update(outbox).where(outbox.c.id.in_(ids), outbox.c.claimed_by == runner
                                        ).values(claimed_by=None, claimed_until=None)
        self._db.run("release notifications", lambda conn: conn.execute(query), write=True)

    def record_attempts(self, attempts: Sequence[Attempt], *, runner: str, actor: str) -> None:
        """Record delivery attempts on the outbox and on each incident's timeline, in one transaction."""

        def tx(conn: Connection) -> None:
            for a in attempts:
                env, at = a.item.envelope, utc(a.at, "at")
                error = (a.error or "")[:MAX_ERROR_CHARS] or None
                values: dict[str, object] = {"attempts": outbox.c.attempts + 1, "last_error": error,
                                             "claimed_by": None, "claimed_until": None}
                if a.ok:
                    values |= {"status": "sent", "sent_at": at, "message": a.message,
                               "last_error": None}
                elif a.retry_at is not None:
                    values |= {"next_attempt_at": utc(a.retry_at, "retry_at")}
                else:
                    values |= {"status": "dead"}
                conn.execute(sa.update(outbox).where(outbox.c.id == a.item.id,
                                                     outbox.c.status == "pending").values(**values))
                n = a.number
                outcome = "delivered" if a.ok else f"failed: {error}" + (
                    "" if a.retry_at else "; giving up")
                conn.execute(sa.insert(events).values(
                    incident_id=env.incident_id, at=at, kind=EventKind.NOTIFIED.value, actor=actor,
                    text=f"{env.event} → {env.channel}: {outcome} (attempt {n})",
                    data={"channel": env.channel, "ok": a.ok, "event": env.event,
                          "key": env.event_key, "attempt": n, "error": error,
                          "retry_at": a.retry_at, "runner": runner}))
                enqueue(conn, a.then, at)

        self._db.run("record delivery attempts", tx, write=True)

    def sent_messages(self, channel: str, *, since: datetime, until: datetime) -> int:
        """How many messages (a digest counts once) went to `channel` in (since, until].

        Bounded on both sides: a run `--at` an earlier time must not count later sends.
        """
        query = sa.select(sa.func.count(sa.distinct(outbox.c.message))).where(
            outbox.c.channel == channel, outbox.c.status == "sent",
            outbox.c.sent_at > utc(since, "since"), outbox.c.sent_at <= utc(until, "until"))
        return self._db.run("count sent messages", lambda conn: int(conn.execute(query).scalar()
                                                                      or 0), write=False)

    def reopened_at(self, incident_ids: Sequence[int]) -> dict[int, datetime]:
        """When each of these incidents last reopened (those never reopened are left out)."""
        ids = list(incident_ids)
        if not ids:
            return {}
        query = sa.select(events.c.incident_id, sa.func.max(events.c.at)).where(
            events.c.kind == EventKind.REOPENED.value, events.c.incident_id.in_(ids)
        ).group_by(events.c.incident_id)
        return self._db.run("read reopen times",
                            lambda conn: {int(i): at for i, at in conn.execute(query)},
                            write=False)

    def unannounced(self, openings: Mapping[int, str]) -> set[int]:
        """Of these incidents (id → the event key of their opening), those with no outbox row
        for it: a silence or a window held the opening back. One query, not one per incident."""
        if not openings:
            return set()
        query = sa.select(outbox.c.incident_id, outbox.c.event_key).where(
            outbox.c.incident_id.in_(list(openings)),
            outbox.c.event_key.in_(set(openings.values()))).distinct()
        announced = self._db.run("read which openings went out",
                                 lambda conn: {(int(i), k) for i, k in conn.execute(query)},
                                 write=False)
        return {i for i, key in openings.items() if (i, key) not in announced}

    def outbox(self, *, statuses: Sequence[str] | None = None, incident_id: int | None = None,
               limit: int = 100_000) -> builtins.list[OutboxItem]:
        """Outbox rows, oldest first, optionally of some statuses or one incident."""
        query = sa.select(outbox).order_by(outbox.c.id).limit(limit)
        if statuses is not None:
            query = query.where(outbox.c.status.in_(list(statuses)))
        if incident_id is not None:
            query = query.where(outbox.c.incident_id == incident_id)
        return self._db.run("read the outbox",
                            lambda conn: [item_from_row(r) for r in conn.execute(query)],
                            write=False)

    def post_update(self, incident_id: int, *, at: datetime, actor: str, text: str,
                    notifications: Callable[[Incident, int], Sequence[Envelope]]) -> Incident:
        """A status update on the timeline and its notifications in the outbox, in one transaction."""
        at = utc(at, "at")

        def tx(conn: Connection) -> Incident:
            from incident.store.records import incident_from_row

            row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
            if row is None:
                raise NotFound(f"no incident with id {incident_id}")
            inserted = conn.execute(sa.insert(events).values(
                incident_id=incident_id, at=at, kind=EventKind.NOTE.value, actor=actor, text=text,
                data={"update": True}))
            assert inserted.inserted_primary_key is not None
            incident = incident_from_row(row)
            enqueue(conn, notifications(incident, int(inserted.inserted_primary_key[0])), at)
            return incident

        return self._db.run(f"post an update to incident {incident_id}", tx, write=True)

    # ------------------------------------------------------------------ silences

    def add_silence(self, *, match: Mapping[str, str], match_re: Mapping[str, str],
                    starts_at: datetime, ends_at: datetime, comment: str, created_by: str,
                    at: datetime) -> Silence:
        """Create a silence; ValueError when it would end before it starts."""
        starts_at, ends_at, at = utc(starts_at), utc(ends_at), utc(at)
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")

        def tx(conn: Connection) -> Silence:
            result = conn.execute(sa.insert(silences).values(
                matchers={"match": dict(match), "match_re": dict(match_re)}, starts_at=starts_at,
                ends_at=ends_at, comment=comment, created_by=created_by, created_at=at))
            assert result.inserted_primary_key is not None
            return _silence(conn, int(result.inserted_primary_key[0]))

        return self._db.run("add a silence", tx, write=True)

    def silences(self, *, active_at: datetime | None = None) -> builtins.list[Silence]:
        """Every silence, newest first; only those in force at `active_at` when given."""
        query = sa.select(silences).order_by(silences.c.id.desc())
        if active_at is not None:
            t = utc(active_at, "active_at")
            query = query.where(silences.c.starts_at <= t, silences.c.ends_at > t,
                                sa.or_(silences.c.expired_at.is_(None), silences.c.expired_at > t))
        return self._db.run("list silences",
                            lambda conn: [silence_from_row(r) for r in conn.execute(query)],
                            write=False)

    def expire_silence(self, silence_id: int, *, at: datetime) -> Silence:
        """End a silence now (kept for the record); NotFound if there is none."""
        at = utc(at, "at")

        def tx(conn: Connection) -> Silence:
            conn.execute(sa.update(silences).where(silences.c.id == silence_id,
                                                   silences.c.expired_at.is_(None))
                         .values(expired_at=at))
            return _silence(conn, silence_id)

        return self._db.run(f"expire silence {silence_id}", tx, write=True)


def enqueue(conn: Connection, envelopes: Iterable[Envelope], at: datetime) -> list[Envelope]:
    """Insert envelopes inside the caller's transaction, ignoring duplicates; the new ones.

    An IfPaged is inserted only when its channel has a `paged_by` row of the incident: read in
    this transaction, so an escalation committed before the change is always seen.
    """
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    new = []
    for env in envelopes:
        if isinstance(env, IfPaged) and conn.execute(sa.select(outbox.c.id).where(
                outbox.c.incident_id == env.incident_id, outbox.c.event_key == env.paged_by,
                outbox.c.channel == env.channel).limit(1)).first() is None:
            continue
        stmt = insert(outbox).values(
            incident_id=env.incident_id, event=env.event, event_key=env.event_key,
            channel=env.channel, title=env.title, body=env.body, severity=env.severity,
            status="pending", attempts=0, next_attempt_at=at, created_at=at
        ).on_conflict_do_nothing(index_elements=["incident_id", "event_key", "channel"])
        if conn.execute(stmt).rowcount == 1:
            new.append(env)
    return new


def item_from_row(row: sa.Row) -> OutboxItem:
    """An OutboxItem from a row of the incident_outbox table."""
    m = row._mapping
    return OutboxItem(
        id=m["id"], status=m["status"], attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"], last_error=m["last_error"],
        created_at=m["created_at"], sent_at=m["sent_at"],
        envelope=Envelope(incident_id=m["incident_id"], event=m["event"], event_key=m["event_key"],
                          channel=m["channel"], title=m["title"], body=m["body"],
                          severity=m["severity"]))


def silence_from_row(row: sa.Row) -> Silence:
    """A Silence from a row of the incident_silences table."""
    m = row._mapping
    matchers = m["matchers"]
    return Silence(id=m["id"], match=dict(matchers.get("match", {})),
                   match_re=dict(matchers.get("match_re", {})), starts_at=m["starts_at"],
                   ends_at=m["ends_at"], comment=m["comment"], created_by=m["created_by"],
                   created_at=m["created_at"], expired_at=m["expired_at"])


def _silence(conn: Connection, silence_id: int) -> Silence:
    row = conn.execute(sa.select(silences).where(silences.c.id == silence_id)).first()
    if row is None:
        raise NotFound(f"no silence with id {silence_id}")
    return silence_from_row(row)
