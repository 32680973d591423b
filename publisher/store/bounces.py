"""Store: statements for bounce events (record one and apply its decision in the same
transaction, history, counts for status and metrics, pruning).

The policy itself (what a hard, soft or complaint event does to a subscriber) belongs
to the bounces stage and comes in as a function; this module only makes sure the event,
the soft-bounce count it reads and the status it writes are one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from publisher.store.events import STATUS_EVENTS, record_subscriber_events
from publisher.store.schema import bounce_events, outbox, subscribers

if TYPE_CHECKING:
    from publisher.store import Store

RAW_MAX = 256 * 1024
KINDS = ("hard", "soft", "complaint")
# decide(kind, current status, soft bounces in the window including this one):
# the status to set (None: leave it) and the words saying what was done.
Decide = Callable[[str, str, int], tuple[str | None, str]]


@dataclass(frozen=True)
class BounceEvent:
    id: int
    subscriber_id: int | None
    email: str | None
    kind: str
    origin: str
    status: str
    detail: str
    message_id: str | None
    action: str
    received_at: datetime


@dataclass(frozen=True)
class Recorded:
    duplicate: bool
    action: str  # what was done, for the command's line


EVENT_COLUMNS = [bounce_events.c[name] for name in (
    "id", "subscriber_id", "email", "kind", "origin", "status", "detail", "message_id",
    "action", "received_at")]


class BounceStore:
    def __init__(self, store: Store):
        self.store = store

    # --- whom a bounce is about ----------------------------------------------------------
    def first_subscriber(self, candidates: list[tuple[str, str, object]]
                         ) -> tuple[int, str, str] | None:
        """(id, address, how) of the first candidate that names a subscriber, tried in
        the caller's order, in one read. A candidate is (how, what, value), `what` one of
        "id", "outbox" (our outbox row, pruned after [mail] keep_days), "emails",
        "message_ids" (our messages' Message-IDs)."""
        with self.store.reading() as conn:
            for how, what, value in candidates:
                found = conn.execute(self.lookup(what, value)).first() if value else None
                if found:
                    return found[0], found[1], how
        return None

    @staticmethod
    def lookup(what: str, value):
        person = select(subscribers.c.id, subscribers.c.email)
        if what == "id":
            return person.where(subscribers.c.id == value)
        if what == "emails":
            return person.where(subscribers.c.email.in_(value[:50])).limit(1)
        sent = select(outbox.c.subscriber_id)
        sent = sent.where(outbox.c.id == value) if what == "outbox" \
            else sent.where(outbox.c.message_id.in_(value[:20]))
        return person.where(subscribers.c.id.in_(sent.scalar_subquery())).limit(1)

    # --- recording -----------------------------------------------------------------------
    def record(self, event: dict, decide: Decide, soft_since: datetime,
               now: datetime) -> Recorded:
        """Store one event and apply `decide` to its subscriber, in one transaction. The
        same fingerprint twice (a re-read mailbox, a retried webhook) changes nothing:
        its insert fails on the unique fingerprint and the transaction rolls back."""
        raw = event.get("raw")
        event = {**event, "raw": raw[:RAW_MAX] if raw else None}
        try:
            with self.store.writing() as conn:
                new_status, action = self.decision(conn, event, decide, soft_since)
                conn.execute(insert(bounce_events).values(action=action[:60], **event))
                if new_status:
                    conn.execute(update(subscribers)
                                 .where(subscribers.c.id == event["subscriber_id"])
                                 .values(status=new_status, updated_at=now))
                    if new_status in STATUS_EVENTS:  # subscriber.bounced, for webhooks
                        record_subscriber_events(conn, STATUS_EVENTS[new_status],
                                                 [event["subscriber_id"]], now)
        except IntegrityError:
            return Recorded(True, "already recorded; nothing done")
        return Recorded(False, action)

    def decision(self, conn, event: dict, decide: Decide,
                 soft_since: datetime) -> tuple[str | None, str]:
        subscriber_id = event.get("subscriber_id")
        if subscriber_id is None:
            return None, "no such subscriber; recorded"
        query = select(subscribers.c.status).where(subscribers.c.id == subscriber_id)
        if self.store.dialect == "postgresql":
            query = query.with_for_update()
        status = conn.execute(query).scalar()
        soft = 0
        if event["kind"] == "soft":  # the earlier ones in the window, and this one
            soft = 1 + conn.execute(select(func.count()).select_from(bounce_events).where(
                bounce_events.c.subscriber_id == subscriber_id,
                bounce_events.c.kind == "soft",
                bounce_events.c.received_at >= soft_since)).scalar_one()
        new_status, action = decide(event["kind"], status, soft)
        return (new_status if new_status != status else None), action

    # --- reading -------------------------------------------------------------------------
    def events(self, subscriber_id: int | None = None, email: str | None = None,
               limit: int = 100) -> list[BounceEvent]:
        """Newest first; one subscriber's (by id or by the address named) or everyone's."""
        query = select(*EVENT_COLUMNS).order_by(bounce_events.c.received_at.desc(),
                                                bounce_events.c.id.desc()).limit(limit)
        if subscriber_id is not None or email is not None:
            query = query.where(or_(bounce_events.c.subscriber_id == (subscriber_id or -1),
                                    bounce_events.c.email == (email or "")))
        with self.store.reading() as conn:
            return [BounceEvent(*row) for row in conn.execute(query)]

    def raw(self, event_id: int) -> bytes | None:
        with self.store.reading() as conn:
            return conn.execute(select(bounce_events.c.raw)
                                .where(bounce_events.c.id == event_id)).scalar()

    def counts_by_day(self, since: datetime) -> dict[tuple[str, str], int]:
        """{(YYYY-MM-DD, kind): events} for events received since `since` (UTC days)."""
        counts: dict[tuple[str, str], int] = {}
        with self.store.reading() as conn:
            for received, kind in conn.execute(
                    select(bounce_events.c.received_at, bounce_events.c.kind)
                    .where(bounce_events.c.received_at >= since)):
                key = (received.date().isoformat(), kind)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def counts_since(self, since: datetime) -> dict[str, int]:
        """{kind: events} received since `since`."""
        with self.store.reading() as conn:
            return dict(conn.execute(select(bounce_events.c.kind, func.count())
                                     .where(bounce_events.c.received_at >= since)
                                     .group_by(bounce_events.c.kind)).all())

    def sent_since(self, since: datetime) -> int:
        """Messages sent since `since`: what a complaint rate is a share of."""
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.state == "sent", outbox.c.sent_at >= since)).scalar_one()

    def prune(self, before: datetime) -> int:
        with self.store.writing() as conn:
            return conn.execute(delete(bounce_events)
                                .where(bounce_events.c.received_at < before)).rowcount
