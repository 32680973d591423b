"""RFC 5005 archives: pages by sequence, their links, full pages that never change, and
entries written exactly as the live feed's (feedgen's) entries are."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from lxml import etree

from publisher.feeds import build_feeds
from publisher.feeds.archives import atom_entry
from publisher.feeds.model import make_entry
from publisher.feeds.rss_atom import atom_document, feed_entry
from publisher.store.archive_entries import pack
from publisher.store.schema import archive_entries
from tests.support import NOW
from tests.support.feeds import (
    NASTY,
    SITE,
    article,
    channel,
    edit_article,
    parse,
    publish_folder,
    snapshot,
    store_articles,
    stored,
    with_feeds,
    with_site,
)

ATOM = "{http://www.w3.org/2005/Atom}"
HISTORY = "{http://purl.org/syndication/history/1.0}"


@pytest.fixture
def small(settings):
    """Live feeds of 3 articles, archive pages of 3."""
    return with_feeds(settings, items=3)


def links(feed: feedparser.FeedParserDict) -> dict[str, str]:
    return {link.rel: link.href for link in feed.feed.links}


def page_url(settings, number: int) -> str:
    return f"{settings.site.url}archive/{number}.xml"


def test_pages_hold_the_oldest_articles_in_store_order(small, store):
    store_articles(store, [article(n) for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    folder = publish_folder(small)
    assert sorted(p.name for p in (folder / "archive").iterdir()) == \
        ["1.xml", "2.xml", "3.xml"]
    titles = {n: [e.title for e in parse(folder / "archive" / f"{n}.xml").entries]
              for n in (1, 2, 3)}
    assert titles == {1: ["Article number 3", "Article number 2", "Article number 1"],
                      2: ["Article number 6", "Article number 5", "Article number 4"],
                      3: ["Article number 8", "Article number 7"]}
    assert [e.title for e in parse(folder / "atom.xml").entries] == \
        ["Article number 11", "Article number 10", "Article number 9"]


def test_links_follow_rfc_5005(small, store):
    store_articles(store, [article(n) for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    folder = publish_folder(small)
    live = small.site.url + "atom.xml"
    assert links(parse(folder / "atom.xml"))["prev-archive"] == page_url(small, 3)
    first, middle, newest = (parse(folder / "archive" / f"{n}.xml") for n in (1, 2, 3))
    assert links(first) == {"self": page_url(small, 1), "current": live,
                            "next-archive": page_url(small, 2), "alternate": small.site.url}
    assert links(middle)["prev-archive"] == page_url(small, 1)
    assert links(middle)["next-archive"] == page_url(small, 3)
    assert "next-archive" not in links(newest)  # still filling up
    assert links(newest)["prev-archive"] == page_url(small, 2)
    for page in (first, middle, newest):
        assert page.bozo == 0 and page.version == "atom10"
        assert page.feed.id == live  # one logical feed
    root = etree.parse(folder / "archive" / "1.xml").getroot()
    assert root.find(f"{HISTORY}archive") is not None
    # RSS and JSON have no archives; section feeds neither.
    assert "prev-archive" not in links(parse(folder / "rss.xml"))
    assert "prev-archive" not in links(parse(folder / "sections" / "world" / "atom.xml"))


def test_walking_back_from_the_live_feed_finds_every_article_once(small, store):
    store_articles(store, [article(n) for n in range(1, 15)], NOW)
    build_feeds(small, store, NOW)
    folder = publish_folder(small)
    seen, document = [], parse(folder / "atom.xml")
    while True:
        seen += [entry.id for entry in document.entries]
        previous = links(document).get("prev-archive")
        if not previous:
            break
        document = parse(folder / previous.removeprefix(small.site.url))
    assert len(seen) == len(set(seen)) == 14


def test_full_pages_never_change(small, store):
    store_articles(store, [article(n) for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    folder = publish_folder(small)

    def state(n):
        path = folder / "archive" / f"{n}.xml"
        return path.stat().st_mtime_ns, path.read_bytes()

    full = {n: state(n) for n in (1, 2)}
    filling = state(3)
    # Three more articles: page 3 fills up and page 4 starts; a backdated one arriving
    # later still goes by store order, so no entry moves between pages.
    later = NOW + timedelta(hours=1)
    store_articles(store, [article(12), article(13),
                           article(14, published=datetime(2020, 1, 1, tzinfo=UTC))], later)
    build_feeds(small, store, later)
    assert {n: state(n) for n in (1, 2)} == full
    assert state(3) != filling
    page3 = parse(folder / "archive" / "3.xml")
    assert [e.title for e in page3.entries] == \
        ["Article number 9", "Article number 8", "Article number 7"]
    assert links(page3)["next-archive"] == page_url(small, 4)
    assert [e.title for e in parse(folder / "archive" / "4.xml").entries] == \
        ["Article number 11", "Article number 10"]
    # The next build changes nothing at all.
    full3 = state(3)
    build_feeds(small, store, later + timedelta(hours=1))
    assert state(3) == full3


def test_an_edited_article_rewrites_only_its_page(small, store):
    store_articles(store, [article(n) for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    folder = publish_folder(small)
    before = {n: (folder / "archive" / f"{n}.xml").read_bytes() for n in (1, 2, 3)}
    edit_article(store, article(5, title="Article number 5, corrected"),
                 NOW + timedelta(days=1))
    build_feeds(small, store, NOW + timedelta(days=1))
    after = {n: (folder / "archive" / f"{n}.xml").read_bytes() for n in (1, 2, 3)}
    assert after[1] == before[1] and after[3] == before[3]
    entries = parse(folder / "archive" / "2.xml").entries
    corrected = next(e for e in entries if e.title == "Article number 5, corrected")
    assert corrected.updated_parsed > corrected.published_parsed


def test_archive_entries_are_written_as_feedgen_writes_them():
    later = datetime(2026, 3, 3, tzinfo=UTC)
    articles = [
        stored(1, later, title=NASTY, summary=f"{NASTY} & more", sections=("world", "a-b"),
               captions=(f"{NASTY} (AP)",), credit="AP", author="Ann & <Bo>",
               image="img/x.png", link="https://up.example/?a=1&b=2",
               body_html='<p>x &amp; y <a href="z">z</a></p>\n'),
        stored(2, later, updated=later + timedelta(days=5), image="https://cdn.example/i"),
        stored(3, later, body_html="<p>line\tone\nline two</p>\n"),
        stored(4, later, image='https://cdn.example/a"b<c>&d.png', author='"Quoted" \'One\'',
               link="https://up.example/a\"b?c=<d>&e=f", summary="Tab\there & <there>"),
    ]
    entries = [make_entry(a, SITE) for a in articles]
    items = [(feed_entry(e, SITE.url + "sections/"), e) for e in entries]
    from_feedgen = re.findall(r"  <entry>\n.*?</entry>\n",
                              atom_document(channel(), items).decode(), re.S)
    assert len(from_feedgen) == 4
    assert [atom_entry(e, SITE.url + "sections/") for e in entries] == from_feedgen


def test_control_characters_never_reach_the_xml(small, store):
    store_articles(store, [article(1, title="Bell\x07 title",
                                   paragraphs=("Form\x0cfeed and \x01 start.",))]
                   + [article(n) for n in range(2, 8)], NOW)
    build_feeds(small, store, NOW)
    folder = publish_folder(small)
    for path in folder.rglob("*.xml"):
        etree.parse(path)  # raises on a character XML does not allow
        assert parse(path).bozo == 0, path
    titles = [e.title for e in parse(folder / "archive" / "1.xml").entries]
    assert "Bell title" in titles


# --- rendered entries kept in the store -----------------------------------------------------
def stored_entries(store) -> dict[int, tuple[str, bytes]]:
    """The store's rendered archive entries: seq -> (content hash, xml)."""
    return {row.seq: (row.content_hash, row.xml)
            for row in store.archive_entries.between(0, 10**9)}


