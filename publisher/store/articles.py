"""Store: statements for articles, their sections and the inbox files they came from."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import (
    Row,
    Text,
    func,
    select,
    type_coerce,
    union_all,
    update,
)

from publisher.article import Article, StoredArticle
from publisher.store.article_writes import edit_article, insert_articles, next_change
from publisher.store.bulk import among, chunks
from publisher.store.inbox_files import FileStat, record_files
from publisher.store.schema import article_sections, articles, schema_version

if TYPE_CHECKING:
    from publisher.store import Store


@dataclass
class FilePlan:
    """What one inbox file changes: its new, edited and moved articles."""

    path: str
    sha256: str
    count: int
    stat: FileStat | None = None  # the file as it was read; None: read it next time too
    new: list[Article] = field(default_factory=list)
    edited: list[tuple[str, Article]] = field(default_factory=list)
    moved: list[tuple[str, int]] = field(default_factory=list)  # (id, new position)


class Stamp(NamedTuple):
    """What tells the feeds stage an article is unchanged since it was last published:
    its content hash moves with every edit, its seq and slug never do."""

    seq: int
    slug: str
    content_hash: str


class PublishedArticle(NamedTuple):
    """What feeds and pages show of a stored article: everything but the plain-text
    paragraphs and the inbox bookkeeping. (A NamedTuple: a full build makes 100,000 of
    them, and a frozen dataclass's __init__ costs several times more.)"""

    seq: int
    id: str
    slug: str
    title: str
    summary: str
    body_html: str
    captions: tuple[str, ...]
    credit: str | None
    author: str | None
    sections: tuple[str, ...]
    image: str | None
    link: str | None
    published: datetime
    updated: datetime
    stored_at: datetime


STAMP_COLUMNS = (articles.c.seq, articles.c.slug, articles.c.content_hash)

# Read as plain values, with no per-value result processing (a full build reads 100,000
# rows): the JSON lists come back as text on SQLite (decoded in to_published, where the
# commonest value, an empty list, skips the JSON parser) and times as the text SQLite
# stores, which utc_time reads several times faster than the generic processor does.
PUBLISHED_COLUMNS = (articles.c.seq, articles.c.id, articles.c.slug, articles.c.title,
                     articles.c.summary, articles.c.body_html,
                     type_coerce(articles.c.captions, Text).label("captions"),
                     articles.c.credit, articles.c.author,
                     type_coerce(articles.c.sections, Text).label("sections"),
                     articles.c.image, articles.c.link,
                     type_coerce(articles.c.published, Text).label("published"),
                     type_coerce(articles.c.updated, Text).label("updated"),
                     type_coerce(articles.c.stored_at, Text).label("stored_at"))


@dataclass(frozen=True)
class StoredRef:
    """Enough of a stored article to decide whether a parsed one is new or edited."""

    id: str
    source_index: int
    title: str
    content_hash: str


class ArticleStore:
    def __init__(self, store: Store):
        self.store = store

    # --- ingest -------------------------------------------------------------------
    def refs_for_files(self, files: dict[str, Sequence[str]]) -> dict[str, list[StoredRef]]:
        """For each source path, the stored articles from it or with one of its parsed
        ids (a moved file): two statements a chunk for a whole batch of files."""
        columns = (articles.c.id, articles.c.source_index, articles.c.title,
                   articles.c.content_hash, articles.c.source)
        by_source: dict[str, dict[str, StoredRef]] = {}
        by_id: dict[str, StoredRef] = {}
        ids = list({article_id for wanted in files.values() for article_id in wanted})
        dialect = self.store.dialect
        with self.store.reading() as conn:
            for part in chunks(list(files)):
                for *ref, source in conn.execute(
                        select(*columns).where(among(dialect, articles.c.source, part))):
                    by_source.setdefault(source, {})[ref[0]] = StoredRef(*ref)
            for part in chunks(ids):
                for *ref, _source in conn.execute(
                        select(*columns).where(among(dialect, articles.c.id, part))):
                    by_id[ref[0]] = StoredRef(*ref)
        refs = {}
        for source, wanted in files.items():
            found = by_source.get(source, {})
            moved = [i for i in wanted if i in by_id]
            if moved:  # (most files in a pass are new: nothing stored under either)
                found = dict(found)
                found.update((i, by_id[i]) for i in moved)
            refs[source] = list(found.values())
        return refs

    def save_files(self, plans: Sequence[FilePlan], now: datetime) -> None:
        """Apply the plans of several inbox files in one transaction: insert new articles,
        update edited ones in place (id, slug and sequence stay), record the files."""
        new = [article for plan in plans for article in plan.new]
        with self.store.writing() as conn:
            change = next_change(conn) if new or any(plan.edited for plan in plans) else 0
            if new:
                insert_articles(conn, new, now, change)
            for plan in plans:
                for stored_id, article in plan.edited:
                    edit_article(conn, stored_id, article, now, change)
                for stored_id, index in plan.moved:
                    conn.execute(update(articles).where(articles.c.id == stored_id)
                                 .values(source_index=index))
            record_files(conn, plans, now)

    # --- reads for the later stages -----------------------------------------------
    def count(self) -> int:
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(articles)).scalar_one()

    def max_seq(self) -> int:
        with self.store.reading() as conn:
            return conn.execute(select(func.coalesce(func.max(articles.c.seq), 0))).scalar_one()

    def latest(self, limit: int, section: str | None = None,
               before: int | None = None) -> list[StoredArticle]:
        """The newest `limit` articles by sequence (the order they were stored in), newest
        first; with `before`, those below that sequence number (keyset pages)."""
        query = select(articles).order_by(articles.c.seq.desc()).limit(limit)
        if before is not None:
            query = query.where(articles.c.seq < before)
        if section:
            query = query.where(articles.c.seq.in_(
                select(article_sections.c.article_seq)
                .where(article_sections.c.section == section)))
        with self.store.reading() as conn:
            return [to_article(row) for row in conn.execute(query)]

    def by_id(self, article_id: str) -> StoredArticle | None:
        with self.store.reading() as conn:
            row = conn.execute(select(articles).where(articles.c.id == article_id)).first()
        return to_article(row) if row else None

    # --- reads for the feeds stage ---------------------------------------------------
    def stamps(self) -> list[Stamp]:
        """Every article's stamp, oldest first (seq order). Read from ix_articles_stamp
        alone, so this stays cheap with 100,000 articles."""
        query = select(articles.c.seq, articles.c.slug, articles.c.content_hash) \
            .order_by(articles.c.seq)
        with self.store.reading() as conn:
            rows = conn.execute(query).all()  # fetchall: iterating fetches row by row
        return list(map(Stamp._make, rows))

    def window(self, limit: int) -> list[Stamp]:
        """The stamps of the newest `limit` articles by published date, newest first (the
        later stored first among equal dates): one range of ix_articles_published."""
        query = (select(*STAMP_COLUMNS)
                 .order_by(articles.c.published.desc(), articles.c.seq.desc()).limit(limit))
        with self.store.reading() as conn:
            return list(map(Stamp._make, conn.execute(query).all()))

    def section_windows(self, sections: Sequence[str], limit: int) -> dict[str, list[Stamp]]:
        """For each section, the stamps of its newest `limit` articles by published date,
        newest first (as `window`): one range of ix_article_sections_published each, a
        statement per 100 sections."""
        windows: dict[str, list[Stamp]] = {name: [] for name in sections}
        for part in chunks(list(sections), 100):
            newest = [select(article_sections.c.section, article_sections.c.article_seq,
                             article_sections.c.published)
                      .where(article_sections.c.section == name)
                      .order_by(article_sections.c.published.desc(),
                                article_sections.c.article_seq.desc())
                      .limit(limit).subquery() for name in part]
            ranked = union_all(*[select(q.c.section, q.c.article_seq, q.c.published)
                                 for q in newest]).subquery()
            query = (select(ranked.c.section, *STAMP_COLUMNS)
                     .join(articles, articles.c.seq == ranked.c.article_seq)
                     .order_by(ranked.c.section, ranked.c.published.desc(),
                               ranked.c.article_seq.desc()))
            with self.store.reading() as conn:
                for section, *stamp in conn.execute(query):
                    windows[section].append(Stamp(*stamp))
        return windows

    # --- what changed, for a build that touches only that ------------------------------
    def last_change(self) -> int:
        """The newest change number (0: no article stored since version 10)."""
        with self.store.reading() as conn:
            return conn.execute(
                select(func.coalesce(func.max(articles.c.changed), 0))).scalar_one()

    def changed_since(self, change: int) -> list[tuple[Stamp, tuple[str, ...]]]:
        """The articles stored or edited after change number `change`, with their
        sections, in seq order (one range of ix_articles_changed)."""
        # No ORDER BY: SQLite would rather walk every row in seq order than sort a few.
        query = (select(*STAMP_COLUMNS, type_coerce(articles.c.sections, Text))
                 .where(articles.c.changed > change))
        with self.store.reading() as conn:
            rows = sorted(conn.execute(query).all())
        return [(Stamp(seq, slug, content_hash), json_tuple(sections))
                for seq, slug, content_hash, sections in rows]

    def newest_stored(self, count: int, upto: int) -> list[Stamp]:
        """The stamps of the last `count` articles stored up to seq `upto`, oldest first."""
        query = (select(*STAMP_COLUMNS).where(articles.c.seq <= upto)
                 .order_by(articles.c.seq.desc()).limit(count))
        with self.store.reading() as conn:
            return list(map(Stamp._make, conn.execute(query).all()))[::-1]

    def stamps_at(self, offset: int, count: int) -> list[Stamp]:
        """The stamps of articles offset+1 .. offset+count in store order."""
        query = (select(*STAMP_COLUMNS).order_by(articles.c.seq)
                 .offset(offset).limit(count))
        with self.store.reading() as conn:
            return list(map(Stamp._make, conn.execute(query).all()))

    def stamps_of(self, seqs: Iterable[int]) -> dict[int, Stamp]:
        """The stamps of these articles (those still stored), by sequence number."""
        wanted = sorted(set(seqs))
        found: dict[int, Stamp] = {}
        with self.store.reading() as conn:
            for part in chunks(wanted, 2000):
                query = select(*STAMP_COLUMNS).where(articles.c.seq.in_(part))
                found.update((row[0], Stamp._make(row)) for row in conn.execute(query).all())
        return found

    def stored_before(self, seq: int) -> int:
        """How many articles were stored before the one with this sequence number."""
        with self.store.reading() as conn:
            return conn.execute(select(func.count()).select_from(articles)
                                .where(articles.c.seq < seq)).scalar_one()

    def created_at(self) -> datetime | None:
        """When this store was created: the time an empty site's feeds date from."""
        with self.store.reading() as conn:
            return conn.execute(select(func.min(schema_version.c.applied_at))).scalar()

    def section_counts(self) -> dict[str, int]:
        """Every section with its number of articles, by name."""
        query = (select(article_sections.c.section, func.count())
                 .group_by(article_sections.c.section).order_by(article_sections.c.section))
        with self.store.reading() as conn:
            return {section: count for section, count in conn.execute(query)}

    def published(self, seqs: Iterable[int], chunk: int = 2000) -> Iterator[PublishedArticle]:
        """The articles with these sequence numbers, in seq order, read a chunk at a
        time so a full build never holds every body in memory. A chunk of neighbouring
        numbers (the usual case: archive pages, a full build) is read as one range of
        the primary key rather than a list of 2,000 parameters."""
        ordered = sorted(set(seqs))
        times: dict = {}  # decoded stored times, which many articles share
        lists: dict = {}  # decoded section lists, likewise
        for part in chunks(ordered, chunk):
            first, last = part[0], part[-1]
            dense = last - first < 2 * len(part)
            where = articles.c.seq.between(first, last) if dense else articles.c.seq.in_(part)
            query = select(*PUBLISHED_COLUMNS).where(where).order_by(articles.c.seq)
            with self.store.reading() as conn:
                rows = conn.execute(query).all()
            wanted = set(part) if dense and last - first + 1 != len(part) else None
            for row in rows:
                if wanted is None or row[0] in wanted:
                    yield to_published(row, times, lists)


