"""Store: statements for subscribers (add, look up, change, import, forget); the ledger
reads them too.

Imports go through `merge_batch`: one transaction per batch, one query for the addresses
already known, then one executemany for new rows and one for changed rows, so 100,000
rows take seconds rather than 100,000 transactions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Row, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from publisher.errors import AddressError
from publisher.store.api_schema import events
from publisher.store.bulk import chunks
from publisher.store.events import STATUS_EVENTS, record_subscriber_events
from publisher.store.schema import (
    article_sections,
    bounce_events,
    digests,
    outbox,
    subscribers,
)

if TYPE_CHECKING:
    from publisher.store import Store

STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
# Addresses nothing is sent to and that no import or `add` makes active again.
SUPPRESSED = ("bounced", "complained")
FREQUENCIES = ("instant", "daily", "weekly")
# The columns an import or a preferences form may set on an existing subscriber.
MUTABLE = ("name", "status", "frequency", "sections", "timezone", "confirmed_at")


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    status: str
    frequency: str
    sections: tuple[str, ...]
    timezone: str
    cursor: int
    last_digest_at: datetime | None
    bounce_count: int
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    token_version: int
    deliver_at: str = ""  # HH:MM in their zone; empty: [digest] daily_at
    welcomed_at: datetime | None = None  # when their welcome mail was queued


@dataclass(frozen=True)
class Welcome:
    """A welcome mail to queue with a confirmation: its fixed Message-ID (message_id[0]
    + the subscriber's id + message_id[1]) and what it renders from (articles' seqs)."""

    message_id: tuple[str, str]
    payload: dict


def insert_welcome(conn, subscriber_id: int, welcome: Welcome, now: datetime) -> bool:
    """Queue the welcome mail unless this subscriber was ever welcomed: welcomed_at is
    set by the same statement that checks it, so two confirmations at once (two nodes,
    two clicks) queue one message. True when it was queued."""
    claimed = conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id,
                                                     subscribers.c.welcomed_at.is_(None))
                           .values(welcomed_at=now)).rowcount
    if not claimed:
        return False
    email = conn.execute(select(subscribers.c.email)
                         .where(subscribers.c.id == subscriber_id)).scalar_one()
    conn.execute(insert(outbox).values(
        kind="welcome", subscriber_id=subscriber_id, recipient=email,
        message_id=f"{welcome.message_id[0]}{subscriber_id}{welcome.message_id[1]}",
        payload=welcome.payload, state="queued", attempts=0,
        next_attempt_at=now, created_at=now))
    return True


def to_subscriber(row: Row) -> Subscriber:
    data = dict(row._mapping)
    data["sections"] = tuple(data["sections"] or ())
    return Subscriber(**data)


@dataclass(frozen=True)
class Forgotten:
    """What `forget` deleted, for the command's report."""

    subscribers: int
    digests: int
    messages: int


# merge_batch's planner: given the stored rows of the batch's addresses (email -> dict of
# id and MUTABLE columns), return the rows to insert and the changes to apply (dicts
# with "id" and every MUTABLE column, and "cursor" for a subscriber made active again).
Planner = Callable[[dict[str, dict]], tuple[list[dict], list[dict]]]


