"""Store: the statements that write articles and their sections (new, edited), for
inbox files (articles.py) and upstream feeds (sources.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, func, insert, select, text, update

from publisher.article import Article
from publisher.store.bulk import BulkInsert, among, chunks
from publisher.store.schema import article_sections, articles

# Held for the length of a transaction that stores articles (PostgreSQL only).
ARTICLES_LOCK_KEY = 0x5075626C6173


def next_change(conn: Connection) -> int:
    """The change number for this transaction's articles. Numbers must become visible in
    order, as sequence numbers must (a build that saw change 11 would never look at a 10
    committed later): SQLite's BEGIN IMMEDIATE serializes writers, and on PostgreSQL the
    same advisory lock as for new articles is taken first (held until commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ARTICLES_LOCK_KEY})
    return conn.execute(select(func.coalesce(func.max(articles.c.changed), 0))).scalar_one() + 1


def insert_articles(conn: Connection, new: list[Article], now: datetime,
                    change: int = 0) -> None:
    """Insert new articles and their sections.

    Sequence numbers must become visible in order: a digest cursor at seq 11 would skip
    an article 10 committed later. SQLite's BEGIN IMMEDIATE serializes writers; on
    PostgreSQL two writers (a leader's ingest and a stray `publisher ingest`) could take
    10 and 11 and commit 11 first, so storing articles takes a transaction-level advisory
    lock before drawing sequence numbers, and releases it at commit."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ARTICLES_LOCK_KEY})
    slugs = unique_slugs(conn, [a.slug for a in new])
    NEW_ARTICLES.execute(conn, [new_row(article, slug, now, change)
                                for article, slug in zip(new, slugs, strict=True)])
    seqs = {}
    for part in chunks([a.id for a in new]):
        seqs.update(conn.execute(select(articles.c.id, articles.c.seq)
                                 .where(among(conn.dialect.name, articles.c.id, part))).all())
    NEW_SECTIONS.execute(conn, [(seqs[a.id], s, a.published or now)
                                for a in new for s in a.sections])


# The columns of a new article's row, in the table's order (bulk.py): its values are
# handed to the driver as they are, without SQLAlchemy's per-row processing.
NEW_ARTICLES = BulkInsert(articles, (
    "id", "slug", "title", "summary", "paragraphs", "body_html", "captions", "credit",
    "author", "sections", "image", "link", "source", "source_index", "published",
    "updated", "stored_at", "content_hash", "changed"))
NEW_SECTIONS = BulkInsert(article_sections, ("article_seq", "section", "published"))


def new_row(article: Article, slug: str, now: datetime, change: int) -> tuple:
    """A NEW_ARTICLES row: stored and updated now, published now unless it says when."""
    return (article.id, slug, article.title, article.summary, article.paragraphs,
            article.body_html, article.captions, article.credit, article.author,
            article.sections, article.image, article.link, article.source,
            article.source_index, article.published or now, now, now,
            article.content_hash, change)


def article_columns(article: Article) -> dict:
    """The columns an edit may change (not the id, slug, sequence or first publish)."""
    return {
        "title": article.title, "summary": article.summary,
        "paragraphs": list(article.paragraphs), "body_html": article.body_html,
        "captions": list(article.captions), "credit": article.credit,
        "author": article.author, "sections": list(article.sections),
        "image": article.image, "link": article.link, "source": article.source,
        "source_index": article.source_index, "content_hash": article.content_hash,
    }


def edit_article(conn: Connection, stored_id: str, article: Article, now: datetime,
                 change: int = 0) -> None:
    values = article_columns(article) | {"updated": now, "changed": change}
    if article.published:
        values["published"] = article.published
    seq, published = conn.execute(update(articles).where(articles.c.id == stored_id)
                                  .values(**values)
                                  .returning(articles.c.seq, articles.c.published)).one()
    conn.execute(delete(article_sections).where(article_sections.c.article_seq == seq))
    if article.sections:
        conn.execute(insert(article_sections), [
            {"article_seq": seq, "section": s, "published": published}
            for s in article.sections])


def unique_slugs(conn: Connection, wanted: list[str]) -> list[str]:
    """Each wanted slug, with -2, -3, ... added where it is taken already."""
    taken: set[str] = set()
    for part in chunks(sorted(set(wanted))):
        taken.update(conn.execute(select(articles.c.slug)
                                  .where(among(conn.dialect.name, articles.c.slug, part)))
                     .scalars())
    result = []
    for slug in wanted:
        candidate, n = slug, 1
        while candidate in taken:
            n += 1
            candidate = f"{slug}-{n}"
            if conn.execute(select(articles.c.seq).where(articles.c.slug == candidate)).first():
                taken.add(candidate)
        taken.add(candidate)
        result.append(candidate)
    return result
