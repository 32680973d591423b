"""Store: the counts `publisher status` and the metrics read (articles, outbox, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from publisher.store.schema import articles, outbox

if TYPE_CHECKING:
    from publisher.store import Store

OUTBOX_STATES = ("queued", "sending", "deferred", "sent", "failed")
WAITING = ("queued", "sending", "deferred")


class StatusStore:
    def __init__(self, store: Store):
        self.store = store

    def articles(self) -> tuple[int, datetime | None]:
        """How many articles are stored, and when the newest was stored."""
        with self.store.reading() as conn:
            count, newest = conn.execute(
                select(func.count(), func.max(articles.c.stored_at))).one()
        return count, newest

    def outbox_by_state(self) -> dict[str, int]:
        """Messages in each outbox state, every state listed (zero when none)."""
        with self.store.reading() as conn:
            found = dict(conn.execute(select(outbox.c.state, func.count())
                                      .group_by(outbox.c.state)).all())
        return {state: found.get(state, 0) for state in OUTBOX_STATES} | found

    def oldest_waiting(self) -> datetime | None:
        """When the longest-waiting unsent message was queued."""
        with self.store.reading() as conn:
            return conn.execute(select(func.min(outbox.c.created_at))
                                .where(outbox.c.state.in_(WAITING))).scalar()
