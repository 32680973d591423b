"""Store: the proof-of-work challenges already solved, so a solution counts once.

Kept in the database rather than in memory so that several nodes behind one load
balancer (on PostgreSQL) refuse a solution replayed to another node too. Rows live only
until their challenge expires: spending prunes the expired ones in the same transaction,
which keeps the table as small as the challenges of the last few minutes.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.store.schema import spent_challenges

if TYPE_CHECKING:
    from publisher.store import Store


class ChallengeStore:
    def __init__(self, store: Store):
        self.store = store

    def spend(self, challenge: str, expires_at: datetime, now: datetime) -> bool:
        """Record `challenge` as solved; False if it was solved before (a replay)."""
        dialect = postgresql if self.store.dialect == "postgresql" else sqlite
        with self.store.writing() as conn:
            conn.execute(delete(spent_challenges).where(spent_challenges.c.expires_at <= now))
            inserted = conn.execute(
                dialect.insert(spent_challenges)
                .values(challenge=challenge, expires_at=expires_at)
                .on_conflict_do_nothing(index_elements=[spent_challenges.c.challenge])
                .returning(spent_challenges.c.challenge)).first()
            return inserted is not None

    def count(self) -> int:
        """Rows held (for tests and status): the unexpired spent challenges."""
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(spent_challenges)).scalar_one()
