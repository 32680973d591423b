"""Store: editions (mail an editor wrote) and their outbox rows, every statement of both.

Starting an edition is one transaction: its row (unique by slug) and one outbox row per
subscriber in its audience (unique by edition and subscriber, the ledger key), with a
Message-ID fixed then. A crash leaves it whole or absent; a second process finds the
slug taken and queues nothing, so nobody gets an edition twice from queuing. The
delivery stage then sends the rows as it sends digests (lease, retries, suppression).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Text, cast, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.store.bulk import chunks
from publisher.store.schema import articles, editions, outbox, subscribers

if TYPE_CHECKING:
    from publisher.store import Store

BATCH = 5000  # subscribers read, and outbox rows inserted, per statement


@dataclass(frozen=True)
class StoredEdition:
    """An edition as it was queued (or, for a preview, as it would be)."""

    id: int
    slug: str
    content_hash: str
    subject: str
    sections: tuple[str, ...]
    frequencies: tuple[str, ...]
    send_at: datetime | None
    body_html: str
    body_text: str
    article_seqs: tuple[int, ...]
    queued_at: datetime | None
    recipients: int = 0

    @property
    def published(self) -> datetime | None:
        """The date readers see: when it was due (send_at), else when it started."""
        return self.send_at or self.queued_at


@dataclass(frozen=True)
class Reader:
    """An active subscriber as the audience rule sees them."""

    id: int
    email: str
    frequency: str
    sections: tuple[str, ...]


Audience = Callable[[Reader], bool]


def to_edition(row) -> StoredEdition:
    data = row._mapping
    return StoredEdition(
        id=data["id"], slug=data["slug"], content_hash=data["content_hash"],
        subject=data["subject"], sections=json_tuple(data["sections"]),
        frequencies=json_tuple(data["frequencies"]), send_at=data["send_at"],
        body_html=data["body_html"], body_text=data["body_text"],
        article_seqs=json_tuple(data["article_seqs"]), queued_at=data["queued_at"],
        recipients=data["recipients"])


def json_tuple(value) -> tuple:
    if isinstance(value, str):
        value = json.loads(value)
    return tuple(value or ())


class EditionStore:
    def __init__(self, store: Store):
        self.store = store

    # --- queuing ------------------------------------------------------------------
    def start(self, edition: StoredEdition, audience: Audience, now: datetime,
              message_id: tuple[str, str]) -> StoredEdition | None:
        """Store the edition and queue one message per active subscriber in `audience`,
        in one transaction; None when it was started already (here or by another node).
        A message's Message-ID is message_id[0] + "EDITION-SUBSCRIBER" + message_id[1]."""
        with self.store.writing() as conn:
            values = {"slug": edition.slug, "content_hash": edition.content_hash,
                      "subject": edition.subject, "sections": list(edition.sections),
                      "frequencies": list(edition.frequencies), "send_at": edition.send_at,
                      "body_html": edition.body_html, "body_text": edition.body_text,
                      "article_seqs": list(edition.article_seqs), "queued_at": now,
                      "recipients": 0}
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            edition_id = conn.execute(
                dialect.insert(editions).values(values)
                .on_conflict_do_nothing(index_elements=[editions.c.slug])
                .returning(editions.c.id)).scalar()
            if edition_id is None:
                return None
            count = queue_readers(conn, edition_id, audience, now, message_id)
            conn.execute(editions.update().where(editions.c.id == edition_id)
                         .values(recipients=count))
        return self.by_id(edition_id)

    # --- reads --------------------------------------------------------------------
    def by_id(self, edition_id: int) -> StoredEdition | None:
        with self.store.reading() as conn:
            row = conn.execute(select(editions).where(editions.c.id == edition_id)).first()
        return to_edition(row) if row else None

    def by_slug(self) -> dict[str, StoredEdition]:
        """Every started edition by slug."""
        with self.store.reading() as conn:
            return {row.slug: to_edition(row) for row in conn.execute(select(editions))}

    def public(self) -> list[StoredEdition]:
        """The editions that started sending, newest first: what the web shows."""
        with self.store.reading() as conn:
            rows = conn.execute(select(editions).order_by(editions.c.queued_at.desc(),
                                                          editions.c.id.desc()))
            return [to_edition(row) for row in rows]

    def delivery_counts(self) -> dict[int, dict[str, int]]:
        """Each started edition's outbox rows by state (queued counts deferred and
        sending too: not delivered yet, not given up)."""
        with self.store.reading() as conn:
            rows = conn.execute(select(outbox.c.edition_id, outbox.c.state, func.count())
                                .where(outbox.c.edition_id.is_not(None))
                                .group_by(outbox.c.edition_id, outbox.c.state)).all()
        counts: dict[int, dict[str, int]] = {}
        for edition_id, state, count in rows:
            found = counts.setdefault(edition_id, {"queued": 0, "sent": 0, "failed": 0})
            key = state if state in ("sent", "failed") else "queued"
            found[key] += count
        return counts

    def audience_size(self, audience: Audience) -> int:
        """How many active subscribers `audience` takes now (a preview's count)."""
        with self.store.reading() as conn:
            return sum(1 for batch in active_readers(conn) for r in batch if audience(r))

    def seqs_of_slugs(self, slugs: Sequence[str]) -> dict[str, int]:
        """The sequence numbers of the articles with these slugs (those that exist)."""
        found: dict[str, int] = {}
        with self.store.reading() as conn:
            for part in chunks(list(slugs)):
                found.update(conn.execute(select(articles.c.slug, articles.c.seq)
                                          .where(articles.c.slug.in_(part))).all())
        return found

    def latest_seqs(self, limit: int) -> list[int]:
        """The newest `limit` articles' sequence numbers, newest first."""
        with self.store.reading() as conn:
            return list(conn.execute(select(articles.c.seq).order_by(articles.c.seq.desc())
                                     .limit(limit)).scalars())


def active_readers(conn) -> Iterator[list[Reader]]:
    """Every active subscriber, a batch at a time, in id order."""
    after = 0
    while True:
        rows = conn.execute(
            select(subscribers.c.id, subscribers.c.email, subscribers.c.frequency,
                   cast(subscribers.c.sections, Text))
            .where(subscribers.c.id > after, subscribers.c.status == "active")
            .order_by(subscribers.c.id).limit(BATCH)).all()
        if not rows:
            return
        after = rows[-1][0]
        yield [Reader(id_, email, frequency, json_tuple(sections))
               for id_, email, frequency, sections in rows]


def queue_readers(conn, edition_id: int, audience: Audience, now: datetime,
                  message_id: tuple[str, str]) -> int:
    """Insert the outbox rows of every active subscriber `audience` takes; how many."""
    prefix, suffix = message_id
    count = 0
    for readers in active_readers(conn):
        chosen = [{"kind": "edition", "edition_id": edition_id, "subscriber_id": r.id,
                   "recipient": r.email, "message_id": f"{prefix}{edition_id}-{r.id}{suffix}",
                   "state": "queued", "attempts": 0, "next_attempt_at": now,
                   "created_at": now}
                  for r in readers if audience(r)]
        if chosen:
            conn.execute(insert(outbox), chosen)
            count += len(chosen)
    return count
