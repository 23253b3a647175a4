"""The incident store: incidents, timelines and source health behind SQLAlchemy.

SQLite by default (WAL, so many cron processes share one file), PostgreSQL when several
machines share the store. It is the only state of the whole tool.
"""

from incident.store.records import Change, InvalidTransition, Lease, SchemaStatus, SourceHealth
from incident.store.schema import MIGRATIONS, SCHEMA_VERSION
from incident.store.store import Store

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Change",
    "InvalidTransition",
    "Lease",
    "SchemaStatus",
    "SourceHealth",
    "Store",
]
