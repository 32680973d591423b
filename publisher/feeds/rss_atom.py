"""Feeds stage, RSS 2.0 and Atom 1.0 through feedgen, with its traps stepped around.

feedgen 1.0 does what a feed needs, but a few of its defaults write wrong feeds; each is
avoided here on purpose and tests/test_feeds_feedgen.py shows it:

- `add_entry()` prepends by default, which reverses the entries: we append, newest first.
- Atom entry links lose rel, type and length (the writer reads them back off the new
  element), so an enclosure would become a second alternate link: `PublisherEntry` puts
  them back, and writes the image's enclosure link itself.
- `content(type="CDATA")` writes type="CDATA" into Atom, which is not a content type:
  content is type="html" and escaped (which also survives "]]>" in a body).
- The RSS channel link is whichever `link()` call came last: the site link goes last.
- `updated` defaults to the time of the build: every feed and entry gets its own time.
- `description()` without isSummary replaces the Atom content: only `summary()` is used.
"""

from __future__ import annotations

import copy
from html import escape

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from publisher import __version__
from publisher.feeds.model import Channel, Entry

ATOM_NS = "http://www.w3.org/2005/Atom"
GENERATOR = "Publisher"
LINK_ATTRIBUTES = ("rel", "type", "hreflang", "title", "length")


class PublisherEntry(FeedEntry):
    """feedgen's entry with complete Atom links, and the article's image as an enclosure.

    An article appears in the site-wide feed and in each of its sections' feeds, so the
    entry's XML is made once per format and copied into each document (lxml's copy is
    several times cheaper than feedgen building it again). Entries are not changed once
    made; `add_rss_extras` sets the same values each time."""

    def __init__(self) -> None:
        super().__init__()
        self.enclosure_link: dict[str, str] | None = None
        self.made: dict[tuple[str, bool], etree._Element] = {}

    def atom_entry(self, extensions: bool = True):
        if ("atom", extensions) not in self.made:
            element = super().atom_entry(extensions=extensions)
            links = element.findall("link")
            for link_element, wanted in zip(links, self.link() or [], strict=True):
                for attribute in LINK_ATTRIBUTES:
                    if wanted.get(attribute):
                        link_element.set(attribute, wanted[attribute])
            if self.enclosure_link:
                links[-1].addnext(etree.Element("link", self.enclosure_link))
            self.made["atom", extensions] = element
        return copy.deepcopy(self.made["atom", extensions])

    def rss_entry(self, extensions: bool = True):
        if ("rss", extensions) not in self.made:
            self.made["rss", extensions] = super().rss_entry(extensions=extensions)
        return copy.deepcopy(self.made["rss", extensions])


class ChannelLinks(BaseExtension):
    """atom:link elements in the RSS channel beyond the self link feedgen writes (the
    WebSub hub), since RSS has no element of its own for them."""

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []

    def extend_ns(self) -> dict[str, str]:
        return {"atom": ATOM_NS}

    def extend_rss(self, feed):
        channel = feed.find("channel")
        for link in self.links:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", link)
        return feed


def feed_entry(entry: Entry, section_scheme: str) -> PublisherEntry:
    """The feedgen entry for an article; one object serves every feed it appears in."""
    item = PublisherEntry()
    item.guid(entry.id, permalink=True)
    item.title(entry.title)
    item.link(href=entry.url, rel="alternate", type="text/html")
    if entry.via:
        item.link(href=entry.via, rel="via", type="text/html")
    # RSS description is read as HTML, so the plain-text summary goes in escaped; the
    # Atom summary says type="html" so both formats carry the same escaped text.
    item.summary(escape(entry.summary, quote=False), type="html")
    item.content(entry.content_html, type="html")
    item.author(name=entry.author)
    item.published(entry.published)
    item.updated(entry.updated)
    for section in entry.sections:
        item.category(term=section, scheme=section_scheme)
    if entry.image:
        item.enclosure_link = {"rel": "enclosure", "href": entry.image.url}
        if entry.image.type:
            item.enclosure_link["type"] = entry.image.type
        if entry.image.length is not None:
            item.enclosure_link["length"] = str(entry.image.length)
    return item


def add_rss_extras(item: PublisherEntry, entry: Entry) -> None:
    """The RSS-only parts: dc:creator (RSS <author> must be an email address, and we
    have names) and the image as Media RSS."""
    item.dc.dc_creator(entry.author, replace=True)
    if entry.image:
        content = {"url": entry.image.url, "medium": "image", "group": None}
        if entry.image.type:
            content["type"] = entry.image.type
        if entry.image.length is not None:
            content["fileSize"] = str(entry.image.length)
        item.media.content(content, replace=True)


def generator(channel: Channel, self_type: str, rss: bool) -> FeedGenerator:
    feed = FeedGenerator()
    feed.load_extension("dc", atom=False, rss=True)
    feed.load_extension("media", atom=False, rss=True)
    feed.register_extension("channel_links", ChannelLinks, atom=False, rss=True)
    feed.id(channel.feed_id)
    feed.title(channel.title)
    feed.description(channel.description or channel.title)
    feed.language(channel.language)
    feed.author(name=channel.author)
    feed.generator(GENERATOR, version=__version__)
    feed.link(href=channel.self_url, rel="self", type=self_type)
    if channel.hub:
        feed.link(href=channel.hub, rel="hub")
        if rss:
            feed.channel_links.links.append({"href": channel.hub, "rel": "hub"})
    if channel.prev_archive:
        feed.link(href=channel.prev_archive, rel="prev-archive", type="application/atom+xml")
    # Last: the RSS channel <link> is the href of the last link() call.
    feed.link(href=channel.home, rel="alternate", type="text/html")
    feed.updated(channel.updated)
    return feed


def rss_document(channel: Channel, items: list[tuple[PublisherEntry, Entry]]) -> bytes:
    feed = generator(channel, "application/rss+xml", rss=True)
    for item, entry in items:
        feed.add_entry(item, order="append")
        add_rss_extras(item, entry)
    return feed.rss_str(pretty=True)


def atom_document(channel: Channel, items: list[tuple[PublisherEntry, Entry]]) -> bytes:
    feed = generator(channel, "application/atom+xml", rss=False)
    for item, _entry in items:
        feed.add_entry(item, order="append")
    return feed.atom_str(pretty=True)
