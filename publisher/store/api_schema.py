"""Store: the tables of the JSON API and the webhooks (schema version 3).

api_tokens keeps only a SHA-256 of each bearer token (they are long random strings, so
a fast hash is enough: nothing to guess from). events is the record of what happened to
subscribers and digests, written in the same transaction as the change itself;
webhook_deliveries is the outbox of those events for each configured receiver.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from publisher.store.schema import Id, UTCDateTime, metadata

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex
    Column("read_only", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    sqlite_autoincrement=True,
)

# A create retried with the same Idempotency-Key gets the first answer again.
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token_id", Id, ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer),  # NULL while the first request is still being handled
    Column("body", Text),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("token_id", "key", name="uq_idempotency_key"),
)
Index("ix_idempotency_created", idempotency_keys.c.created_at)

events = Table(
    "events", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # subscriber.confirmed, subscriber.unsubscribed, subscriber.bounced, digest.sent
    Column("kind", String(40), nullable=False),
    Column("subscriber_id", BigInteger),  # forget deletes a subscriber's events too
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)
Index("ix_events_subscriber", events.c.subscriber_id)
Index("ix_events_created", events.c.created_at)

# Each receiver's place in the events: a receiver gets the events recorded after it
# first appeared in the settings of a pass.
webhook_cursors = Table(
    "webhook_cursors", metadata,
    Column("url", String(1000), primary_key=True),
    Column("last_event_id", BigInteger, nullable=False),
    Column("added_at", UTCDateTime, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("url", String(1000), nullable=False),
    Column("event_id", Id, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("state", String(12), nullable=False),  # queued, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_code", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("url", "event_id", name="uq_webhook_delivery"),
)
Index("ix_webhook_due", webhook_deliveries.c.state, webhook_deliveries.c.next_attempt_at)

API_TABLES = (api_tokens, idempotency_keys, events, webhook_cursors, webhook_deliveries)
