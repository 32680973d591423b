"""Store: schema versions, applied in order on start so an older database is upgraded.

Version 1 is the whole schema in schema.py. A later change appends a step here: a
function that alters an existing database from the version before it, written with
SQLAlchemy so it runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from sqlalchemy import Connection, bindparam, func, insert, inspect, select, text, update
from sqlalchemy.schema import CreateIndex

from publisher.clock import Clock, system_clock
from publisher.store.api_schema import API_TABLES
from publisher.store.archive_entries import pack
from publisher.store.schema import (
    UTCDateTime,
    admin_accounts,
    admin_audit,
    admin_login_failures,
    admin_sessions,
    archive_entries,
    article_sections,
    articles,
    bounce_events,
    digest_notes,
    editions,
    inbox_files,
    inbox_folders,
    inbox_scan,
    metadata,
    outbox,
    schema_version,
    spent_challenges,
    subscribers,
)

log = logging.getLogger(__name__)

Step = Callable[[Connection], None]


def create_all(conn: Connection) -> None:
    metadata.create_all(conn)


def add_deliver_at(conn: Connection) -> None:
    # A database made at version 1 by this code's schema.py has the column already.
    if "deliver_at" not in {c["name"] for c in inspect(conn).get_columns("subscribers")}:
        conn.execute(text("ALTER TABLE subscribers ADD COLUMN deliver_at VARCHAR(5) "
                          "NOT NULL DEFAULT ''"))


STAT_COLUMNS = ("size", "mtime_ns", "ctime_ns", "inode")


def add_inbox_stats(conn: Connection) -> None:
    # A database made at version 1 by this code's schema.py has the columns already.
    have = {c["name"] for c in inspect(conn).get_columns("inbox_files")}
    for column in STAT_COLUMNS:
        if column not in have:
            conn.execute(text(f"ALTER TABLE inbox_files ADD COLUMN {column} BIGINT"))


CONSOLE_INDEXES = ("ix_subscribers_name", "ix_subscribers_filter", "ix_subscribers_frequency",
                   "ix_subscribers_created")


def add_console(conn: Connection) -> None:
    for table in (admin_accounts, admin_sessions, admin_login_failures, admin_audit):
        table.create(conn, checkfirst=True)  # checkfirst: version 1 makes them on a new store
    for index in subscribers.indexes:
        if index.name in CONSOLE_INDEXES:
            # IF NOT EXISTS: checkfirst does not see expression indexes on SQLite.
            conn.execute(CreateIndex(index, if_not_exists=True))


def add_editions(conn: Connection) -> None:
    editions.create(conn, checkfirst=True)
    # A database made at version 1 by this code's schema.py has the column already.
    if "edition_id" not in {c["name"] for c in inspect(conn).get_columns("outbox")}:
        conn.execute(text("ALTER TABLE outbox ADD COLUMN edition_id BIGINT "
                          "REFERENCES editions(id) ON DELETE CASCADE"))
    for index in outbox.indexes:
        if index.name == "uq_outbox_edition":
            conn.execute(CreateIndex(index, if_not_exists=True))


def add_welcome_and_notes(conn: Connection) -> None:
    """subscribers.welcomed_at, digest_notes and digests.note_id. A database made by this
    code's schema.py at version 1 has them already."""
    digest_notes.create(conn, checkfirst=True)
    inspector = inspect(conn)
    if "welcomed_at" not in {c["name"] for c in inspector.get_columns("subscribers")}:
        kind = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"
        conn.execute(text(f"ALTER TABLE subscribers ADD COLUMN welcomed_at {kind}"))
    if "note_id" not in {c["name"] for c in inspector.get_columns("digests")}:
        kind = "BIGINT" if conn.dialect.name == "postgresql" else "INTEGER"
        conn.execute(text(f"ALTER TABLE digests ADD COLUMN note_id {kind} "
                          "REFERENCES digest_notes (id) ON DELETE SET NULL"))


def add_changes_and_pack_entries(conn: Connection) -> None:
    """articles.changed (what a build asks what changed since), each section row's
    published time (a section's newest by date), and every kept archive entry
    compressed, as ArchiveEntryStore now keeps them."""
    if "changed" not in {c["name"] for c in inspect(conn).get_columns("articles")}:
        conn.execute(text("ALTER TABLE articles ADD COLUMN changed BIGINT NOT NULL DEFAULT 0"))
    if "published" not in {c["name"] for c in inspect(conn).get_columns("article_sections")}:
        conn.execute(text("ALTER TABLE article_sections ADD COLUMN published "
                          + UTCDateTime().compile(dialect=conn.dialect)))
    conn.execute(update(article_sections).values(published=select(articles.c.published)
                 .where(articles.c.seq == article_sections.c.article_seq).scalar_subquery()))
    for index in [*articles.indexes, *article_sections.indexes]:
        if index.name in ("ix_articles_changed", "ix_article_sections_published"):
            conn.execute(CreateIndex(index, if_not_exists=True))
    after = -1
    while True:  # a few hundred rows at a time: a store of 100,000 holds 250 MB of them
        rows = conn.execute(select(archive_entries.c.seq, archive_entries.c.xml)
                            .where(archive_entries.c.seq > after)
                            .order_by(archive_entries.c.seq).limit(500)).all()
        if not rows:
            return
        conn.execute(update(archive_entries)
                     .where(archive_entries.c.seq == bindparam("b_seq"))
                     .values(xml=bindparam("b_xml")),
                     [{"b_seq": seq, "b_xml": pack(xml)} for seq, xml in rows])
        after = rows[-1].seq


def add_inbox_folders(conn: Connection) -> None:
    """inbox_folders, inbox_scan and the index of files to read again: a pass lists
    only the folders that changed. No folder is recorded yet, so the first pass after
    the upgrade lists them all, as every pass did before."""
    inbox_folders.create(conn, checkfirst=True)
    inbox_scan.create(conn, checkfirst=True)
    if conn.execute(select(func.count()).select_from(inbox_scan)).scalar() == 0:
        total = conn.execute(select(func.coalesce(func.sum(inbox_files.c.articles), 0)))
        conn.execute(insert(inbox_scan).values(id=1, after="", articles=total.scalar()))
    for index in inbox_files.indexes:
        if index.name == "ix_inbox_files_pending":
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
    (6, "subscribers.deliver_at: each subscriber's delivery time", add_deliver_at),
    (7, "editions, outbox.edition_id: mail an editor wrote, once per subscriber",
     add_editions),
    (8, "subscribers.welcomed_at, digest_notes, digests.note_id: the welcome mail once, "
        "the editor's note a digest carried", add_welcome_and_notes),
    (9, "inbox_files size, mtime_ns, ctime_ns, inode: unchanged files are not read again",
     add_inbox_stats),
    (10, "articles.changed: change numbers for builds that touch what changed; "
         "archive entries compressed", add_changes_and_pack_entries),
    (11, "spent_challenges: proof-of-work solutions already accepted",
     lambda conn: spent_challenges.create(conn, checkfirst=True)),
    (12, "inbox_folders, inbox_scan: a pass lists only the inbox folders that changed, "
         "and re-checks a share of the files for edits in place", add_inbox_folders),
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
