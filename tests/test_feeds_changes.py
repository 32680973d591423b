"""Builds that cost what changed: newest by date, a build with nothing new reads no
article and writes no file, one new article touches only what shows it, a new layout
rebuilds everything, a build stopped part way is done again by the next."""

from __future__ import annotations

import json
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, text

from publisher.feeds import build_feeds, changes, output
from publisher.feeds.changes import STATE
from publisher.store import open_store
from publisher.store.archive_entries import unpack
from publisher.store.articles import ArticleStore
from publisher.store.migrate import MIGRATIONS
from tests.support import NOW
from tests.support.feeds import (
    article,
    edit_article,
    parse,
    publish_folder,
    snapshot,
    store_articles,
    with_feeds,
    with_site,
)

LATER = NOW + timedelta(hours=1)


@pytest.fixture
def small(settings):
    return with_feeds(settings, items=3)


def titles(path: Path) -> list[str]:
    return [entry.title for entry in parse(path).entries]


def page_titles(path: Path) -> list[str]:
    return re.findall(r'<h3><a href="[^"]*articles/[^"]*">([^<]+)</a>', path.read_text())


def statements(store):
    """Every SQL statement the store runs from now on, as text."""
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_args:
                 statement == "BEGIN" or seen.append(statement))
    return seen


def test_newest_by_date_after_a_bulk_import_of_older_articles(small, store):
    recent = [article(n, sections=("world",) if n % 2 else ("science",),
                      published=datetime(2026, 11, 20, n, tzinfo=UTC)) for n in range(1, 7)]
    store_articles(store, recent, NOW)
    build_feeds(small, store, NOW)
    # Then 40 older articles, stored after the newer ones (a bulk import of a back
    # catalogue), in a section of their own and in world.
    older = [article(100 + n, sections=("culture", "world")[n % 2:n % 2 + 1],
                     published=datetime(2021, 1, 1, tzinfo=UTC) + timedelta(days=n))
             for n in range(40)]
    store_articles(store, older, LATER)
    build_feeds(small, store, LATER)
    folder = publish_folder(small)
    newest = ["Article number 6", "Article number 5", "Article number 4"]
    assert titles(folder / "rss.xml") == titles(folder / "atom.xml") == newest
    assert page_titles(folder / "index.html") == newest
    assert titles(folder / "sections" / "world" / "rss.xml") == \
        ["Article number 5", "Article number 3", "Article number 1"]
    assert page_titles(folder / "sections" / "world" / "index.html") == \
        ["Article number 5", "Article number 3", "Article number 1"]
    assert titles(folder / "sections" / "culture" / "atom.xml") == \
        ["Article number 138", "Article number 136", "Article number 134"]
    # Archive pages keep the order the articles were stored in.
    assert titles(folder / "archive" / "1.xml") == \
        ["Article number 3", "Article number 2", "Article number 1"]
    assert titles(folder / "archive" / "3.xml") == \
        ["Article number 102", "Article number 101", "Article number 100"]


def test_equal_dates_put_the_later_stored_first(small, store):
    same = datetime(2026, 11, 20, tzinfo=UTC)
    store_articles(store, [article(n, published=same) for n in range(1, 6)], NOW)
    build_feeds(small, store, NOW)
    assert titles(publish_folder(small) / "rss.xml") == \
        ["Article number 5", "Article number 4", "Article number 3"]


