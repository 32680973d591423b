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
from tests.conftest import NOW
from tests.feeds_support import (
    NASTY,
    article,
    edit_article,
    parse,
    publish_folder,
    store_articles,
    with_feeds,
)
from tests.test_feeds_feedgen import SITE, channel, stored

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
