"""Store: statements for upstream sources, their fetch state and the articles they bring.

A successful fetch stores its new and edited articles and the source's new validators
(ETag, Last-Modified) in one transaction, so a crash never records a validator for
entries that were not stored: the next fetch would otherwise get a 304 and lose them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, insert, select, update

from publisher.article import Article
from publisher.store.article_writes import edit_article, insert_articles
from publisher.store.bulk import chunks
from publisher.store.schema import articles, sources

if TYPE_CHECKING:
    from publisher.store import Store


@dataclass(frozen=True)
class SourceState:
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    failures: int  # consecutive; 0 after any success
    last_error: str | None
    last_ok_at: datetime | None
    last_attempt_at: datetime | None
    next_fetch_at: datetime | None


class SourceStore:
    def __init__(self, store: Store):
        self.store = store

    def states(self) -> dict[str, SourceState]:
        with self.store.reading() as conn:
            return {row.name: SourceState(**row._mapping)
                    for row in conn.execute(select(sources))}

    def save_fetch(self, name: str, url: str, now: datetime, *, new: Sequence[Article],
                   edited: Sequence[tuple[str, Article]], etag: str | None,
                   last_modified: str | None, next_fetch_at: datetime) -> None:
        """Store a fetch's articles and mark the source healthy, in one transaction."""
        with self.store.writing() as conn:
            if new:
                insert_articles(conn, list(new), now)
            for stored_id, article in edited:
                edit_article(conn, stored_id, article, now)
            put_state(conn, name, url=url, etag=etag, last_modified=last_modified,
                      failures=0, last_error=None, last_ok_at=now, last_attempt_at=now,
                      next_fetch_at=next_fetch_at)

    def save_failure(self, name: str, url: str, now: datetime, error: str,
                     next_fetch_at: datetime) -> int:
        """Record a failed fetch; returns the failures in a row, this one included."""
        values = {"url": url, "last_error": error, "last_attempt_at": now,
                  "next_fetch_at": next_fetch_at}
        with self.store.writing() as conn:
            failures = conn.execute(
                update(sources).where(sources.c.name == name)
                .values(failures=sources.c.failures + 1, **values)
                .returning(sources.c.failures)).scalar()
            if failures is None:  # the first fetch of this source
                conn.execute(insert(sources).values(name=name, failures=1, **values))
                failures = 1
        return failures

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """The stored content hash of each of these article ids that is stored."""
        found: dict[str, str] = {}
        with self.store.reading() as conn:
            for part in chunks(list(ids)):
                found.update(conn.execute(select(articles.c.id, articles.c.content_hash)
                                          .where(articles.c.id.in_(part))).all())
        return found

    def article_counts(self, prefix: str) -> dict[str, int]:
        """Articles stored per `source` value starting with `prefix`."""
        with self.store.reading() as conn:
            rows = conn.execute(select(articles.c.source, func.count())
                                .where(articles.c.source.startswith(prefix, autoescape=True))
                                .group_by(articles.c.source))
            return {source: count for source, count in rows}


def put_state(conn: Connection, name: str, **values) -> None:
    """Update the source's row, or insert it on its first fetch (a portable upsert: the
    run lock means no other writer races us to the insert)."""
    done = conn.execute(update(sources).where(sources.c.name == name).values(**values)
                        .returning(sources.c.name)).first()
    if done is None:
        conn.execute(insert(sources).values(name=name, **values))