class SubscriberStore:
    def __init__(self, store: Store):
        self.store = store

    def add(self, email: str, now: datetime, *, name: str = "", status: str = "pending",
            frequency: str = "daily", sections: Sequence[str] = (), timezone: str = "",
            cursor: int = 0, deliver_at: str = "",
            welcome: Welcome | None = None) -> Subscriber:
        """Insert a subscriber; AddressError if the address is already on the list.
        `email` must be normalized already (publisher.addresses.normalize_address).
        An active one gets `welcome` queued in the same transaction."""
        check_choice("status", status, STATUSES)
        check_choice("frequency", frequency, FREQUENCIES)
        try:
            with self.store.writing() as conn:
                new_id = conn.execute(insert(subscribers).values(
                    email=email, name=name, status=status, frequency=frequency,
                    sections=list(sections), timezone=timezone, cursor=cursor,
                    deliver_at=deliver_at,
                    bounce_count=0, created_at=now, updated_at=now, token_version=0,
                    confirmed_at=now if status == "active" else None,
                ).returning(subscribers.c.id)).scalar_one()
                if welcome is not None and status == "active":
                    insert_welcome(conn, new_id, welcome, now)
        except IntegrityError as exc:
            raise AddressError(f"{email} is already subscribed") from exc
        return self.by_id(new_id)

    def by_id(self, subscriber_id: int) -> Subscriber | None:
        with self.store.reading() as conn:
            row = conn.execute(select(subscribers)
                               .where(subscribers.c.id == subscriber_id)).first()
        return to_subscriber(row) if row else None

    def by_email(self, email: str) -> Subscriber | None:
        with self.store.reading() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email == email)).first()
        return to_subscriber(row) if row else None

    def change(self, subscriber_id: int, now: datetime, **values) -> Subscriber:
        """Set some of status, name, frequency, sections, timezone, deliver_at."""
        allowed = {"status", "name", "frequency", "sections", "timezone", "deliver_at"}
        if set(values) - allowed:
            raise ValueError(f"cannot change {sorted(set(values) - allowed)}")
        if "status" in values:
            check_choice("status", values["status"], STATUSES)
            if values["status"] == "active":
                values["confirmed_at"] = func.coalesce(subscribers.c.confirmed_at, now)
        if "frequency" in values:
            check_choice("frequency", values["frequency"], FREQUENCIES)
        if "sections" in values:
            values["sections"] = list(values["sections"])
        with self.store.writing() as conn:
            before = conn.execute(select(subscribers.c.status)
                                  .where(subscribers.c.id == subscriber_id)).scalar()
            conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                         .values(updated_at=now, **values))
            kind = STATUS_EVENTS.get(values.get("status", before))
            if before is not None and values.get("status", before) != before and kind:
                record_subscriber_events(conn, kind, [subscriber_id], now)
        return self.by_id(subscriber_id)

    def activate(self, subscriber_id: int, now: datetime, cursor: int,
                 welcome: Welcome | None = None) -> Subscriber:
        """Make a subscriber active from `cursor` on (a confirmation, or a return after
        unsubscribing or bouncing): digests start with what arrives from now on. With
        `welcome`, their welcome mail is queued in the same transaction (if they never
        had one)."""
        with self.store.writing() as conn:
            conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id).values(
                status="active", cursor=cursor, bounce_count=0, updated_at=now,
                confirmed_at=now))
            record_subscriber_events(conn, "subscriber.confirmed", [subscriber_id], now)
            if welcome is not None:
                insert_welcome(conn, subscriber_id, welcome, now)
        return self.by_id(subscriber_id)

    def unsubscribe(self, subscriber_id: int, now: datetime) -> Subscriber:
        """Idempotent: a second call (a repeated one-click POST) changes nothing."""
        with self.store.writing() as conn:
            changed = conn.execute(update(subscribers)
                                   .where(subscribers.c.id == subscriber_id,
                                          subscribers.c.status != "unsubscribed")
                                   .values(status="unsubscribed", updated_at=now)).rowcount
            if changed:
                record_subscriber_events(conn, "subscriber.unsubscribed", [subscriber_id], now)
        return self.by_id(subscriber_id)

    def revoke_links(self, subscriber_id: int, now: datetime) -> Subscriber:
        """Bump token_version: every link sent so far stops working."""
        with self.store.writing() as conn:
            conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                         .values(token_version=subscribers.c.token_version + 1,
                                 updated_at=now))
        return self.by_id(subscriber_id)

    def forget(self, subscriber_id: int) -> Forgotten:
        """Delete every trace of a subscriber: their row, digests and queued or sent
        messages (also messages to their address not tied to the row), in one transaction.
        Ids are never reused (AUTOINCREMENT, sequences), so old links cannot come back
        to life for someone who signs up later."""
        with self.store.writing() as conn:
            email = conn.execute(select(subscribers.c.email)
                                 .where(subscribers.c.id == subscriber_id)).scalar()
            if email is None:
                return Forgotten(0, 0, 0)
            messages = conn.execute(delete(outbox).where(or_(
                outbox.c.subscriber_id == subscriber_id, outbox.c.recipient == email,
                outbox.c.digest_id.in_(select(digests.c.id)
                                       .where(digests.c.subscriber_id == subscriber_id)),
            ))).rowcount
            gone_digests = conn.execute(delete(digests).where(
                digests.c.subscriber_id == subscriber_id)).rowcount
            conn.execute(delete(events).where(events.c.subscriber_id == subscriber_id))
            # Bounce reports hold the address (and the raw message): they go too.
            conn.execute(delete(bounce_events).where(or_(
                bounce_events.c.subscriber_id == subscriber_id, bounce_events.c.email == email)))
            conn.execute(delete(subscribers).where(subscribers.c.id == subscriber_id))
        return Forgotten(1, gone_digests, messages)

    def stale_pending(self, before: datetime) -> list[int]:
        """Pending subscribers never confirmed whose last request is older than `before`
        (someone typed an address that never followed its link)."""
        with self.store.reading() as conn:
            return list(conn.execute(select(subscribers.c.id).where(
                subscribers.c.status == "pending", subscribers.c.confirmed_at.is_(None),
                subscribers.c.updated_at < before).order_by(subscribers.c.id)).scalars())

    # --- lists ----------------------------------------------------------------------
    def stream(self, status: str | None = None, batch: int = 2000) -> Iterator[Subscriber]:
        """Every subscriber in id order, read in pages by id so no read transaction stays
        open however long the consumer takes."""
        last_id = 0
        while True:
            query = (select(subscribers).where(subscribers.c.id > last_id)
                     .order_by(subscribers.c.id).limit(batch))
            if status:
                query = query.where(subscribers.c.status == status)
            with self.store.reading() as conn:
                page = [to_subscriber(row) for row in conn.execute(query)]
            yield from page
            if len(page) < batch:
                return
            last_id = page[-1].id

    def count_by_status(self) -> dict[str, int]:
        with self.store.reading() as conn:
            rows = conn.execute(select(subscribers.c.status, func.count())
                                .group_by(subscribers.c.status))
            return {status: rows_count for status, rows_count in rows}

    def merge_batch(self, emails: Sequence[str], plan: Planner, now: datetime) -> None:
        """One import batch in one transaction: read the stored rows of `emails`, let
        `plan` decide, insert and update in bulk."""
        columns = [subscribers.c.id, subscribers.c.email,
                   *(subscribers.c[name] for name in MUTABLE)]
        with self.store.writing() as conn:
            stored = {}
            for part in chunks(list(emails)):
                for row in conn.execute(select(*columns)
                                        .where(subscribers.c.email.in_(part))):
                    data = dict(row._mapping)
                    data["sections"] = tuple(data["sections"] or ())
                    stored[data["email"]] = data
            inserts, changes = plan(stored)
            if inserts:
                conn.execute(insert(subscribers), [
                    {**row, "sections": list(row["sections"]), "bounce_count": 0,
                     "token_version": 0, "updated_at": now} for row in inserts])
            if changes:
                conn.execute(
                    update(subscribers).where(subscribers.c.id == bindparam("row_id"))
                    .values(updated_at=now, **{name: bindparam(f"new_{name}")
                                               for name in MUTABLE}),
                    [{"row_id": row["id"], **{f"new_{name}": row[name] for name in MUTABLE}}
                     | {"new_sections": list(row["sections"])} for row in changes])
            # Rows made active again start their digests afresh.
            restarted = [{"row_id": row["id"], "new_cursor": row["cursor"]}
                         for row in changes if "cursor" in row]
            if restarted:
                conn.execute(
                    update(subscribers).where(subscribers.c.id == bindparam("row_id"))
                    .values(cursor=bindparam("new_cursor"), bounce_count=0), restarted)

    # --- what the web pages show ------------------------------------------------------
    def known_sections(self) -> list[str]:
        """The sections articles have, which a subscriber can choose from."""
        with self.store.reading() as conn:
            return list(conn.execute(select(article_sections.c.section).distinct()
                                     .order_by(article_sections.c.section)).scalars())

    def digest_count(self, subscriber_id: int) -> int:
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(digests)
                                .where(digests.c.subscriber_id == subscriber_id)).scalar_one()

    def digested_seqs(self, subscriber_id: int, limit: int) -> list[int]:
        """The sequence numbers of the articles of a subscriber's digests, newest digest
        first (and within a digest, its own order), each once, at most `limit`."""
        seqs: dict[int, None] = {}
        query = (select(digests.c.article_seqs).where(digests.c.subscriber_id == subscriber_id)
                 .order_by(digests.c.created_at.desc(), digests.c.id.desc()))
        with self.store.reading() as conn:
            for held in conn.execute(query).scalars():
                for seq in held or ():
                    seqs.setdefault(seq)
                    if len(seqs) >= limit:
                        return list(seqs)
        return list(seqs)


def check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise AddressError(f"{what} {value!r} is not one of {', '.join(choices)}")
