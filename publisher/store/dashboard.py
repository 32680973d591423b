"""Store: the console dashboard's counts by day (UTC days): sign-ups, digests queued,
messages by their state. Each reads one indexed time column over its window."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, cast, func, select

from publisher.store.schema import digests, outbox, subscribers

if TYPE_CHECKING:
    from publisher.store import Store


def as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


class DashboardStore:
    def __init__(self, store: Store):
        self.store = store

    def day(self, column):
        """The UTC calendar day of a time column. SQLite stores UTC text already;
        PostgreSQL's timestamptz is cast in UTC, whatever the session's zone."""
        if self.store.dialect == "sqlite":
            return func.date(column)
        return cast(func.timezone("UTC", column), Date)

    def per_day(self, column, since: datetime, *extra) -> list[tuple]:
        day = self.day(column).label("day")
        query = (select(day, *extra, func.count()).where(column >= since)
                 .group_by(day, *extra).order_by(day))
        with self.store.reading() as conn:
            return [(as_date(row[0]), *row[1:]) for row in conn.execute(query)]

    def signups(self, since: datetime) -> tuple[int, dict[date, int]]:
        """(subscribers created before `since`, subscribers created per day since)."""
        with self.store.reading() as conn:
            before = conn.execute(select(func.count()).select_from(subscribers)
                                  .where(subscribers.c.created_at < since)).scalar_one()
        return before, dict(self.per_day(subscribers.c.created_at, since))

    def digests_per_day(self, since: datetime) -> dict[date, int]:
        return dict(self.per_day(digests.c.created_at, since))

    def messages_per_day(self, since: datetime) -> dict[date, dict[str, int]]:
        """Messages queued each day, by their state now (sent, deferred, failed, ...)."""
        found: dict[date, dict[str, int]] = {}
        for day, state, count in self.per_day(outbox.c.created_at, since, outbox.c.state):
            found.setdefault(day, {})[state] = count
        return found
