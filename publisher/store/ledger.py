"""Store: the digest and outbox ledger, every statement that queues, claims and records mail.

Queuing is one transaction per batch of subscribers: lock the batch (FOR UPDATE SKIP
LOCKED on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes writers), insert each digest
with ON CONFLICT DO NOTHING on (subscriber, period), insert the outbox rows of the
digests that went in, advance those subscribers' cursors. A second process running the
same pass inserts nothing, and a crash leaves a batch either whole or absent.

Delivery claims due rows with a lease (state 'sending', lease_until, claimed_by); a crash
leaves them 'sending' until the lease runs out and `release_expired` queues them again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    Connection,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from publisher.article import StoredArticle
from publisher.store.articles import to_article
from publisher.store.bulk import chunks
from publisher.store.events import record_digests_sent, record_subscriber_events
from publisher.store.notes import prune_notes
from publisher.store.queueing import (
    ArticleLookup,
    Candidate,
    DigestPlan,
    insert_digests,
)
from publisher.store.schema import articles, digests, outbox, subscribers

if TYPE_CHECKING:
    from publisher.store import Store

STATES = ("queued", "sending", "deferred", "sent", "failed")


@dataclass(frozen=True)
class Claimed:
    """An outbox row claimed for sending, with what rendering it needs."""

    id: int
    kind: str
    message_id: str
    recipient: str
    attempts: int
    payload: dict
    digest_id: int | None
    subscriber_id: int | None
    name: str
    status: str | None
    token_version: int
    article_seqs: tuple[int, ...]
    more: int
    note_id: int | None = None  # a digest's editor's note (store: digest_notes)
    edition_id: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed row. state: sent, deferred, failed or queued (handed
    back untried: the attempt does not count)."""

    outbox_id: int
    subscriber_id: int | None
    state: str
    code: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    attempts: int = 0  # the row's attempts after this one
    bounce: bool = False  # a permanent failure of the recipient's mailbox


Planner = Callable[[list[Candidate], ArticleLookup], list[DigestPlan]]


@dataclass
class QueuedBatch:
    last_id: int | None  # the last subscriber id read; None when no rows were left
    read: int = 0
    queued: list[DigestPlan] = field(default_factory=list)


