"""feedgen's traps: each test shows the trap in plain feedgen, then that our feeds avoid it.

If a feedgen release fixes one, its first assertion fails: the workaround can then go.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urljoin

import pytest
from feedgen.feed import FeedGenerator
from lxml import etree

from publisher.feeds.model import Image, join_url, make_entry
from publisher.feeds.rss_atom import atom_document, feed_entry, rss_document
from publisher.store.articles import PublishedArticle
from tests.support.feeds import SITE, T1, T2, channel, stored

ATOM = "{http://www.w3.org/2005/Atom}"


def ours(*articles: PublishedArticle) -> list:
    entries = [make_entry(article, SITE) for article in articles]
    return [(feed_entry(entry, SITE.url + "sections/"), entry) for entry in entries]


def plain_feed() -> FeedGenerator:
    feed = FeedGenerator()
    feed.id("https://example.org/atom.xml")
    feed.title("Site")
    feed.description("About")
    feed.link(href="https://example.org/", rel="alternate")
    return feed


def atom_entries(data: bytes) -> list:
    return etree.fromstring(data).findall(f"{ATOM}entry")


def test_add_entry_prepends_by_default():
    feed = plain_feed()
    for title in ("newest", "older"):
        entry = feed.add_entry()
        entry.id(f"urn:{title}")
        entry.title(title)
        entry.content("x")
    assert [e.findtext(f"{ATOM}title") for e in atom_entries(feed.atom_str())] == \
        ["older", "newest"]
    # Ours append, in the order given (newest first).
    data = atom_document(channel(), ours(stored(2, T2), stored(1, T1)))
    assert [e.findtext(f"{ATOM}title") for e in atom_entries(data)] == \
        ["Article 2", "Article 1"]


def test_atom_entry_links_lose_rel_and_type():
    feed = plain_feed()
    entry = feed.add_entry()
    entry.id("urn:x")
    entry.title("x")
    entry.content("x")
    entry.link(href="https://example.org/x.html", rel="alternate", type="text/html")
    entry.link(href="https://example.org/x.jpg", rel="enclosure", type="image/jpeg",
               length="10")
    links = atom_entries(feed.atom_str())[0].findall(f"{ATOM}link")
    assert [link.attrib for link in links] == [{"href": "https://example.org/x.html"},
                                               {"href": "https://example.org/x.jpg"}]
    # Ours keep rel and type, and the image is an enclosure with its type and length.
    items = ours(stored(1, T1, image="https://example.org/x.jpg"))
    assert items[0][1].image == Image("https://example.org/x.jpg", "image/jpeg", None)
    links = atom_entries(atom_document(channel(), items))[0].findall(f"{ATOM}link")
    assert [dict(link.attrib) for link in links] == [
        {"href": SITE.url + "articles/article-1.html", "rel": "alternate", "type": "text/html"},
        {"rel": "enclosure", "href": "https://example.org/x.jpg", "type": "image/jpeg"},
    ]


def test_cdata_content_writes_an_invalid_atom_type():
    feed = plain_feed()
    entry = feed.add_entry()
    entry.id("urn:x")
    entry.title("x")
    entry.content("<p>x</p>", type="CDATA")
    assert atom_entries(feed.atom_str())[0].find(f"{ATOM}content").get("type") == "CDATA"
    # Ours: type="html", escaped, so even "]]>" in a body is just text.
    items = ours(stored(1, T1, body_html="<p>a ]]&gt; b</p>\n"))
    content = atom_entries(atom_document(channel(), items))[0].find(f"{ATOM}content")
    assert content.get("type") == "html"
    assert content.text == "<p>a ]]&gt; b</p>\n"


def test_rss_channel_link_is_the_last_link_call():
    feed = plain_feed()
    feed.link(href="https://example.org/rss.xml", rel="self")
    channel_element = etree.fromstring(feed.rss_str()).find("channel")
    assert channel_element.findtext("link") == "https://example.org/rss.xml"
    # Ours: the site link, whatever other links the feed has.
    data = rss_document(channel(self_url=SITE.url + "rss.xml", hub="https://hub.example/",
                                prev_archive=SITE.url + "archive/3.xml"), ours())
    assert etree.fromstring(data).find("channel").findtext("link") == SITE.url


def test_updated_defaults_to_now():
    feed = plain_feed()
    entry = feed.add_entry()
    entry.id("urn:x")
    entry.title("x")
    entry.content("x")
    before = datetime.now(UTC).year  # clock-ok: feedgen stamps the system's time
    root = etree.fromstring(feed.atom_str())
    years = {str(before), str(datetime.now(UTC).year)}  # clock-ok: the year may turn
    assert root.findtext(f"{ATOM}updated")[:4] in years
    assert root.find(f"{ATOM}entry").findtext(f"{ATOM}updated")[:4] in years
    # Ours: the newest entry's time, so the same articles give the same bytes.
    first = atom_document(channel(updated=T2), ours(stored(2, T2), stored(1, T1)))
    root = etree.fromstring(first)
    assert root.findtext(f"{ATOM}updated") == T2.isoformat()
    assert [e.findtext(f"{ATOM}updated") for e in root.findall(f"{ATOM}entry")] == \
        [T2.isoformat(), T1.isoformat()]
    assert atom_document(channel(updated=T2), ours(stored(2, T2), stored(1, T1))) == first


def test_description_replaces_the_atom_content():
    feed = plain_feed()
    entry = feed.add_entry()
    entry.id("urn:x")
    entry.title("x")
    entry.content("<p>The whole article.</p>", type="html")
    entry.description("A summary.")
    content = atom_entries(feed.atom_str())[0].find(f"{ATOM}content")
    assert content.text == "A summary."
    # Ours: the body stays the content; the summary is the summary (and RSS description).
    items = ours(stored(1, T1))
    entry_element = atom_entries(atom_document(channel(), items))[0]
    assert entry_element.find(f"{ATOM}content").text == "<p>Body 1</p>\n"
    assert entry_element.find(f"{ATOM}summary").text == "Summary 1"
    item = etree.fromstring(rss_document(channel(), items)).find("channel/item")
    assert item.findtext("description") == "Summary 1"
    assert item.findtext("{http://purl.org/rss/1.0/modules/content/}encoded") == \
        "<p>Body 1</p>\n"


@pytest.mark.parametrize("base", ["http://news.example/", "https://news.example/a/b"])
@pytest.mark.parametrize("url", [
    "https://cdn.example/i.jpg", "http://cdn.example/i.jpg", "https://news.example/x/../y.png",
    "https://cdn.example", "https://cdn.example?x=1", "https://cdn.example/p?", "https://c/p#",
    "https://c/p?#", "https://c/p;v=1", "https://c/p?a=1;b=2#f?g#h", "HTTPS://C/Up.JPG",
    "https://[::1]/x", "https://user:pw@c:8080/x", "https://c/a b", " https://c/x",
    "https://c/x\t.jpg", "https://ex\u00e4mple/x", "https:///x", "http:/x", "//c/x",
    "img/x.png", "/img/x.png", "../x.png", "#top", "?q", "ftp://c/x", "https://c/\x01x",
])
def test_join_url_is_urljoin(base, url):
    assert join_url(base, url) == urljoin(base, url)
