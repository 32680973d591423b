"""Store: the events record (what happened to subscribers and digests) and the webhook
deliveries made from it.

The record_* functions run inside the caller's transaction, so an event exists exactly
when its change was committed: a crash can neither lose one nor invent one. The webhooks
stage (publisher.webhooks) fans new events out to each receiver as deliveries and works
through them like the mail outbox.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, and_, delete, func, insert, literal, select, update

from publisher.store.api_schema import events, webhook_cursors, webhook_deliveries
from publisher.store.bulk import chunks
from publisher.store.schema import UTCDateTime, digests, outbox, subscribers

if TYPE_CHECKING:
    from publisher.store import Store

EVENT_KINDS = ("subscriber.confirmed", "subscriber.unsubscribed", "subscriber.bounced",
               "digest.sent")
STATUS_EVENTS = {"active": "subscriber.confirmed", "unsubscribed": "subscriber.unsubscribed",
                 "bounced": "subscriber.bounced"}


def record_subscriber_events(conn: Connection, kind: str, subscriber_ids: Sequence[int],
                             now: datetime) -> None:
    """One `kind` event for each subscriber, carrying them as they are after the change."""
    rows = []
    for part in chunks(list(subscriber_ids)):
        query = select(subscribers.c.id, subscribers.c.email, subscribers.c.name,
                       subscribers.c.status).where(subscribers.c.id.in_(part))
        rows += [{"kind": kind, "subscriber_id": row.id, "created_at": now,
                  "payload": {"subscriber": {"id": row.id, "email": row.email,
                                             "name": row.name, "status": row.status}}}
                 for row in conn.execute(query)]
    if rows:
        conn.execute(insert(events), rows)


def record_digests_sent(conn: Connection, outbox_ids: Sequence[int], now: datetime) -> None:
    """A digest.sent event for each digest among these just-sent outbox rows."""
    rows = []
    for part in chunks(list(outbox_ids)):
        query = (select(digests.c.id, digests.c.period, digests.c.article_seqs,
                        outbox.c.subscriber_id, outbox.c.recipient)
                 .select_from(outbox.join(digests, outbox.c.digest_id == digests.c.id))
                 .where(outbox.c.id.in_(part)))
        for row in conn.execute(query):
            held = row.article_seqs
            held = json.loads(held) if isinstance(held, str) else held or []
            rows.append({"kind": "digest.sent", "subscriber_id": row.subscriber_id,
                         "created_at": now, "payload": {
                             "digest": {"id": row.id, "period": row.period,
                                        "articles": len(held), "sent_at": now.isoformat()},
                             "subscriber": {"id": row.subscriber_id,
                                            "email": row.recipient}}})
    if rows:
        conn.execute(insert(events), rows)


class EventStore:
    def __init__(self, store: Store):
        self.store = store

    def for_subscriber(self, subscriber_id: int, limit: int = 200) -> list[dict]:
        query = (select(events.c.id, events.c.kind, events.c.created_at)
                 .where(events.c.subscriber_id == subscriber_id)
                 .order_by(events.c.id.desc()).limit(limit))
        with self.store.reading() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def fan_out(self, kinds_by_url: dict[str, tuple[str, ...]], now: datetime) -> int:
        """Queue a delivery of every event new to each receiver (of the kinds it takes).
        A receiver seen for the first time starts after the events already recorded."""
        queued = 0
        with self.store.writing() as conn:
            newest = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
            known = dict(conn.execute(select(webhook_cursors.c.url,
                                             webhook_cursors.c.last_event_id)).all())
            for url, kinds in kinds_by_url.items():
                if url not in known:
                    conn.execute(insert(webhook_cursors).values(
                        url=url, last_event_id=newest, added_at=now))
                    continue
                source = select(literal(url), events.c.id, literal("queued"), literal(0),
                                literal(now, UTCDateTime), literal(now, UTCDateTime)).where(
                    events.c.id > known[url], events.c.id <= newest, events.c.kind.in_(kinds))
                queued += conn.execute(insert(webhook_deliveries).from_select(
                    ["url", "event_id", "state", "attempts", "next_attempt_at",
                     "created_at"], source)).rowcount
                conn.execute(update(webhook_cursors).where(webhook_cursors.c.url == url)
                             .values(last_event_id=newest))
        return queued

    def forget_receivers(self, keep: Sequence[str]) -> int:
        """Drop the place and the waiting deliveries of receivers no longer in the
        settings (their events may then be pruned); returns the deliveries dropped."""
        with self.store.writing() as conn:
            conn.execute(delete(webhook_cursors).where(webhook_cursors.c.url.not_in(keep)))
            return conn.execute(delete(webhook_deliveries).where(
                webhook_deliveries.c.url.not_in(keep),
                webhook_deliveries.c.state == "queued")).rowcount

    def due(self, urls: Sequence[str], now: datetime, limit: int) -> list[dict]:
        """Deliveries to make now, oldest first."""
        query = (select(webhook_deliveries.c.id, webhook_deliveries.c.url,
                        webhook_deliveries.c.attempts, events.c.id.label("event_id"),
                        events.c.kind, events.c.payload, events.c.created_at)
                 .select_from(webhook_deliveries.join(
                     events, events.c.id == webhook_deliveries.c.event_id))
                 .where(webhook_deliveries.c.state == "queued",
                        webhook_deliveries.c.next_attempt_at <= now,
                        webhook_deliveries.c.url.in_(list(urls)))
                 .order_by(webhook_deliveries.c.id).limit(limit))
        with self.store.reading() as conn:
            found = [dict(row._mapping) for row in conn.execute(query)]
        for row in found:
            if isinstance(row["payload"], str):
                row["payload"] = json.loads(row["payload"])
        return found

    def delivered(self, delivery_id: int, now: datetime, code: int) -> None:
        with self.store.writing() as conn:
            conn.execute(update(webhook_deliveries)
                         .where(webhook_deliveries.c.id == delivery_id)
                         .values(state="sent", sent_at=now, last_code=code, last_error=None,
                                 attempts=webhook_deliveries.c.attempts + 1))

    def attempt_failed(self, delivery_id: int, attempts: int, next_at: datetime, give_up: bool,
                       code: int | None, error: str) -> None:
        with self.store.writing() as conn:
            conn.execute(update(webhook_deliveries)
                         .where(webhook_deliveries.c.id == delivery_id)
                         .values(state="failed" if give_up else "queued", attempts=attempts,
                                 next_attempt_at=next_at, last_code=code,
                                 last_error=error[:1000]))

    def delivery_counts(self) -> dict[str, int]:
        """Webhook deliveries in each state (every state listed), for status."""
        with self.store.reading() as conn:
            found = dict(conn.execute(select(webhook_deliveries.c.state, func.count())
                                      .group_by(webhook_deliveries.c.state)).all())
        return {state: found.get(state, 0) for state in ("queued", "sent", "failed")}

    def deliveries(self, url: str | None = None) -> list[dict]:
        """Every delivery (of one receiver), oldest first: for status and tests."""
        query = (select(webhook_deliveries, events.c.kind)
                 .join(events, events.c.id == webhook_deliveries.c.event_id)
                 .order_by(webhook_deliveries.c.id))
        if url:
            query = query.where(webhook_deliveries.c.url == url)
        with self.store.reading() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def prune(self, before: datetime) -> int:
        """Forget events recorded before `before` that no receiver still waits for."""
        waiting = select(webhook_deliveries.c.event_id).where(
            webhook_deliveries.c.state == "queued")
        with self.store.writing() as conn:
            conn.execute(delete(webhook_deliveries).where(
                webhook_deliveries.c.created_at < before,
                webhook_deliveries.c.state != "queued"))
            return conn.execute(delete(events).where(and_(
                events.c.created_at < before, events.c.id.not_in(waiting)))).rowcount
