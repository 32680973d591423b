"""The store's reads for the feeds stage, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import inspect

from publisher.store.articles import Stamp
from tests.support import NOW
from tests.support.feeds import BASE, article, edit_article, store_articles


def fill(store):
    sections = {1: ("world",), 2: ("science", "world"), 3: ("world",), 4: (), 5: ("arts",),
                6: ("world",)}
    store_articles(store, [article(n, sections=s) for n, s in sections.items()], NOW)


def test_stamps_are_every_article_in_store_order(store):
    fill(store)
    stamps = store.articles.stamps()
    assert [s.seq for s in stamps] == sorted(s.seq for s in stamps) and len(stamps) == 6
    assert stamps[0].slug == "article-number-1"
    before = {s.seq: s.content_hash for s in stamps}
    edit_article(store, article(3, title="Changed"), NOW + timedelta(hours=1))
    after = {s.seq: s.content_hash for s in store.articles.stamps()}
    assert [seq for seq in after if after[seq] != before[seq]] == [stamps[2].seq]
    assert store.articles.stamps()[2].slug == "article-number-3"  # slugs never change


def test_section_windows_are_the_newest_per_section(store):
    fill(store)
    seqs = {s.slug: s.seq for s in store.articles.stamps()}
    windows = store.articles.section_windows(["arts", "science", "world", "none"], limit=2)
    assert {name: [s.slug for s in window] for name, window in windows.items()} == {
        "world": ["article-number-6", "article-number-3"],
        "science": ["article-number-2"],
        "arts": ["article-number-5"],
        "none": [],
    }
    assert windows["world"][0] == Stamp(seqs["article-number-6"], "article-number-6",
                                        windows["world"][0].content_hash)
    assert store.articles.section_counts() == {"arts": 1, "science": 1, "world": 4}


def test_published_reads_whole_articles_in_chunks(store):
    fill(store)
    stamps = store.articles.stamps()
    wanted = [stamps[4].seq, stamps[0].seq, stamps[1].seq, stamps[0].seq]
    read = list(store.articles.published(wanted, chunk=2))
    assert [a.seq for a in read] == sorted({stamps[0].seq, stamps[1].seq, stamps[4].seq})
    second = read[1]
    assert second.title == "Article number 2" and second.sections == ("science", "world")
    assert second.body_html.startswith("<p>First paragraph of article 2.</p>")
    assert second.published == BASE + timedelta(hours=2)
    assert second.updated == second.stored_at == NOW
    assert second.published.tzinfo is not None and second.captions == ()
    assert list(store.articles.published([])) == []


def test_the_stamp_index_exists(store):
    with store.reading() as conn:
        indexes = {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("articles")}
    assert indexes["ix_articles_stamp"] == ["seq", "slug", "content_hash"]