def to_published(row: Row, times: dict, lists: dict) -> PublishedArticle:
    """The article in a row of PUBLISHED_COLUMNS. `times` and `lists` memoize decoded
    values that repeat from row to row: one pass of ingest stores many articles at one
    time, and most articles share a few lists of sections."""
    (seq, article_id, slug, title, summary, body_html, captions, credit, author, sections,
     image, link, published, updated, stored_at) = row
    stored = times.get(stored_at) or times.setdefault(stored_at, utc_time(stored_at))
    changed = stored if updated == stored_at else utc_time(updated)
    section_names = lists.get(sections) if sections.__class__ is str else None
    if section_names is None:
        section_names = json_tuple(sections)
        if sections.__class__ is str:
            lists[sections] = section_names
    return PublishedArticle(seq, article_id, slug, title, summary, body_html,
                            json_tuple(captions), credit, author, section_names, image,
                            link, utc_time(published), changed, stored)


def utc_time(value: str | datetime) -> datetime:
    """An aware UTC time from a column read without processing: SQLite's stored text
    (UTC, as UTCDateTime wrote it) or the driver's aware datetime (PostgreSQL)."""
    if isinstance(value, str):
        # fromisoformat with an explicit offset is several times cheaper than
        # replace(tzinfo=...) afterwards, and gives the same datetime.UTC.
        return datetime.fromisoformat(value + "+00:00")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_tuple(value: str | list) -> tuple:
    """A JSON list column read as text (SQLite), or already decoded (psycopg decodes json
    itself), as a tuple."""
    if isinstance(value, str):
        return () if value == "[]" else tuple(json.loads(value))
    return tuple(value)


def to_article(row: Row) -> StoredArticle:
    data = row._mapping
    return StoredArticle(
        id=data["id"], slug=data["slug"], title=data["title"],
        paragraphs=tuple(data["paragraphs"]), body_html=data["body_html"],
        summary=data["summary"], source=data["source"], captions=tuple(data["captions"]),
        credit=data["credit"], author=data["author"], sections=tuple(data["sections"]),
        image=data["image"], published=data["published"], link=data["link"],
        source_index=data["source_index"], content_hash=data["content_hash"],
        seq=data["seq"], updated=data["updated"], stored_at=data["stored_at"],
    )
