"""Store: the reads behind the JSON API: subscribers by filter in keyset pages, a
subscriber's mail history, articles and stage runs in pages.

Keyset paging (WHERE id > :after ORDER BY id LIMIT n) costs the same on page 1 and page
10,000, and a row added meanwhile never shifts a page the client has not read yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import cast, exists, func, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB

from publisher.article import StoredArticle
from publisher.store.articles import to_article
from publisher.store.schema import article_sections, articles, digests, outbox, runs, subscribers
from publisher.store.subscribers import Subscriber, to_subscriber

if TYPE_CHECKING:
    from publisher.store import Store


@dataclass(frozen=True)
class SubscriberFilter:
    status: str | None = None
    frequency: str | None = None
    section: str | None = None
    email: str | None = None  # exact, normalized
    contains: str | None = None  # part of the address
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None


class ApiQueries:
    def __init__(self, store: Store):
        self.store = store

    def subscribers_page(self, where: SubscriberFilter, after: int,
                         limit: int) -> list[Subscriber]:
        """Up to `limit` subscribers with ids above `after`, in id order."""
        c = subscribers.c
        query = select(subscribers).where(c.id > after).order_by(c.id).limit(limit)
        for column, value in ((c.status, where.status), (c.frequency, where.frequency),
                              (c.email, where.email)):
            if value is not None:
                query = query.where(column == value)
        if where.contains:
            query = query.where(c.email.contains(where.contains.lower(), autoescape=True))
        if where.created_after:
            query = query.where(c.created_at >= where.created_after)
        if where.created_before:
            query = query.where(c.created_at < where.created_before)
        if where.updated_after:
            query = query.where(c.updated_at >= where.updated_after)
        if where.section:
            query = query.where(self.has_section(where.section))
        with self.store.reading() as conn:
            return [to_subscriber(row) for row in conn.execute(query)]

    def has_section(self, section: str):
        """A subscriber who chose `section`, or every section (an empty list)."""
        c = subscribers.c
        if self.store.dialect == "postgresql":
            as_jsonb = cast(c.sections, JSONB)
            return as_jsonb.contains([section]) | (func.jsonb_array_length(as_jsonb) == 0)
        items = func.json_each(c.sections).table_valued("value")
        return exists(select(literal_column("1")).select_from(items)
                      .where(items.c.value == section)) | (func.json_array_length(c.sections) == 0)

    def history(self, subscriber_id: int, limit: int) -> list[dict]:
        """The subscriber's messages, newest first: each digest with what it held and
        what became of its message, and the other mail (confirmations)."""
        query = (select(outbox.c.id, outbox.c.kind, outbox.c.state, outbox.c.attempts,
                        outbox.c.created_at, outbox.c.sent_at, outbox.c.last_code,
                        outbox.c.last_error, digests.c.id.label("digest_id"),
                        digests.c.period, digests.c.article_seqs, digests.c.more)
                 .select_from(outbox.outerjoin(digests, digests.c.id == outbox.c.digest_id))
                 .where(outbox.c.subscriber_id == subscriber_id)
                 .order_by(outbox.c.created_at.desc(), outbox.c.id.desc()).limit(limit))
        with self.store.reading() as conn:
            found = [dict(row._mapping) for row in conn.execute(query)]
        for row in found:
            held = row.pop("article_seqs")
            held = json.loads(held) if isinstance(held, str) else held
            row["articles"] = len(held) if held is not None else None
        return found

    def articles_page(self, section: str | None, before: int | None,
                      limit: int) -> list[StoredArticle]:
        """Newest first by sequence number, below `before`."""
        query = select(articles).order_by(articles.c.seq.desc()).limit(limit)
        if before is not None:
            query = query.where(articles.c.seq < before)
        if section:
            query = query.where(articles.c.seq.in_(
                select(article_sections.c.article_seq)
                .where(article_sections.c.section == section)))
        with self.store.reading() as conn:
            return [to_article(row) for row in conn.execute(query)]

    def article(self, key: str) -> StoredArticle | None:
        """By slug or by id."""
        query = select(articles).where((articles.c.slug == key) | (articles.c.id == key))
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        return to_article(row) if row else None

    def runs_page(self, stage: str | None, before: int | None, limit: int) -> list[dict]:
        query = select(runs).order_by(runs.c.id.desc()).limit(limit)
        if stage:
            query = query.where(runs.c.stage == stage)
        if before is not None:
            query = query.where(runs.c.id < before)
        with self.store.reading() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
