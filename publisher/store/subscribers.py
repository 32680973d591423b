"""Store: statements for subscribers (add, look up, change); the ledger reads them too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from publisher.errors import AddressError
from publisher.store.schema import subscribers

if TYPE_CHECKING:
    from publisher.store import Store

STATUSES = ("pending", "active", "unsubscribed", "bounced")
FREQUENCIES = ("instant", "daily", "weekly")


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


def to_subscriber(row: Row) -> Subscriber:
    data = dict(row._mapping)
    data["sections"] = tuple(data["sections"] or ())
    return Subscriber(**data)


class SubscriberStore:
    def __init__(self, store: Store):
        self.store = store

    def add(self, email: str, now: datetime, *, name: str = "", status: str = "pending",
            frequency: str = "daily", sections: Sequence[str] = (), timezone: str = "",
            cursor: int = 0) -> Subscriber:
        """Insert a subscriber; AddressError if the address is already on the list.
        `email` must be normalized already (publisher.addresses.normalize_address)."""
        check_choice("status", status, STATUSES)
        check_choice("frequency", frequency, FREQUENCIES)
        try:
            with self.store.writing() as conn:
                new_id = conn.execute(insert(subscribers).values(
                    email=email, name=name, status=status, frequency=frequency,
                    sections=list(sections), timezone=timezone, cursor=cursor,
                    bounce_count=0, created_at=now, updated_at=now, token_version=0,
                    confirmed_at=now if status == "active" else None,
                ).returning(subscribers.c.id)).scalar_one()
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
        """Set some of status, name, frequency, sections, timezone."""
        allowed = {"status", "name", "frequency", "sections", "timezone"}
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
            conn.execute(update(subscribers).where(subscribers.c.id == subscriber_id)
                         .values(updated_at=now, **values))
        return self.by_id(subscriber_id)

    def count_by_status(self) -> dict[str, int]:
        with self.store.reading() as conn:
            rows = conn.execute(select(subscribers.c.status, func.count())
                                .group_by(subscribers.c.status))
            return {status: rows_count for status, rows_count in rows}


def check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise AddressError(f"{what} {value!r} is not one of {', '.join(choices)}")