@pytest.fixture
def built(small, store):
    store_articles(store, [article(n, sections=("world", "science")[n % 2:n % 2 + 1])
                           for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    return publish_folder(small)


def test_a_build_with_nothing_new_reads_no_article_and_writes_nothing(
        built, small, store, monkeypatch):
    before = snapshot(built)
    state = (built / STATE).stat().st_mtime_ns
    manifest = (built / output.MANIFEST).stat().st_mtime_ns

    def refused(*_args, **_kwargs):
        raise AssertionError("a build with nothing new read the manifest or every stamp")

    monkeypatch.setattr(output, "load_manifest", refused)
    monkeypatch.setattr(ArticleStore, "stamps", refused)
    seen = statements(store)
    report = build_feeds(small, store, LATER)
    assert (report.written, report.unchanged) == (0, len(before))
    assert snapshot(built) == before
    assert (built / STATE).stat().st_mtime_ns == state
    assert (built / output.MANIFEST).stat().st_mtime_ns == manifest
    # One look at the newest change number, one at when the store was made, one at the
    # started editions (a handful of rows, not one per article).
    assert len(seen) == 3, seen
    assert "max(articles.changed)" in seen[0]
    assert "schema_version" in seen[1]
    assert "FROM editions" in seen[2]


def changed_files(before: dict, after: dict) -> set[str]:
    return {path for path in after if after[path] != before.get(path)}


def test_one_new_article_touches_only_what_shows_it(built, small, store, monkeypatch):
    before = snapshot(built)

    def refused(*_args, **_kwargs):
        raise AssertionError("a build of one article read the manifest or every stamp")

    monkeypatch.setattr(output, "load_manifest", refused)
    monkeypatch.setattr(ArticleStore, "stamps", refused)
    store_articles(store, [article(12, sections=("science",))], LATER)
    report = build_feeds(small, store, LATER)
    after = snapshot(built)
    assert changed_files(before, after) == {
        "articles/article-number-12.html", "index.html",
        "rss.xml", "atom.xml", "feed.json",
        "sections/science/rss.xml", "sections/science/atom.xml",
        "sections/science/feed.json", "sections/science/index.html",
        "archive/3.xml",  # the newest archive page: article 9 left the live window
    }
    assert report.written == 10 and report.unchanged == len(after) - 10
    assert titles(built / "archive" / "3.xml") == \
        ["Article number 9", "Article number 8", "Article number 7"]
    assert titles(built / "rss.xml") == \
        ["Article number 12", "Article number 11", "Article number 10"]
    monkeypatch.undo()
    # What it recorded (in the manifest's journal) is what a full build finds.
    assert (built / output.JOURNAL).exists()
    full = build_feeds(small, store, LATER, full=True)
    assert full.written == 0 and snapshot(built) == after
    assert not (built / output.JOURNAL).exists()  # folded into the manifest


def test_an_edit_moves_an_article_between_sections(built, small, store):
    edit_article(store, article(10, sections=("culture",)), LATER)
    build_feeds(small, store, LATER)
    assert "Article number 10" not in titles(built / "sections" / "world" / "rss.xml")
    assert titles(built / "sections" / "culture" / "rss.xml") == ["Article number 10"]
    assert "Culture" in (built / "index.html").read_text()
    assert "culture" in (built / "sections" / "world" / "index.html").read_text()
    assert build_feeds(small, store, LATER, full=True).written == 0


def test_new_templates_or_settings_rebuild_everything(built, small, store):
    templates = small.path("templates") / "pages"
    templates.mkdir(parents=True, exist_ok=True)
    shipped = Path(__file__).parents[1] / "templates" / "pages" / "article.html"
    (templates / "article.html").write_text(
        shipped.read_text(encoding="utf-8").replace("</article>", "<p>Extra.</p></article>"),
        encoding="utf-8")
    report = build_feeds(small, store, LATER)
    pages = sorted((built / "articles").iterdir())
    assert len(pages) == 11 and all(b"<p>Extra.</p>" in p.read_bytes() for p in pages)
    assert report.written >= 11
    retitled = with_site(small, title="A New Title")
    before = snapshot(built)
    build_feeds(retitled, store, LATER)
    after = snapshot(built)
    assert {f"articles/article-number-{n}.html" for n in range(1, 12)} <= \
        changed_files(before, after)
    assert {f"archive/{n}.xml" for n in (1, 2, 3)} <= changed_files(before, after)


def test_a_build_stopped_part_way_is_done_by_the_next(built, small, store, monkeypatch):
    store_articles(store, [article(12, sections=("science",))], LATER)
    state = (built / STATE).read_bytes()

    def killed(_build):
        raise KeyboardInterrupt  # after the pages, before the feeds

    monkeypatch.setattr("publisher.feeds.publish_feeds", killed)
    with pytest.raises(KeyboardInterrupt):
        build_feeds(small, store, LATER)
    assert (built / "articles" / "article-number-12.html").exists()
    assert titles(built / "rss.xml")[0] == "Article number 11"  # not written yet
    assert (built / STATE).read_bytes() == state  # so the next build does it again
    monkeypatch.undo()
    build_feeds(small, store, LATER)
    assert titles(built / "rss.xml")[0] == "Article number 12"
    assert titles(built / "archive" / "3.xml")[0] == "Article number 9"


def test_a_damaged_state_or_another_store_means_a_full_build(built, small, store,
                                                             monkeypatch):
    def refused(*_args, **_kwargs):
        raise AssertionError("a build of changes where a full build was due")

    monkeypatch.setattr("publisher.feeds.read_changes", refused)
    (built / STATE).write_text("{not json")
    assert build_feeds(small, store, LATER).written == 0  # full: compared, all the same
    assert changes.read_state(built) is not None  # and a state again
    # A state naming another store (another database behind the same folder).
    state = json.loads((built / STATE).read_bytes())
    (built / STATE).write_text(json.dumps({**state, "store": "another"}))
    store_articles(store, [article(12, sections=("science",))], LATER)
    assert build_feeds(small, store, LATER).written > 0
    assert (built / "articles" / "article-number-12.html").exists()
    assert changes.read_state(built).store != "another"


def test_version_10_compresses_the_kept_entries(small, store, settings):
    store_articles(store, [article(n) for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    with store.reading() as conn:
        packed = dict(conn.execute(text("SELECT seq, xml FROM archive_entries")).all())
    assert len(packed) == 8
    # As a version 6 store kept them: plain XML, and no change numbers.
    with store.writing() as conn:
        for seq, xml in packed.items():
            conn.execute(text("UPDATE archive_entries SET xml = :xml WHERE seq = :seq"),
                         {"xml": zlib.decompress(xml), "seq": seq})
        conn.execute(text("DROP INDEX ix_articles_changed"))
        conn.execute(text("ALTER TABLE articles DROP COLUMN changed"))
        conn.execute(text("DROP INDEX ix_article_sections_published"))
        conn.execute(text("ALTER TABLE article_sections DROP COLUMN published"))
        conn.execute(text("DELETE FROM schema_version WHERE version > 6"))
    store.close()
    said: list[str] = []
    upgraded = open_store(settings.database_url, announce=said.append)
    try:
        assert said == [f"upgrading the database from schema version 6 to {MIGRATIONS[-1][0]}"]
        with upgraded.reading() as conn:
            rows = dict(conn.execute(text("SELECT seq, xml FROM archive_entries")).all())
            changed = conn.execute(text("SELECT max(changed) FROM articles")).scalar()
        assert {seq: unpack(xml) for seq, xml in rows.items()} == \
            {seq: zlib.decompress(xml) for seq, xml in packed.items()}
        assert all(len(xml) < len(zlib.decompress(packed[seq])) for seq, xml in rows.items())
        assert changed == 0
        # Each section row has its article's date again: sections' newest by date.
        assert upgraded.articles.section_windows(["world"], 2)["world"] == \
            upgraded.articles.window(2)
        # New articles get change numbers after it, and a build shows them. (A folder
        # an older Publisher built has no build state: its first build is a full one.)
        (publish_folder(small) / STATE).unlink()
        store_articles(upgraded, [article(12)], LATER)
        build_feeds(small, upgraded, LATER)
        assert titles(publish_folder(small) / "rss.xml")[0] == "Article number 12"
    finally:
        upgraded.close()
