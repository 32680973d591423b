"""Feeds stage, editions: every edition that started sending, on the web.

editions/<slug>.html (the letter as it was sent, with its article cards), editions/
index.html (all of them, newest first) and the editions feeds editions/atom.xml,
editions/rss.xml and editions/feed.json. Only editions the store holds are published,
and an edition is stored only once it is due and starts sending, so a scheduled one
never shows early. Its body was sanitized (nh3) when its file was read; everything else
is escaped by the templates and feedgen. Like the rest of the build, nothing here
depends on the clock: the same store writes the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
from html import escape, unescape
from typing import TYPE_CHECKING

import nh3
from feedgen.entry import FeedEntry

from publisher.feeds.jsonfeed import VERSION, rfc3339
from publisher.feeds.model import (
    ATOM,
    FEED_FILES,
    FEED_NAMES,
    JSON,
    RSS,
    Channel,
    Entry,
    absolute_links,
    edition_path,
    xml_safe,
)
from publisher.feeds.pages import FeedLink
from publisher.feeds.rss_atom import generator
from publisher.store.editions import StoredEdition

if TYPE_CHECKING:
    from publisher.feeds.build import Build

FOLDER = "editions/"
ON_INDEX = 5  # editions the front page lists


def edition_feeds(build: Build) -> list[FeedLink]:
    site = build.site
    return [FeedLink(f"{site.title}: editions ({FEED_NAMES[name]})", FEED_FILES[name],
                     site.url_of(FOLDER + name), FEED_NAMES[name])
            for name in (ATOM, RSS, JSON)]


def cards(build: Build, edition: StoredEdition) -> list[Entry]:
    """The edition's article cards that are still stored, in the edition's order."""
    missing = [seq for seq in edition.article_seqs if seq not in build.entries]
    for article in build.store.articles.published(missing):
        build.entries[article.seq] = build.entry(article)
    return [build.entries[seq] for seq in edition.article_seqs if seq in build.entries]


def card_stamps(build: Build, edition: StoredEdition) -> list:
    by_seq = build.card_stamps()
    return [by_seq[seq] for seq in edition.article_seqs if seq in by_seq]


def publish_edition_pages(build: Build) -> None:
    """One page per edition, then the list of them (which links the pages)."""
    if not build.editions:
        return
    feeds = edition_feeds(build)
    for edition in build.editions:
        key = build.key("edition", edition.id, edition.content_hash,
                        stamps=card_stamps(build, edition))
        path = edition_path(edition.slug)
        if not build.output.fresh(path, key):
            build.output.put(path, key, build.pages.render(
                "pages/edition.html", root="../", canonical=build.site.url_of(path),
                edition=edition, entries=cards(build, edition), feeds=feeds,
                # Relative links read against the site, as in the mail and the feeds.
                body=absolute_links(edition.body_html, build.site.url,
                                    build.site.url_of(path)),
                sections=build.sections))
    key = build.key("editions", editions_stamp(build))
    if not build.output.fresh(FOLDER + "index.html", key):
        build.output.put(FOLDER + "index.html", key, build.pages.render(
            "pages/editions.html", root="../", canonical=build.site.url_of(FOLDER),
            editions=build.editions, feeds=feeds, sections=build.sections))


def editions_stamp(build: Build) -> tuple:
    return tuple((e.id, e.slug, e.content_hash) for e in build.editions)


def publish_edition_feeds(build: Build) -> None:
    """The editions feeds, newest first; none until an edition has started."""
    if not build.editions:
        return
    key = build.key("editions-feeds", editions_stamp(build))
    names = {name: FOLDER + name for name in (ATOM, RSS, JSON)}
    if all(build.output.fresh(path, key) for path in names.values()):
        return
    newest = max(e.published for e in build.editions)
    channel = Channel(
        title=f"{build.site.title}: editions", description=f"Letters from {build.site.title}",
        home=build.site.url_of(FOLDER), self_url="", feed_id=build.site.url_of(names[ATOM]),
        language=build.site.language, author=build.site.author, hub="", updated=newest)
    items = [(edition, content_html(build, edition)) for edition in build.editions]
    for name, path in names.items():
        head = dataclasses.replace(channel, self_url=build.site.url_of(path))
        build.output.put(path, key, document(name, head, items, build))


def content_html(build: Build, edition: StoredEdition) -> str:
    """The letter and its cards as one HTML fragment with absolute links (a feed reader
    has no base URL to resolve relative ones against)."""
    page = build.site.url_of(edition_path(edition.slug))
    html = absolute_links(edition.body_html, build.site.url, page)
    links = "".join(f'<li><a href="{escape(entry.url)}">{escape(entry.title)}</a></li>'
                    for entry in cards(build, edition))
    return xml_safe(html + (f"<ul>{links}</ul>" if links else ""))


def document(name: str, channel: Channel, items: list[tuple[StoredEdition, str]],
             build: Build) -> bytes:
    if name == JSON:
        return json_feed(channel, items, build)
    feed = generator(channel, FEED_FILES[name], rss=name == RSS)
    for edition, html in items:
        url = build.site.url_of(edition_path(edition.slug))
        item = FeedEntry()
        item.guid(url, permalink=True)
        item.title(xml_safe(edition.subject))
        item.link(href=url, rel="alternate", type="text/html")
        # As for articles: the plain-text summary escaped (RSS reads description as
        # HTML), then the content; summary() before content() or feedgen swaps them.
        item.summary(escape(summary(edition), quote=False), type="html")
        item.content(html, type="html")
        item.author(name=build.site.author)
        item.published(edition.published)
        item.updated(edition.published)
        feed.add_entry(item, order="append")
    return feed.rss_str(pretty=True) if name == RSS else feed.atom_str(pretty=True)


def summary(edition: StoredEdition) -> str:
    text = " ".join(unescape(nh3.clean(edition.body_html, tags=set())).split())
    return xml_safe(text[:300])


def json_feed(channel: Channel, items: list[tuple[StoredEdition, str]], build: Build) -> bytes:
    feed = {"version": VERSION, "title": channel.title, "home_page_url": channel.home,
            "feed_url": channel.self_url, "description": channel.description,
            "language": channel.language, "authors": [{"name": channel.author}],
            "items": [{"id": build.site.url_of(edition_path(e.slug)),
                       "url": build.site.url_of(edition_path(e.slug)), "title": e.subject,
                       "content_html": html, "summary": summary(e),
                       "date_published": rfc3339(e.published)} for e, html in items]}
    text = json.dumps(feed, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return (text + "\n").encode()
