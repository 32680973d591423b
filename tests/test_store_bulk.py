"""The store's bulk inserts (store/bulk.py): rows handed to the driver as they are read
back exactly as rows SQLAlchemy processed itself, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Text, insert, select, type_coerce
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import psycopg

from publisher.article import make_article
from publisher.store import compact_json
from publisher.store.articles import FilePlan
from publisher.store.bulk import (
    BulkInsert,
    among,
    compact_strings,
    converter,
    sqlite_time,
    utc_time,
)
from publisher.store.schema import UTCDateTime, article_sections, articles, inbox_files

NOW = datetime(2026, 3, 29, 1, 30, 15, 250_001, tzinfo=UTC)
TIMES = [
    NOW,
    datetime(2026, 3, 29, 1, 30, tzinfo=UTC),  # no microseconds: still written
    datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=14))),  # the day before in UTC
    datetime(8999, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(-timedelta(hours=9))),
    datetime(2025, 10, 26, 2, 30, 1, 7, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2025, 10, 26, 2, 30, 1, 7, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2024, 2, 29, 12, tzinfo=ZoneInfo("UTC")),
]


def sqlalchemy_bind(column, dialect):
    """What SQLAlchemy itself hands the driver for a value of this column."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)


@pytest.mark.parametrize("value", TIMES, ids=str)
def test_times_are_what_sqlalchemy_would_bind(value):
    lite = sqlite.dialect()
    assert sqlite_time(value) == sqlalchemy_bind(articles.c.published, lite)(value)
    pg = psycopg.dialect()
    bound = utc_time(value)
    assert bound == sqlalchemy_bind(articles.c.published, pg)(value)
    assert bound.tzinfo is UTC


def test_json_is_what_sqlalchemy_would_bind():
    lite = sqlite.dialect(json_serializer=compact_json)
    value = ("Straße «quoted» \"and\" \\ back", "مرحبا", "\U0001F600", "")
    assert converter(articles.c.paragraphs, lite)(value) == \
        sqlalchemy_bind(articles.c.paragraphs, lite)(list(value))
    pg = psycopg.dialect(json_serializer=compact_json)
    wrapped, expected = converter(articles.c.paragraphs, pg)(value), \
        sqlalchemy_bind(articles.c.paragraphs, pg)(list(value))
    assert type(wrapped) is type(expected) and list(wrapped.obj) == expected.obj


def test_naive_times_are_refused():
    for convert in (sqlite_time, utc_time):
        with pytest.raises(ValueError, match="naive datetime"):
            convert(datetime(2026, 1, 1))  # noqa: DTZ001


def test_a_column_order_unlike_the_statement_is_refused(store):
    wrong = BulkInsert(article_sections, ("section", "article_seq", "published"))
    with store.writing() as conn, pytest.raises(ValueError, match="article_seq"):
        wrong.execute(conn, [("world", 1, NOW)])


def test_a_column_left_out_for_a_default_is_refused(store):
    """`changed` has a Python-side default SQLAlchemy would add: a bulk row must say it."""
    partial = BulkInsert(articles, ("id", "slug"))
    with store.writing() as conn, pytest.raises(ValueError):
        partial.execute(conn, [("a", "a")])


def sample(prefix: str):
    """Articles with the values that could come back changed: text in several scripts,
    quotes and backslashes in the JSON lists, times in other zones and none at all."""
    return [
        make_article(id=f"{prefix}-plain", slug=f"{prefix}-plain", title="Plain",
                     source=f"{prefix}/a.md", paragraphs=["One.", "Two."],
                     published=TIMES[0]),
        make_article(id=f"{prefix}-world", slug=f"{prefix}-world",
                     title="مرحبا «Grüße» \"quoted\"", source=f"{prefix}/b.md",
                     paragraphs=['A "quote" and \\ a slash', "\U0001F600 emoji", "مرحبا"],
                     captions=("Photo (AP)", "Zweite «Bild»"), credit="AP",
                     author="Zoë", sections=("world", "middle-east"),
                     image="https://example.org/i.jpg", link="https://example.org/x",
                     published=TIMES[3], source_index=2),
        make_article(id=f"{prefix}-undated", slug=f"{prefix}-undated", title="Undated",
                     source=f"{prefix}/c.md", paragraphs=["Body."], sections=("local",)),
        *(make_article(id=f"{prefix}-t{i}", slug=f"{prefix}-t{i}", title=f"At {time}",
                       source=f"{prefix}/t{i}.md", paragraphs=["Body."], sections=("t",),
                       published=time) for i, time in enumerate(TIMES)),
    ]


def old_rows(new, now, change):
    """The rows as the statements before bulk.py built them for SQLAlchemy."""
    return [{"id": a.id, "slug": a.slug, "title": a.title, "summary": a.summary,
             "paragraphs": list(a.paragraphs), "body_html": a.body_html,
             "captions": list(a.captions), "credit": a.credit, "author": a.author,
             "sections": list(a.sections), "image": a.image, "link": a.link,
             "source": a.source, "source_index": a.source_index,
             "content_hash": a.content_hash, "published": a.published or now,
             "updated": now, "stored_at": now, "changed": change} for a in new]


def stored(conn, table, key, *, raw: bool):
    """Every row of the table by `key`, as SQLAlchemy reads it, or (raw) with its JSON
    and time columns read as the text or value the database holds, unprocessed."""
    columns = [type_coerce(c, Text).label(c.name)
               if raw and isinstance(c.type, JSON | UTCDateTime) else c for c in table.c]
    return {row._mapping[key]: dict(row._mapping)
            for row in conn.execute(select(*columns))}