class LedgerStore:
    def __init__(self, store: Store):
        self.store = store
        self._parsed: dict[str, tuple] = {}

    # --- queuing ------------------------------------------------------------------
    def queue_batch(self, after_id: int, limit: int, max_seq: int, now: datetime,
                    plan: Planner, message_id: tuple[str, str],
                    note_id: int | None = None) -> QueuedBatch:
        """Read the next `limit` active subscribers with anything stored after their
        cursor, let `plan` choose their digests, and queue those in one transaction.
        A digest's Message-ID is message_id[0] + its id + message_id[1]; `note_id` is
        the editor's note the digests carry (None: none)."""
        with self.store.writing() as conn:
            rows = conn.execute(
                select(subscribers.c.id, subscribers.c.email, subscribers.c.frequency,
                       cast(subscribers.c.sections, Text), subscribers.c.timezone,
                       subscribers.c.cursor, subscribers.c.last_digest_at,
                       subscribers.c.created_at, subscribers.c.deliver_at)
                .where(subscribers.c.id > after_id, subscribers.c.status == "active",
                       subscribers.c.cursor < max_seq)
                .order_by(subscribers.c.id).limit(limit)
                # Two processes never plan the same subscriber at once on PostgreSQL;
                # SQLite ignores this and its write lock does the same.
                .with_for_update(skip_locked=True)).all()
            if not rows:
                return QueuedBatch(last_id=None)
            candidates = [Candidate(id_, email, frequency, self.parsed(sections), timezone,
                                    cursor, last, created, deliver_at)
                          for id_, email, frequency, sections, timezone, cursor, last, created,
                          deliver_at in rows]
            plans = plan(candidates, ArticleLookup(conn))
            batch = QueuedBatch(last_id=rows[-1].id, read=len(rows))
            if plans:
                batch.queued = insert_digests(conn, plans, now, message_id, note_id)
            return batch

    def article_lookup(self, work: Callable[[ArticleLookup], object]):
        """Run `work` with an ArticleLookup on a reading connection (previews, cursors)."""
        with self.store.reading() as conn:
            return work(ArticleLookup(conn))

    def insert_message(self, kind: str, subscriber_id: int | None, recipient: str,
                       message_id: str, payload: dict | None, now: datetime) -> int:
        """Queue a single message that is not a digest (a confirmation)."""
        with self.store.writing() as conn:
            return conn.execute(insert(outbox).values(
                kind=kind, subscriber_id=subscriber_id, recipient=recipient,
                message_id=message_id, payload=payload, state="queued", attempts=0,
                next_attempt_at=now, created_at=now).returning(outbox.c.id)).scalar_one()

    # --- delivery -----------------------------------------------------------------
    def release_expired(self, now: datetime) -> int:
        """Rows left 'sending' past their lease (their sender died) are queued again."""
        with self.store.writing() as conn:
            return conn.execute(
                update(outbox).where(outbox.c.state == "sending", outbox.c.lease_until < now)
                .values(state="queued", lease_until=None, claimed_by=None)).rowcount

    def claim(self, now: datetime, limit: int, lease_until: datetime, node: str,
              kind: str | None = None) -> list[Claimed]:
        """Take up to `limit` due rows (queued first, then deferred) for this node; only
        rows of `kind` when given."""
        with self.store.writing() as conn:
            ids: list[int] = []
            for state in ("queued", "deferred"):
                if len(ids) >= limit:
                    break
                due = select(outbox.c.id).where(outbox.c.state == state,
                                                outbox.c.next_attempt_at <= now)
                if kind:
                    due = due.where(outbox.c.kind == kind)
                ids += conn.execute(due.order_by(outbox.c.next_attempt_at)
                                    .limit(limit - len(ids))
                                    .with_for_update(skip_locked=True)).scalars().all()
            if not ids:
                return []
            conn.execute(update(outbox).where(outbox.c.id.in_(ids))
                         .values(state="sending", lease_until=lease_until, claimed_by=node))
            rows = conn.execute(
                select(outbox.c.id, outbox.c.kind, outbox.c.message_id, outbox.c.recipient,
                       outbox.c.attempts, outbox.c.payload, outbox.c.digest_id,
                       outbox.c.subscriber_id, subscribers.c.name, subscribers.c.status,
                       subscribers.c.token_version,
                       cast(digests.c.article_seqs, Text).label("seqs"), digests.c.more,
                       digests.c.note_id, outbox.c.edition_id)
                .select_from(outbox.outerjoin(subscribers,
                                              subscribers.c.id == outbox.c.subscriber_id)
                             .outerjoin(digests, digests.c.id == outbox.c.digest_id))
                .where(outbox.c.id.in_(ids)).order_by(outbox.c.id)).all()
        # Rows unpacked as tuples: attribute access by name costs more than the query.
        return [Claimed(id_, kind, message_id, recipient, attempts, payload or {}, digest_id,
                        subscriber_id, name or "", status, version or 0, self.parsed(seqs),
                        more or 0, note_id, edition_id)
                for (id_, kind, message_id, recipient, attempts, payload, digest_id,
                     subscriber_id, name, status, version, seqs, more, note_id,
                     edition_id) in rows]

    def parsed(self, text: str | None) -> tuple:
        """A JSON list (a digest's articles, a subscriber's sections) as a tuple, parsed
        once per distinct text: most subscribers share theirs."""
        if not text:
            return ()
        found = self._parsed.get(text)
        if found is None:
            if len(self._parsed) > 4096:
                self._parsed.clear()
            found = self._parsed[text] = tuple(json.loads(text) or ())
        return found

    def extend_leases(self, ids: Sequence[int], until: datetime, node: str) -> list[int]:
        """Keep rows this node is still working on from being taken by another; returns
        the ids still this node's (the others were recorded, or taken by another node)."""
        kept: list[int] = []
        with self.store.writing() as conn:
            for part in chunks(list(ids)):
                kept += conn.execute(update(outbox).where(outbox.c.id.in_(part),
                                                          outbox.c.state == "sending",
                                                          outbox.c.claimed_by == node)
                                     .values(lease_until=until)
                                     .returning(outbox.c.id)).scalars().all()
        return kept

    def record(self, outcomes: Sequence[Outcome], now: datetime, node: str,
               bounce_after: int) -> None:
        """Write a batch of outcomes in one transaction, with the bounce bookkeeping."""
        sent = [o for o in outcomes if o.state == "sent"]
        others = [o for o in outcomes if o.state != "sent"]
        with self.store.writing() as conn:
            for part in chunks([o.outbox_id for o in sent]):
                # Sent wins over anything: the recipient has the message.
                conn.execute(update(outbox).where(outbox.c.id.in_(part)).values(
                    state="sent", sent_at=now, lease_until=None, last_code=250,
                    last_error=None))
            record_digests_sent(conn, [o.outbox_id for o in sent], now)
            delivered_to = sorted({o.subscriber_id for o in sent if o.subscriber_id})
            for part in chunks(delivered_to):
                # Bounces count only when consecutive: a delivery starts again from zero.
                conn.execute(update(subscribers).where(subscribers.c.id.in_(part),
                                                       subscribers.c.bounce_count > 0)
                             .values(bounce_count=0))
            if others:
                # Only rows still ours: if our lease ran out, another sender owns them.
                conn.execute(
                    update(outbox).where(outbox.c.id == bindparam("oid"),
                                         outbox.c.state == "sending",
                                         outbox.c.claimed_by == node)
                    .values(state=bindparam("new_state"), attempts=bindparam("new_attempts"),
                            next_attempt_at=bindparam("next_at"), last_code=bindparam("code"),
                            last_error=bindparam("error"), last_attempt_at=now,
                            lease_until=None, claimed_by=None),
                    [{"oid": o.outbox_id, "new_state": o.state, "new_attempts": o.attempts,
                      "next_at": o.next_attempt_at or now, "code": o.code,
                      "error": (o.error or "")[:1000] or None} for o in others])
            bounced = sorted({o.subscriber_id for o in others if o.bounce and o.subscriber_id})
            if bounced:
                count_bounces(conn, bounced, bounce_after, now)

    def prune(self, before: datetime) -> int:
        """Forget what was queued before `before` and has been sent: digests (their
        outbox rows go with them) and other messages. A digest still unsent stays. Old
        periods are never due again (the cursor and last_digest_at moved on), so this
        cannot let a digest be queued twice. Returns how many messages were forgotten."""
        unsent = select(outbox.c.digest_id).where(
            outbox.c.state.in_(("queued", "sending", "deferred", "failed")),
            outbox.c.digest_id.is_not(None))
        with self.store.writing() as conn:
            old = conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.created_at < before, outbox.c.state == "sent")).scalar_one()
            conn.execute(delete(outbox).where(outbox.c.created_at < before,
                                              outbox.c.state == "sent"))
            conn.execute(delete(digests).where(digests.c.created_at < before,
                                               digests.c.id.not_in(unsent)))
            prune_notes(conn, before)
            return old

    # --- reports ------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.store.reading() as conn:
            found = dict(conn.execute(select(outbox.c.state, func.count())
                                      .group_by(outbox.c.state)).all())
        return {state: found.get(state, 0) for state in STATES}

    def due_count(self, now: datetime) -> int:
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.state.in_(("queued", "deferred")),
                outbox.c.next_attempt_at <= now)).scalar_one()

    def sendable_count(self, now: datetime) -> int:
        """Rows a sender could take now: the due ones and those whose sender's lease ran
        out (it died; another node's delivery pass queues them again)."""
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(outbox).where(or_(
                and_(outbox.c.state.in_(("queued", "deferred")),
                     outbox.c.next_attempt_at <= now),
                and_(outbox.c.state == "sending", outbox.c.lease_until < now)))
            ).scalar_one()

    def latest_errors(self, limit: int = 10) -> list[dict]:
        with self.store.reading() as conn:
            rows = conn.execute(
                select(outbox.c.id, outbox.c.recipient, outbox.c.state, outbox.c.attempts,
                       outbox.c.last_code, outbox.c.last_error, outbox.c.last_attempt_at,
                       outbox.c.next_attempt_at, outbox.c.message_id)
                .where(outbox.c.state != "sent", outbox.c.last_error.is_not(None))
                .order_by(outbox.c.last_attempt_at.desc(), outbox.c.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    def retry_failed(self, now: datetime) -> int:
        """Queue every failed message again, its attempts counted from zero."""
        with self.store.writing() as conn:
            return conn.execute(update(outbox).where(outbox.c.state == "failed").values(
                state="queued", attempts=0, next_attempt_at=now)).rowcount

    def articles_by_seq(self, seqs: Iterable[int]) -> dict[int, StoredArticle]:
        found = {}
        with self.store.reading() as conn:
            for part in chunks(sorted(set(seqs))):
                for row in conn.execute(select(articles).where(articles.c.seq.in_(part))):
                    found[row.seq] = to_article(row)
        return found

    def digest_messages(self) -> list[dict]:
        """Every digest with its outbox row (for tests and inspection; small lists)."""
        with self.store.reading() as conn:
            rows = conn.execute(
                select(digests.c.id, digests.c.subscriber_id, digests.c.period,
                       digests.c.article_seqs, digests.c.more, outbox.c.message_id,
                       outbox.c.state, outbox.c.recipient)
                .select_from(digests.join(outbox, outbox.c.digest_id == digests.c.id))
                .order_by(digests.c.id))
            return [dict(r._mapping) for r in rows]


def count_bounces(conn: Connection, subscriber_ids: list[int], bounce_after: int,
                  now: datetime) -> None:
    conn.execute(update(subscribers).where(subscribers.c.id == bindparam("sid"))
                 .values(bounce_count=subscribers.c.bounce_count + 1),
                 [{"sid": sid} for sid in subscriber_ids])
    for part in chunks(subscriber_ids):
        over = (subscribers.c.id.in_(part), subscribers.c.status == "active",
                subscribers.c.bounce_count >= bounce_after)
        newly = list(conn.execute(select(subscribers.c.id).where(*over)).scalars())
        conn.execute(update(subscribers).where(*over).values(status="bounced",
                                                             updated_at=now))
        record_subscriber_events(conn, "subscriber.bounced", newly, now)
