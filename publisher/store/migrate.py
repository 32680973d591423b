"""Store: schema versions, applied in order on start so an older database is upgraded.

Version 1 is the whole schema in schema.py. A later change appends a step here: a
function that alters an existing database from the version before it, written with
SQLAlchemy so it runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, func, insert, inspect, select
from sqlalchemy.schema import CreateIndex

from publisher.clock import Clock, system_clock
from publisher.store.api_schema import API_TABLES
from publisher.store.schema import (
    admin_accounts,
    admin_audit,
    admin_login_failures,
    admin_sessions,
    archive_entries,
    bounce_events,
    metadata,
    schema_version,
    subscribers,
)

log = logging.getLogger(__name__)

Step = Callable[[Connection], None]


def create_all(conn: Connection) -> None:
    metadata.create_all(conn)


CONSOLE_INDEXES = ("ix_subscribers_name", "ix_subscribers_filter", "ix_subscribers_frequency",
                   "ix_subscribers_created")


def add_console(conn: Connection) -> None:
    for table in (admin_accounts, admin_sessions, admin_login_failures, admin_audit):
        table.create(conn, checkfirst=True)  # checkfirst: version 1 makes them on a new store
    for index in subscribers.indexes:
        if index.name in CONSOLE_INDEXES:
            # IF NOT EXISTS: checkfirst does not see expression indexes on SQLite.
            conn.execute(CreateIndex(index, if_not_exists=True))


# (version, what it does, the step). Never edit a step once released; add one.
MIGRATIONS: list[tuple[int, str, Step]] = [
    (1, "articles, subscribers, digests, outbox, runs, sources", create_all),
    (2, "archive_entries: rendered RFC 5005 archive entries",
     lambda conn: archive_entries.create(conn, checkfirst=True)),
    (3, "api_tokens, idempotency_keys, events, webhook_cursors, webhook_deliveries",
     lambda conn: metadata.create_all(conn, tables=list(API_TABLES))),
    (4, "the console: operator accounts, sessions, login failures, audit log; "
        "subscriber indexes for search and filters", add_console),
    (5, "bounce_events: bounces and complaints with their raw messages",
     lambda conn: bounce_events.create(conn, checkfirst=True)),
]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(select(func.max(schema_version.c.version))).scalar() or 0


def upgrade(conn: Connection, migrations: Sequence[tuple[int, str, Step]] = MIGRATIONS,
            announce: Callable[[str], None] = log.warning, clock: Clock = system_clock) -> int:
    """Apply every step newer than the database; returns the version reached."""
    version = current_version(conn)
    pending = [step for step in migrations if step[0] > version]
    if version and pending:
        announce(f"upgrading the database from schema version {version} "
                 f"to {pending[-1][0]}")
    for number, _what, step in pending:
        step(conn)
        conn.execute(insert(schema_version).values(version=number,
                                                   applied_at=clock()))
    return pending[-1][0] if pending else version