def without(row: dict, *names: str) -> dict:
    return {k: v for k, v in row.items() if k not in names}


def test_articles_read_back_as_sqlalchemy_wrote_them(store):
    """The same articles stored by ingest's bulk path and by SQLAlchemy's executemany
    (other ids): every column reads back the same, processed and raw."""
    fast, slow = sample("fast"), sample("slow")
    plans = [FilePlan(f"fast/{n}.md", "ab" * 32, 1, (10, 20, 30, 40), new=[article])
             for n, article in enumerate(fast)]
    store.articles.save_files(plans, NOW)
    with store.writing() as conn:
        conn.execute(insert(articles), old_rows(slow, NOW, 1))
        seqs = {a.id: seq for a in slow for seq in conn.execute(
            select(articles.c.seq).where(articles.c.id == a.id)).scalars()}
        conn.execute(insert(article_sections), [
            {"article_seq": seqs[a.id], "section": s, "published": a.published or NOW}
            for a in slow for s in a.sections])
    for raw in (False, True):
        with store.reading() as conn:
            rows = stored(conn, articles, "id", raw=raw)
            sections = conn.execute(select(article_sections)).all()
        for a, b in zip(fast, slow, strict=True):
            assert without(rows[a.id], "seq", "id", "slug", "source") == \
                without(rows[b.id], "seq", "id", "slug", "source")
            assert rows[a.id]["slug"] == a.slug and rows[a.id]["source"] == a.source
        if not raw:
            first = rows["fast-world"]
            assert first["paragraphs"] == list(fast[1].paragraphs)
            assert first["published"] == fast[1].published and \
                first["published"].tzinfo is UTC
            assert rows["fast-undated"]["published"] == NOW
    by_seq = {}
    for seq, section, published in sections:
        by_seq.setdefault(seq, []).append((section, published))
    for a, b in zip(fast, slow, strict=True):
        assert sorted(by_seq.get(rows[a.id]["seq"], [])) == \
            sorted(by_seq.get(rows[b.id]["seq"], []))
    assert store.articles.by_id("fast-world").captions == fast[1].captions
    assert [p.title for p in store.articles.published([rows[a.id]["seq"] for a in fast])] \
        == [a.title for a in fast]


def test_inbox_files_read_back_as_sqlalchemy_wrote_them(store):
    plans = [FilePlan("a/one.md", "cd" * 32, 2, (1, 2, 3, (1 << 63) - 1)),
             FilePlan("a/two.md", "ef" * 32, 0, None)]
    store.articles.save_files(plans, NOW)
    with store.writing() as conn:
        conn.execute(insert(inbox_files), [
            {"path": "b/one.md", "sha256": "cd" * 32, "articles": 2, "seen_at": NOW,
             "size": 1, "mtime_ns": 2, "ctime_ns": 3, "inode": (1 << 63) - 1},
            {"path": "b/two.md", "sha256": "ef" * 32, "articles": 0, "seen_at": NOW,
             "size": None, "mtime_ns": None, "ctime_ns": None, "inode": None}])
    for raw in (False, True):
        with store.reading() as conn:
            rows = stored(conn, inbox_files, "path", raw=raw)
        for name in ("one.md", "two.md"):
            assert without(rows[f"a/{name}"], "path") == without(rows[f"b/{name}"], "path")
    assert store.inbox_files.seen(["a/one.md", "a/two.md"]) == {
        "a/one.md": ("cd" * 32, 2, (1, 2, 3, (1 << 63) - 1)), "a/two.md": ("ef" * 32, 0, None)}
    assert store.inbox_files.articles_total() == 2


@settings(deadline=None)
@given(st.lists(st.text()) | st.tuples(st.text(), st.text()) |
       st.lists(st.one_of(st.text(), st.integers(), st.none(), st.floats(allow_nan=False))))
def test_lists_of_strings_are_joined_as_compact_json_writes_them(value):
    assert compact_strings(value) == compact_json(value)


KEYS = ["plain.md", 'with "quotes".md', "back\\slash.md", "مرحبا/ملف.md", "emoji \U0001F600.md",
        "new\nline.md", "control\x01.md", "a/b/c.md", "%s and ?.md", "[1,2].md"]


def test_among_finds_what_in_finds(store):
    """Keys bound as one parameter (a JSON array on SQLite, an array on PostgreSQL) find
    exactly the rows an IN list finds, whatever characters the keys hold."""
    store.articles.save_files([FilePlan(key, "ab" * 32, 1) for key in [*KEYS, "other.md"]],
                              NOW)
    wanted = [*KEYS, "missing.md", "PLAIN.md", KEYS[0]]
    column = inbox_files.c.path
    with store.reading() as conn:
        found = set(conn.execute(select(column).where(
            among(store.dialect, column, wanted))).scalars())
        listed = set(conn.execute(select(column).where(column.in_(wanted))).scalars())
        assert conn.execute(select(column).where(among(store.dialect, column, []))).all() == []
    assert found == listed == set(KEYS)
    assert set(store.inbox_files.seen(wanted)) == set(KEYS)


def test_many_keys_are_found_in_chunks(store):
    keys = [f"s/{n:05d}.md" for n in range(6000)]
    store.articles.save_files([FilePlan(key, "ab" * 32, 0) for key in keys], NOW)
    assert set(store.inbox_files.seen([*keys[::2], "s/none.md"])) == set(keys[::2])
    assert store.articles.refs_for_files({key: [] for key in keys[:3]}) == \
        {key: [] for key in keys[:3]}
