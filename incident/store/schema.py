"""The whole store schema in one place, its version, and the hook that migrates older ones.

Table names carry an `incident_` prefix where a bare name (`meta`, `events`) would likely
collide with someone else's table in a shared PostgreSQL database.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from incident.store.types import JSONText, UTCDateTime

# Bump on every schema change and add MIGRATIONS[new_version].
SCHEMA_VERSION = 5

# Explicit constraint names, so a later migration can refer to (and drop) them by name.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

meta = sa.Table(
    "incident_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

incidents = sa.Table(
    "incidents",
    metadata,
    # sqlite_autoincrement: never hand out the id of a deleted incident again; people quote ids.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fingerprint", sa.String, nullable=False),
    # Equals fingerprint while the incident is open or acknowledged, NULL once resolved.
    # Its UNIQUE constraint is what makes "one active incident per fingerprint" hold across
    # processes and machines: NULLs never collide, on SQLite and PostgreSQL alike.
    sa.Column("active_key", sa.String, nullable=True, unique=True),
    sa.Column("check_name", sa.String, nullable=True),  # `check` is reserved in SQL
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("labels", JSONText, nullable=False),
    sa.Column("runbook", sa.String, nullable=True),
    sa.Column("detected_at", UTCDateTime, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("resolved_by", sa.String, nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("reopened", sa.Integer, nullable=False, server_default="0"),
    sa.Column("drill", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("manual", sa.Boolean, nullable=False, server_default=sa.false()),
    # Last time anything touched the row, value updates included: "when did we last see it?"
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("status IN ('open', 'acknowledged', 'resolved')", name="status"),
    sa.CheckConstraint(
        "(status = 'resolved' AND active_key IS NULL)"
        " OR (status <> 'resolved' AND active_key = fingerprint)",
        name="active_key",
    ),
    sa.Index(None, "fingerprint", "resolved_at"),
    sa.Index(None, "opened_at"),
    sa.Index(None, "check_name"),
    sqlite_autoincrement=True,
)

events = sa.Table(
    "incident_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "incident_id",
        sa.Integer,
        sa.ForeignKey("incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("data", JSONText, nullable=False),
    sa.Index(None, "incident_id", "at", "id"),
    sqlite_autoincrement=True,
)

source_health = sa.Table(
    "source_health",
    metadata,
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("failing_since", UTCDateTime, nullable=True),
    sa.Column("last_ok_at", UTCDateTime, nullable=True),
    sa.Column("last_failure_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("checked_at", UTCDateTime, nullable=False),
)

# Since version 2. One row per (check, cycle) a runner claimed: the primary key lets exactly one
# runner evaluate a check in a cycle; a claim never marked done may be taken over after a TTL.
leases = sa.Table(
    "incident_leases",
    metadata,
    sa.Column("check_name", sa.String, primary_key=True),
    sa.Column("cycle", UTCDateTime, primary_key=True),  # the cycle's start: now aligned to `every`
    sa.Column("runner", sa.String, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=False),
    sa.Column("done_at", UTCDateTime, nullable=True),
    sa.Column("takeovers", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "cycle"),  # pruning old cycles
)

# Since version 3. The notification outbox: every message is written here first, then delivered.
# UNIQUE(incident_id, event_key, channel) is the idempotency key: one event reaches one channel
# at most once, however many runners enqueue it; a claim (claimed_by/until) lets one runner send.
outbox = sa.Table(
    "incident_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("event_key", sa.String(128), nullable=False),
    sa.Column("channel", sa.String, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),  # redacted by the sender
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("message", sa.String(64), nullable=True),  # the sent message (a digest holds many)
    sa.Column("claimed_by", sa.String, nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.UniqueConstraint("incident_id", "event_key", "channel"),
    sa.CheckConstraint("status IN ('pending', 'sent', 'dead')", name="status"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "channel", "sent_at"),
    sqlite_autoincrement=True,
)

# Since version 3. Silences made with `incident silence add`: matchers as JSON
# ({"match": {k: v}, "match_re": {k: pattern}}), active from starts_at until ends_at or expiry.
silences = sa.Table(
    "incident_silences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("matchers", JSONText, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("created_by", sa.String, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expired_at", UTCDateTime, nullable=True),
    sqlite_autoincrement=True,
)

# Since version 4. The written part of a postmortem, one row per incident (absent until edited).
postmortems = sa.Table(
    "incident_postmortems",
    metadata,
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("summary", sa.Text, nullable=False, server_default=""),
    sa.Column("impact", sa.Text, nullable=False, server_default=""),
    sa.Column("customers_affected", sa.Integer, nullable=True),
    sa.Column("orders_affected", sa.Integer, nullable=True),
    sa.Column("revenue_at_risk", sa.Float, nullable=True),
    sa.Column("root_cause", sa.Text, nullable=False, server_default=""),
    sa.Column("trigger", sa.Text, nullable=False, server_default=""),
    sa.Column("resolution", sa.Text, nullable=False, server_default=""),
    sa.Column("detection", sa.Text, nullable=False, server_default=""),
    sa.Column("went_well", sa.Text, nullable=False, server_default=""),
    sa.Column("went_badly", sa.Text, nullable=False, server_default=""),
    sa.Column("lucky", sa.Text, nullable=False, server_default=""),
    sa.Column("mitigated_at", UTCDateTime, nullable=True),  # a judgement: set by hand
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String, nullable=False),
)

# Since version 4. Follow-ups of a postmortem; they outlive the incident they came from.
action_items = sa.Table(
    "incident_action_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("owner", sa.String, nullable=False, server_default=""),
    sa.Column("due", sa.Date, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("done_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("status IN ('open', 'done')", name="status"),
    sa.Index(None, "incident_id"),
    sa.Index(None, "status", "due"),
    sqlite_autoincrement=True,
)

# Since version 5. The drill journal: one row per drill run, its scorecard as JSON.
drill_runs = sa.Table(
    "drill_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("drill", sa.String, nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),  # replay | live
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),  # wall clock
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("sim_start", UTCDateTime, nullable=False),  # the scenario's clock
    sa.Column("sim_end", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String, nullable=False),
    sa.Column("scorecard", sa.Text, nullable=False, server_default="{}"),
    sa.CheckConstraint("status IN ('running', 'passed', 'failed', 'aborted')", name="status"),
    sa.Index(None, "drill", "started_at"),
    sqlite_autoincrement=True,
)

# MIGRATIONS[n] turns a version n-1 schema into version n, inside the caller's transaction.
Migration = Callable[[Connection], None]


def _add_leases(conn: Connection) -> None:
    """1 → 2: the leases table that lets several runners share the checks."""
    leases.create(conn)


MIGRATIONS: dict[int, Migration] = {2: _add_leases}

def _add_outbox(conn: Connection) -> None:
    """2 → 3: the notification outbox and silences."""
    outbox.create(conn)
    silences.create(conn)


MIGRATIONS[3] = _add_outbox


def _add_postmortems(conn: Connection) -> None:
    """3 → 4: postmortem fields and action items."""
    postmortems.create(conn)
    action_items.create(conn)


MIGRATIONS[4] = _add_postmortems


def _add_drill_runs(conn: Connection) -> None:
    """4 → 5: the drill journal."""
    drill_runs.create(conn)


MIGRATIONS[5] = _add_drill_runs

_VERSION_KEY = "schema_version"


class SchemaError(Exception):
    """The database's schema cannot be used as it is; Store adds the URL and raises StoreError."""


