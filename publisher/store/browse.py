"""Store: the console's reads of the subscriber list: one page of a search or a filter,
and one person's history (their digests with articles and outcomes, other messages).

Pages are keyset pages, never OFFSET: each page starts after the last row of the one
before, along an index, so page 20,000 costs what page 1 costs. Three orders, three
indexes: newest first by id (filters: ix_subscribers_filter, ix_subscribers_frequency),
by address for an address search (the unique index on email; a prefix is a range),
by lower(name) then id for a name search (ix_subscribers_name).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Text, cast, func, select, tuple_

from publisher.store.schema import digests, outbox, subscribers
from publisher.store.subscribers import Subscriber, to_subscriber

if TYPE_CHECKING:
    from publisher.store import Store

PAGE = 50


@dataclass(frozen=True)
class Filters:
    query: str = ""  # an address or name prefix
    by: str = "address"  # address or name
    status: str = ""
    frequency: str = ""
    section: str = ""  # subscribers who receive it (they chose it, or every section)


@dataclass(frozen=True)
class Page:
    rows: list[Subscriber]
    after: str | None  # the cursor of the next page, None on the last


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list | None:
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return None
    return values if isinstance(values, list) else None


def starts_with(column, prefix: str, dialect: str):
    """column starts with prefix. On SQLite as an index range (its LIKE is
    case-insensitive and so uses no index); PostgreSQL's range would follow the
    database's collation, not code points, so there it is LIKE with escaping."""
    if dialect == "sqlite":
        return (column >= prefix) & (column < prefix + "\U0010ffff")
    return column.startswith(prefix, autoescape=True)


class BrowseStore:
    def __init__(self, store: Store):
        self.store = store

    def page(self, filters: Filters, after: str | None = None, limit: int = PAGE) -> Page:
        query = select(subscribers).limit(limit + 1)
        query = self.filtered(query, filters)
        cursor = decode_cursor(after) if after else None
        text = filters.query.strip().lower()
        if text and filters.by == "name":
            name = func.lower(subscribers.c.name)
            query = query.where(starts_with(name, text, self.store.dialect)) \
                .order_by(name, subscribers.c.id)
            if cursor and len(cursor) == 2:
                query = query.where(tuple_(name, subscribers.c.id) > tuple_(*cursor))
            key = lambda s: [s.name.lower(), s.id]  # noqa: E731
        elif text:
            query = query.where(starts_with(subscribers.c.email, text, self.store.dialect)) \
                .order_by(subscribers.c.email)
            if cursor and len(cursor) == 1:
                query = query.where(subscribers.c.email > cursor[0])
            key = lambda s: [s.email]  # noqa: E731
        else:
            query = query.order_by(subscribers.c.id.desc())
            if cursor and len(cursor) == 1:
                query = query.where(subscribers.c.id < cursor[0])
            key = lambda s: [s.id]  # noqa: E731
        with self.store.reading() as conn:
            rows = [to_subscriber(row) for row in conn.execute(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_cursor(key(rows[-1])) if more else None)

    @staticmethod
    def filtered(query, filters: Filters):
        if filters.status:
            query = query.where(subscribers.c.status == filters.status)
        if filters.frequency:
            query = query.where(subscribers.c.frequency == filters.frequency)
        if filters.section:
            # Sections are stored as compact JSON text on both backends (Store's
            # serializer), and section names are words joined by "-": no LIKE wildcards.
            stored = cast(subscribers.c.sections, Text)
            query = query.where(stored.like(f'%"{filters.section}"%') | (stored == "[]"))
        return query

    # --- one person -------------------------------------------------------------------
    def digests_of(self, subscriber_id: int, limit: int = 100) -> list[dict]:
        """Their digests, newest first, each with its message's state and last error."""
        query = (select(digests.c.id, digests.c.period, digests.c.article_seqs,
                        digests.c.more, digests.c.created_at, outbox.c.state,
                        outbox.c.attempts, outbox.c.last_code, outbox.c.last_error,
                        outbox.c.sent_at, outbox.c.last_attempt_at, outbox.c.id.label("outbox_id"))
                 .select_from(digests.outerjoin(outbox, outbox.c.digest_id == digests.c.id))
                 .where(digests.c.subscriber_id == subscriber_id)
                 .order_by(digests.c.created_at.desc(), digests.c.id.desc()).limit(limit))
        with self.store.reading() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def other_messages(self, subscriber_id: int, limit: int = 100) -> list[dict]:
        """Their messages that are not digests (confirmations), newest first."""
        query = (select(outbox.c.id, outbox.c.kind, outbox.c.state, outbox.c.attempts,
                        outbox.c.last_code, outbox.c.last_error, outbox.c.created_at,
                        outbox.c.sent_at, outbox.c.last_attempt_at)
                 .where(outbox.c.subscriber_id == subscriber_id, outbox.c.digest_id.is_(None))
                 .order_by(outbox.c.created_at.desc(), outbox.c.id.desc()).limit(limit))
        with self.store.reading() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
