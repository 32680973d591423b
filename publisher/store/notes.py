"""Store: editor's notes as digests carried them, and a digest as its web page shows it.

A note is stored once per distinct content (its hash), when the queue pass first uses
it; digests point at it (digests.note_id). Notes no digest points at any more are
forgotten with the sent messages ([mail] keep_days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Text, cast, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from publisher.store.schema import digest_notes, digests

if TYPE_CHECKING:
    from publisher.store import Store


@dataclass(frozen=True)
class StoredDigest:
    """One queued digest, for its page on the web."""

    id: int
    subscriber_id: int
    article_seqs: tuple[int, ...]
    more: int
    note_id: int | None
    created_at: datetime


class NoteStore:
    def __init__(self, store: Store):
        self.store = store

    def save(self, content_hash: str, html: str, text: str, until: datetime,
             now: datetime) -> int:
        """The id of the note with this content, stored now if it is new."""
        with self.store.writing() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(digest_notes).values(
                content_hash=content_hash, html=html, text=text, until=until,
                created_at=now).on_conflict_do_nothing(index_elements=["content_hash"]))
            return conn.execute(select(digest_notes.c.id).where(
                digest_notes.c.content_hash == content_hash)).scalar_one()

    def by_id(self, note_id: int) -> dict | None:
        """{"html", "text"} of a stored note, or None when it is gone."""
        with self.store.reading() as conn:
            row = conn.execute(select(digest_notes.c.html, digest_notes.c.text)
                               .where(digest_notes.c.id == note_id)).first()
        return {"html": row.html, "text": row.text} if row else None

    def digest(self, digest_id: int) -> StoredDigest | None:
        """A digest still kept (sent ones are forgotten after [mail] keep_days)."""
        with self.store.reading() as conn:
            row = conn.execute(select(
                digests.c.id, digests.c.subscriber_id,
                cast(digests.c.article_seqs, Text).label("seqs"), digests.c.more,
                digests.c.note_id, digests.c.created_at)
                .where(digests.c.id == digest_id)).first()
        if row is None:
            return None
        return StoredDigest(row.id, row.subscriber_id, self.store.ledger.parsed(row.seqs),
                            row.more, row.note_id, row.created_at)


def prune_notes(conn: Connection, before: datetime) -> None:
    """Forget notes stored before `before` that no digest shows any more."""
    used = select(digests.c.note_id).where(digests.c.note_id.is_not(None))
    conn.execute(delete(digest_notes).where(digest_notes.c.created_at < before,
                                            digest_notes.c.id.not_in(used)))