# An arbitrary constant: the PostgreSQL advisory lock that serialises schema creation.
_PG_SCHEMA_LOCK = 0x696E6364


def read_version(conn: Connection, *, locked: bool = False) -> int | None:
    """The stored schema version, or None for a database without one.

    Only under `lock()` is a missing version checked against stray tables: without it,
    PostgreSQL may show us another process's schema half-way, between two statements.
    """
    inspector = sa.inspect(conn)
    if not inspector.has_table(meta.name):
        if locked and any(inspector.has_table(t.name) for t in metadata.sorted_tables):
            raise SchemaError(
                "the database has incident tables but no schema version; it is not an incident"
                " store this version can use"
            )
        return None
    raw = conn.execute(sa.select(meta.c.value).where(meta.c.key == _VERSION_KEY)).scalar()
    if raw is None or not raw.isdigit():
        raise SchemaError(f"the {meta.name} table has no valid {_VERSION_KEY} (found {raw!r})")
    return int(raw)


def check_version(found: int, *, upgrade: bool) -> None:
    """SchemaError unless a database at version `found` can be used (or upgraded) by this code."""
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"database schema version {found} is newer than this incident's schema version"
            f" {SCHEMA_VERSION}; upgrade incident on this machine"
        )
    if found < SCHEMA_VERSION and not upgrade:
        raise SchemaError(
            f"database schema version {found} is older than this incident's schema version"
            f" {SCHEMA_VERSION}; run `incident db upgrade`"
        )


def lock(conn: Connection) -> None:
    """Serialise schema creation and upgrades between processes for this transaction.

    SQLite needs nothing more: our write transactions start with BEGIN IMMEDIATE.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_SCHEMA_LOCK)))


def ensure(conn: Connection, *, upgrade: bool) -> tuple[int | None, int]:
    """Create the schema in an empty database or migrate an older one.

    Returns the version found under the lock (None: empty) and the version after. Call inside
    a write transaction, which `lock()` then serialises.
    """
    lock(conn)
    found = read_version(conn, locked=True)  # again: another process may have won meanwhile
    if found is None:
        metadata.create_all(conn)
        conn.execute(sa.insert(meta).values(key=_VERSION_KEY, value=str(SCHEMA_VERSION)))
        return None, SCHEMA_VERSION
    check_version(found, upgrade=upgrade)
    for version in range(found + 1, SCHEMA_VERSION + 1):
        if version not in MIGRATIONS:
            raise SchemaError(f"no migration from schema version {version - 1} to {version}")
        MIGRATIONS[version](conn)
    if found != SCHEMA_VERSION:
        conn.execute(
            sa.update(meta).where(meta.c.key == _VERSION_KEY).values(value=str(SCHEMA_VERSION))
        )
    return found, SCHEMA_VERSION