def test_entries_are_rendered_once_and_kept(small, store, tmp_path):
    store_articles(store, [article(n) for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    kept = stored_entries(store)
    assert sorted(kept) == list(range(1, 9))  # the 8 archived articles, not the live 3
    first = {p.name: p.read_bytes() for p in (publish_folder(small) / "archive").iterdir()}
    # A full build into an empty folder reads the kept entries (poisoned here, to show
    # they are what the pages are made of) and renders nothing again.
    with store.writing() as conn:
        conn.execute(archive_entries.update().where(archive_entries.c.seq == 2)
                     .values(xml=pack(b"  <entry>kept</entry>\n")))
    elsewhere = with_feeds(small, folder=str(tmp_path / "elsewhere"))
    build_feeds(elsewhere, store, NOW)
    second = {p.name: p.read_bytes()
              for p in (publish_folder(elsewhere) / "archive").iterdir()}
    assert second.keys() == first.keys()
    assert second["1.xml"] != first["1.xml"] and b"<entry>kept</entry>" in second["1.xml"]
    assert {k: v for k, v in second.items() if k != "1.xml"} == \
        {k: v for k, v in first.items() if k != "1.xml"}


def test_kept_entries_make_the_same_pages_as_fresh_ones(small, store, tmp_path):
    store_articles(store, [article(n, title=f"{NASTY} {n}", author="A & B",
                                   sections=("world", "a-b"), image="https://cdn.example/i.png")
                           for n in range(1, 12)], NOW)
    edit_article(store, article(4, title="Four, corrected"), NOW + timedelta(hours=1))
    build_feeds(small, store, NOW)  # renders every archived entry and keeps it
    elsewhere = with_feeds(small, folder=str(tmp_path / "elsewhere"))
    build_feeds(elsewhere, store, NOW)  # reads them back
    assert snapshot_bytes(publish_folder(elsewhere)) == snapshot_bytes(publish_folder(small))


def snapshot_bytes(folder) -> dict[str, bytes]:
    return {path: data for path, (_mtime, data) in snapshot(folder).items()}


def test_an_edit_renders_that_entry_again(small, store):
    store_articles(store, [article(n) for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    before = stored_entries(store)
    edit_article(store, article(5, title="Article number 5, corrected"),
                 NOW + timedelta(days=1))
    build_feeds(small, store, NOW + timedelta(days=1))
    after = stored_entries(store)
    assert {seq for seq in after if after[seq] != before[seq]} == {5}
    assert b"Article number 5, corrected" in after[5][1]


def test_a_new_site_url_renders_every_entry_again(small, store, tmp_path):
    store_articles(store, [article(n) for n in range(1, 12)], NOW)
    build_feeds(small, store, NOW)
    moved = with_feeds(with_site(small, url="https://news.example.net/"),
                       folder=str(tmp_path / "moved"))
    build_feeds(moved, store, NOW)
    page = (publish_folder(moved) / "archive" / "1.xml").read_text()
    assert "news.example.net/articles/" in page and small.site.url not in page
    assert all(b"news.example.net" in xml for _hash, xml in stored_entries(store).values())


def test_entries_with_a_local_image_are_not_kept(small, store):
    """Their enclosure length is the file's, which can change with no edit."""
    folder = publish_folder(small)
    (folder / "img").mkdir(parents=True)
    (folder / "img" / "a.png").write_bytes(b"x" * 10)
    store_articles(store, [article(1, image="img/a.png")]
                   + [article(n) for n in range(2, 8)], NOW)
    build_feeds(small, store, NOW)
    assert 1 not in stored_entries(store) and 2 in stored_entries(store)
    assert 'length="10"' in (folder / "archive" / "1.xml").read_text()
    (folder / "img" / "a.png").write_bytes(b"x" * 25)
    (folder / "archive" / "1.xml").unlink()
    build_feeds(small, store, NOW, full=True)  # a full page is only looked at by a full build
    assert 'length="25"' in (folder / "archive" / "1.xml").read_text()


def test_storing_an_entry_again_replaces_it(small, store):
    """Two builds at once (`publisher feeds` by hand beside a daemon) may both store an
    entry; the second replaces the first instead of failing."""
    store_articles(store, [article(n) for n in range(1, 8)], NOW)
    build_feeds(small, store, NOW)
    row = store.archive_entries.between(1, 1)[0]
    store.archive_entries.save([row._replace(xml=b"  <entry>again</entry>\n")])
    store.archive_entries.save([row._replace(xml=b"  <entry>and again</entry>\n")])
    assert stored_entries(store)[1] == (row.content_hash, b"  <entry>and again</entry>\n")
    assert store.archive_entries.count() == 4
