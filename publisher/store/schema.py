"""Store: the tables, declared once for SQLite and PostgreSQL alike.

Times are stored as UTC and always come back aware (UTCDateTime), whatever the backend.
Lists (paragraphs, sections) are JSON columns; sections are also rows in
article_sections so feeds and digests can select by section with an index.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)


class UTCDateTime(TypeDecorator):
    """Aware UTC in, aware UTC out; a naive datetime is a bug and is refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BigInteger ids on PostgreSQL, but INTEGER on SQLite so the column is the rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

articles = Table(
    "articles", metadata,
    # The sequence number: the order articles were stored in; digest cursors point at it.
    Column("seq", Id, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("slug", String(200), nullable=False, unique=True),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("paragraphs", JSON, nullable=False),
    Column("body_html", Text, nullable=False),
    Column("captions", JSON, nullable=False),
    Column("credit", Text),
    Column("author", Text),
    Column("sections", JSON, nullable=False),
    Column("image", Text),
    Column("link", Text),
    Column("source", Text, nullable=False),
    Column("source_index", Integer, nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("stored_at", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    # The change number: every transaction that stores or edits articles gives them the
    # next one, so the feeds stage asks for what changed since the number it last saw.
    Column("changed", BigInteger, nullable=False, default=0),
    sqlite_autoincrement=True,  # never reuse a sequence number
)
Index("ix_articles_source", articles.c.source)
# Newest by date (SQLite adds the rowid, the seq, to every index entry: the tie-break).
Index("ix_articles_published", articles.c.published)
Index("ix_articles_changed", articles.c.changed)
# Covers the feeds stage's look at every article (seq order, slug, content hash) so a
# build can tell what is unchanged without reading the wide rows.
Index("ix_articles_stamp", articles.c.seq, articles.c.slug, articles.c.content_hash)

article_sections = Table(
    "article_sections", metadata,
    Column("article_seq", Id, ForeignKey("articles.seq", ondelete="CASCADE"),
           primary_key=True),
    Column("section", String(100), primary_key=True),
    # The article's published time, copied here (since schema version 10) so a section's
    # newest by date is one range of ix_article_sections_published, not a sort of them all.
    Column("published", UTCDateTime),
)
Index("ix_article_sections_section", article_sections.c.section, article_sections.c.article_seq)
Index("ix_article_sections_published", article_sections.c.section,
      article_sections.c.published, article_sections.c.article_seq)

# The feeds stage's archive entries, rendered once: an RFC 5005 archive page is the
# concatenation of its entries, so a full build of 2,000 pages reads these instead of
# rendering 100,000 entries again. A row is valid while its article's content hash and
# the build's context (code, site URL, default author) are the ones it was rendered for;
# otherwise the build renders the entry again and replaces the row.
archive_entries = Table(
    "archive_entries", metadata,
    Column("seq", Id, ForeignKey("articles.seq", ondelete="CASCADE"), primary_key=True,
           autoincrement=False),
    Column("context", String(32), nullable=False),
    Column("content_hash", String(64), nullable=False),
    # The entry's published and updated times in microseconds since the epoch (UTC):
    # what a page sorts its entries by and takes its own updated time from.
    Column("published_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # UTF-8, ready to concatenate, zlib-compressed (since schema version 10): a third of
    # the page it goes into instead of one whole SQLite page per entry.
    Column("xml", LargeBinary, nullable=False),
)

inbox_files = Table(
    "inbox_files", metadata,
    Column("path", String(1000), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("articles", Integer, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    # The file as it was read (os.stat): a pass reads it again only when one of these
    # differs (publisher/ingest/scan.py says why that rule is enough). NULL: read it
    # again next time (a file changed in the very tick it was read, or a store from
    # before version 9).
    Column("size", BigInteger),
    Column("mtime_ns", BigInteger),
    Column("ctime_ns", BigInteger),
    Column("inode", BigInteger),
)
# The files a pass must read again whatever their folder says (stat NULL): few, found
# without looking at the others.
Index("ix_inbox_files_pending", inbox_files.c.path,
      sqlite_where=inbox_files.c.size.is_(None), postgresql_where=inbox_files.c.size.is_(None))

inbox_folders = Table(
    "inbox_folders", metadata,
    # The folder's path under the inbox ("" is the inbox itself) and its stat when a pass
    # last listed it whole: a folder whose stat is still this holds the same names, and
    # is not listed again (publisher/ingest/scan.py). NULL: list it next pass.
    Column("path", String(1000), primary_key=True),
    Column("mtime_ns", BigInteger),
    Column("ctime_ns", BigInteger),
    Column("inode", BigInteger),
)

inbox_scan = Table(
    "inbox_scan", metadata,
    # One row (id 1). `after`: the last inbox file a pass stat-ed again in the rotating
    # re-check (files edited in place move neither their folder nor their inode); the
    # next pass goes on after it, in path order, wrapping round. `articles`: the articles
    # in every recorded file, kept as files are recorded, so a pass that looks at few
    # files still says how many it left unchanged without adding them all up.
    Column("id", Integer, primary_key=True),
    Column("after", String(1000), nullable=False, default=""),
    Column("articles", BigInteger, nullable=False, default=0),
)

subscribers = Table(
    "subscribers", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # normalized, lower-case
    Column("name", Text, nullable=False, default=""),
    Column("status", String(20), nullable=False),  # pending, active, unsubscribed, bounced
    Column("frequency", String(10), nullable=False),  # instant, daily, weekly
    Column("sections", JSON, nullable=False),  # empty: every section
    Column("timezone", String(64), nullable=False, default=""),  # empty: the default zone
    # HH:MM in their zone for daily and weekly digests; empty: [digest] daily_at.
    Column("deliver_at", String(5), nullable=False, default="", server_default=""),
    Column("cursor", BigInteger, nullable=False, default=0),  # last article seq queued
    Column("last_digest_at", UTCDateTime),
    Column("bounce_count", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime),
    # Bumped by `subscribers set --new-links` so every older link token stops working
    # (unsubscribe does not bump it: a repeated one-click POST must still succeed).
    Column("token_version", Integer, nullable=False, default=0),
    # When their welcome mail was queued (schema version 8): set once, in the transaction
    # that queues it, so nobody is welcomed twice, however often they confirm.
    Column("welcomed_at", UTCDateTime),
    # Link tokens carry the id: an id must never be reused after `remove --forget`.
    sqlite_autoincrement=True,
)
Index("ix_subscribers_status", subscribers.c.status, subscribers.c.frequency)
# The queue pass walks active subscribers in id order, a batch at a time.
Index("ix_subscribers_active", subscribers.c.status, subscribers.c.id)

digests = Table(
    "digests", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE"),
           nullable=False),
    # "daily:2026-11-24", "weekly:2026-W48", "instant:<last seq>", "now:<last seq>"
    Column("period", String(40), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("article_seqs", JSON, nullable=False),  # what this digest holds, newest first
    Column("more", Integer, nullable=False, default=0),  # matching articles left out
    Column("created_at", UTCDateTime, nullable=False),
    # The editor's note in force when it was queued (schema version 8); NULL: none.
    Column("note_id", Id, ForeignKey("digest_notes.id", ondelete="SET NULL")),
    UniqueConstraint("subscriber_id", "period", name="uq_digest_period"),
)
Index("ix_digests_created", digests.c.created_at)

# Editor's notes as digests carried them (schema version 8): one row per distinct note,
# rendered when it was read, so a digest sent again, or viewed on the web weeks later,
# shows the note it was queued with, whatever the note file says now.
digest_notes = Table(
    "digest_notes", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("html", Text, nullable=False),  # sanitized (nh3)
    Column("text", Text, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
# Editions: mail an editor wrote (editions/*.md), one row once it starts sending (schema
# version 7). The content is kept as it was queued, so every message and the public page
# are rendered from what was sent; an edited file no longer matches content_hash and is
# refused (a correction is a new edition).
editions = Table(
    "editions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("slug", String(200), nullable=False, unique=True),  # the file name's stem
    Column("content_hash", String(64), nullable=False),  # sha256 of the file's bytes
    Column("subject", Text, nullable=False),
    Column("sections", JSON, nullable=False),  # the audience: empty, everyone
    Column("frequencies", JSON, nullable=False),  # the audience: empty, every frequency
    Column("send_at", UTCDateTime),  # as the file said; NULL: at once
    Column("body_html", Text, nullable=False),  # rendered and sanitized (nh3)
    Column("body_text", Text, nullable=False),  # the Markdown source, for text/plain
    Column("article_seqs", JSON, nullable=False),  # the cards, in the file's order
    Column("queued_at", UTCDateTime, nullable=False),  # when it started sending
    Column("recipients", Integer, nullable=False, default=0),  # outbox rows queued
    sqlite_autoincrement=True,
)
Index("ix_editions_queued", editions.c.queued_at)

outbox = Table(
    "outbox", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),  # digest, confirm, welcome, edition
    Column("digest_id", Id, ForeignKey("digests.id", ondelete="CASCADE"), unique=True),
    Column("edition_id", Id, ForeignKey("editions.id", ondelete="CASCADE")),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE")),
    Column("recipient", String(320), nullable=False),
    Column("message_id", String(255), nullable=False, unique=True),
    Column("payload", JSON),  # small render inputs for non-digest mail; digests: NULL
    # queued, sending, sent, deferred, failed
    Column("state", String(12), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime),
    Column("claimed_by", String(100)),
    Column("last_code", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("last_attempt_at", UTCDateTime),  # when the last try failed; `outbox` sorts by it
)
Index("ix_outbox_due", outbox.c.state, outbox.c.next_attempt_at)
Index("ix_outbox_subscriber", outbox.c.subscriber_id)
Index("ix_outbox_created", outbox.c.created_at)  # pruning reads only the old rows
# The edition's ledger key: one message per subscriber and edition (NULLs, the digests
# and confirmations, never collide).
Index("uq_outbox_edition", outbox.c.edition_id, outbox.c.subscriber_id, unique=True)

runs = Table(
    "runs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("stage", String(40), nullable=False),
    Column("node", String(100), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("ok", Boolean),
    Column("summary", Text),
)
Index("ix_runs_stage", runs.c.stage, runs.c.started_at)

sources = Table(
    "sources", metadata,
    Column("name", String(200), primary_key=True),
    Column("url", Text, nullable=False),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("failures", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_ok_at", UTCDateTime),
    Column("last_attempt_at", UTCDateTime),
    Column("next_fetch_at", UTCDateTime),
)

# --- the console (/admin/): operators, their sessions, failed logins, the audit log ---
# Schema version 3 adds these tables and the subscriber indexes the console's list uses.

# Name search is a prefix match on lower(name), paged by (lower(name), id).
Index("ix_subscribers_name", func.lower(subscribers.c.name), subscribers.c.id)
# Filters by status and frequency, paged by id (newest first).
Index("ix_subscribers_filter", subscribers.c.status, subscribers.c.frequency, subscribers.c.id)
Index("ix_subscribers_frequency", subscribers.c.frequency, subscribers.c.id)
# The dashboard's sign-ups per day.
Index("ix_subscribers_created", subscribers.c.created_at)

admin_accounts = Table(
    "admin_accounts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),  # normalized, lower-case
    Column("role", String(10), nullable=False),  # owner, editor
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime),
)

admin_sessions = Table(
    "admin_sessions", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # sha256 of the cookie's random token: a copy of the database opens no session.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("admin_accounts.id", ondelete="CASCADE"),
           nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("client", String(100), nullable=False, default=""),
)
Index("ix_admin_sessions_account", admin_sessions.c.account_id)

admin_login_failures = Table(
    "admin_login_failures", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False),
    Column("client", String(100), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
Index("ix_admin_login_failures_email", admin_login_failures.c.email, admin_login_failures.c.at)
Index("ix_admin_login_failures_client", admin_login_failures.c.client,
      admin_login_failures.c.at)

admin_audit = Table(
    "admin_audit", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(320), nullable=False),  # the operator's address (kept if removed)
    Column("action", String(60), nullable=False),  # "subscriber.unsubscribe", "login", ...
    Column("target", String(100), nullable=False, default=""),  # "subscriber 42", ids only
    Column("detail", Text, nullable=False, default=""),
)
Index("ix_admin_audit_target", admin_audit.c.target, admin_audit.c.id)

# Bounces and complaints as they arrived (by mail, IMAP or webhook), kept [bounces]
# keep_days with their raw message (cut at RAW_MAX bytes) so each decision can be
# checked. `fingerprint` makes a re-read mailbox or a retried webhook count once.
bounce_events = Table(
    "bounce_events", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("subscriber_id", Id, ForeignKey("subscribers.id", ondelete="CASCADE")),
    Column("email", String(320)),  # the address the report names, when it names one
    Column("kind", String(12), nullable=False),  # hard, soft, complaint
    Column("origin", String(20), nullable=False),  # mail, imap, ses, postmark, mailgun, ...
    Column("status", String(16), nullable=False, default=""),  # enhanced status code
    Column("detail", Text, nullable=False, default=""),
    Column("message_id", String(255)),  # our message it answers, when known
    Column("action", String(60), nullable=False),  # what it did: bounced, complained, ...
    Column("received_at", UTCDateTime, nullable=False),
    Column("raw", LargeBinary),
)
Index("ix_bounce_events_subscriber", bounce_events.c.subscriber_id, bounce_events.c.received_at)
Index("ix_bounce_events_received", bounce_events.c.received_at, bounce_events.c.kind)

# Proof-of-work challenges already solved ([web] challenge), so each solution is accepted
# once on every node; a row is dropped once its challenge has expired (it is refused as
# expired from then on anyway). `challenge` is the SHA-256 the solution answers, in hex.
spent_challenges = Table(
    "spent_challenges", metadata,
    Column("challenge", String(64), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
)
Index("ix_spent_challenges_expires", spent_challenges.c.expires_at)
