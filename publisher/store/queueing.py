"""Store: the statements that queue digests: which stored articles match a subscriber,
and inserting digests, their outbox rows and the cursor moves (see ledger.py).

No statement takes one parameter set per subscriber: digests are one INSERT ... SELECT
per distinct content, outbox rows one INSERT ... SELECT and cursors one UPDATE ... FROM
per batch, which keeps queuing fast on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Connection, String, cast, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from publisher.store.bulk import chunks
from publisher.store.schema import (
    UTCDateTime,
    article_sections,
    articles,
    digests,
    outbox,
    subscribers,
)


@dataclass(frozen=True)
class Candidate:
    """A subscriber as the queue pass sees them."""

    id: int
    email: str
    frequency: str
    sections: tuple[str, ...]
    timezone: str
    cursor: int
    last_digest_at: datetime | None
    created_at: datetime
    deliver_at: str = ""  # HH:MM in their zone; empty: [digest] daily_at


@dataclass(frozen=True)
class DigestPlan:
    subscriber_id: int
    email: str
    period: str
    article_seqs: tuple[int, ...]  # newest first
    more: int  # matching articles left out

    @property
    def last_seq(self) -> int:
        return self.article_seqs[0]



class ArticleLookup:
    """Which stored articles match a subscriber, on the queue pass's own connection."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def matching(self, after: int, upto: int, sections: Sequence[str],
                 limit: int) -> tuple[list[int], int]:
        """(newest `limit` matching seqs in (after, upto], newest first; how many match)."""
        if sections:
            seq = article_sections.c.article_seq
            where = (seq > after, seq <= upto, article_sections.c.section.in_(list(sections)))
            newest = (select(seq).where(*where).group_by(seq).order_by(seq.desc())
                      .limit(limit))
            total = select(func.count(func.distinct(seq))).where(*where)
        else:
            where = (articles.c.seq > after, articles.c.seq <= upto)
            newest = select(articles.c.seq).where(*where).order_by(articles.c.seq.desc()) \
                .limit(limit)
            total = select(func.count()).select_from(articles).where(*where)
        seqs = list(self.conn.execute(newest).scalars())
        if len(seqs) < limit:
            return seqs, len(seqs)
        return seqs, self.conn.execute(total).scalar_one()



def insert_digests(conn: Connection, plans: list[DigestPlan], now: datetime,
                   message_id: tuple[str, str], note_id: int | None = None
                   ) -> list[DigestPlan]:
    """Insert digests, their outbox rows and cursor moves; returns the plans that went in
    (a digest already queued for that subscriber and period inserts nothing).

    No statement takes one parameter set per subscriber: digests are one INSERT ...
    SELECT per distinct content, outbox rows one INSERT ... SELECT and cursors one
    UPDATE ... FROM per batch, which keeps queuing fast."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted: list = []
    for (period, seqs, more), members in group_by_content(plans).items():
        # One INSERT ... SELECT per distinct content: most subscribers share one.
        content = select(subscribers.c.id, literal(period), literal(seqs[-1]),
                         literal(seqs[0]), literal(list(seqs), JSON), literal(more),
                         literal(now, UTCDateTime), literal(note_id, digests.c.note_id.type))
        for part in chunks(members):
            inserted += conn.execute(
                dialect.insert(digests).from_select(
                    ["subscriber_id", "period", "first_seq", "last_seq", "article_seqs",
                     "more", "created_at", "note_id"],
                    content.where(subscribers.c.id.in_(part)))
                .on_conflict_do_nothing(index_elements=[digests.c.subscriber_id,
                                                        digests.c.period])
                .returning(digests.c.id, digests.c.subscriber_id)).all()
    queued_ids = {subscriber_id for _, subscriber_id in inserted}
    prefix, suffix = message_id
    at = literal(now, UTCDateTime)
    for part in chunks([digest_id for digest_id, _ in inserted]):
        conn.execute(insert(outbox).from_select(
            ["kind", "digest_id", "subscriber_id", "recipient", "message_id", "state",
             "attempts", "next_attempt_at", "created_at"],
            select(literal("digest"), digests.c.id, digests.c.subscriber_id,
                   subscribers.c.email,
                   literal(prefix) + cast(digests.c.id, String) + literal(suffix),
                   literal("queued"), literal(0), at, at)
            .select_from(digests.join(subscribers, subscribers.c.id == digests.c.subscriber_id))
            .where(digests.c.id.in_(part))))
        conn.execute(update(subscribers)
                     .values(cursor=digests.c.last_seq, last_digest_at=now)
                     .where(subscribers.c.id == digests.c.subscriber_id,
                            digests.c.id.in_(part)))
    return [p for p in plans if p.subscriber_id in queued_ids]


def group_by_content(plans: list[DigestPlan]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for plan in plans:
        groups.setdefault((plan.period, plan.article_seqs, plan.more), []).append(
            plan.subscriber_id)
    return groups
