"""Feeds stage, model: what every feed and page shows of an article, and where it lives.

`Site` knows the URL and file name of everything the stage publishes. `Entry` is one
article as readers see it (absolute links, defaults filled in, text safe for XML); it is
built once and shared by the RSS, Atom and JSON feeds and the pages, so the formats
cannot disagree. `Channel` is the head of one feed document.
"""

from __future__ import annotations

import functools
import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from publisher.config import Settings
from publisher.store.articles import PublishedArticle

# A feed with no entries still needs an updated time, and it must not be the time of
# the build: the store's creation time is used, and this if there is none.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RSS, ATOM, JSON = "rss.xml", "atom.xml", "feed.json"
FEED_FILES = {RSS: "application/rss+xml", ATOM: "application/atom+xml",
              JSON: "application/feed+json"}
FEED_NAMES = {RSS: "RSS", ATOM: "Atom", JSON: "JSON Feed"}

# Section names become folder names; anything else is refused rather than published.
SECTION_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
# Quoted href/src attributes, as the parsers' sanitizer writes them.
URL_ATTRIBUTE = re.compile(r'(\s(?:href|src)=")([^"]*)(")')
# An absolute http(s) URL that urljoin returns unchanged whatever the base: an ASCII host
# (no IPv6 brackets, which urllib checks), no whitespace, no ";" (path parameters), and
# no empty "?" or "#", which urllib's split and unsplit would drop.
PLAIN_ABSOLUTE_URL = re.compile(
    r"https?://[A-Za-z0-9.\-_~%!$&'()*+,=:@]+(?:/[^\s;?#]*)?(?:\?[^\s#]+)?(?:#\S+)?")
# C0 controls are not allowed in XML 1.0 (tab, line feed and carriage return are).
CONTROL_BYTES = bytes(c for c in range(32) if c not in (9, 10, 13))


@dataclass(frozen=True)
class Site:
    """The site's settings as the feeds stage needs them, and the URL of each output."""

    title: str
    url: str  # ends in "/"
    description: str
    language: str
    author: str
    timezone: ZoneInfo
    hub: str
    items: int
    folder: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> Site:
        site = settings.site
        return cls(title=site.title, url=site.base_url,
                   description=site.description, language=site.language,
                   author=site.author, timezone=ZoneInfo(site.timezone),
                   hub=settings.feeds.hub, items=settings.feeds.items,
                   folder=settings.path(settings.feeds.folder))

    def url_of(self, path: str) -> str:
        return self.url + path

    def permalink(self, slug: str) -> str:
        return self.url + article_path(slug)


def article_path(slug: str) -> str:
    """An article's page in the publish folder; its URL (the feeds' entry id and the
    link in mail) is this under the site's base URL."""
    return f"articles/{slug}.html"


def section_path(section: str) -> str:
    return f"sections/{section}/"


def archive_path(number: int) -> str:
    return f"archive/{number}.xml"


def section_title(section: str) -> str:
    return section.replace("-", " ").capitalize()


class Image(NamedTuple):  # a NamedTuple, as Entry: one per illustrated article
    url: str
    type: str | None
    length: int | None  # known when the image is a file in the publish folder


class Entry(NamedTuple):
    """One article as every feed and page shows it. (A NamedTuple for the same reason
    as PublishedArticle: a full build makes one per article.)"""

    seq: int
    id: str  # the permalink: the slug never changes, so neither does the id
    url: str
    slug: str
    title: str
    summary: str  # plain text
    body_html: str  # sanitized by the parsers; links made absolute here
    content_html: str  # the image figure (when there is one), then the body
    captions: tuple[str, ...]
    credit: str | None
    author: str
    sections: tuple[str, ...]
    image: Image | None
    via: str | None  # the original page of an article taken from an upstream feed
    published: datetime
    updated: datetime
    edited: bool  # changed since it was first stored

    @property
    def caption(self) -> str | None:
        return self.captions[0] if self.captions else None

    @property
    def caption_text(self) -> str | None:
        """The caption without the credit it ends with, which pages show on its own."""
        if not self.captions:
            return None
        caption = self.captions[0]
        if self.credit and caption.endswith(f"({self.credit})"):
            caption = caption[:-len(self.credit) - 2].rstrip()
        return caption


def make_entry(article: PublishedArticle, site: Site, xml_clean: bool = True) -> Entry:
    """The Entry for a stored article. `xml_clean=False` leaves control characters in
    (the archive writer strips them from whole documents at once, which is cheaper)."""
    title, summary, body, captions, credit = (article.title, article.summary,
                                              article.body_html, article.captions,
                                              article.credit)
    author = article.author or site.author
    if xml_clean:
        title, summary, body, author = map(xml_safe, (title, summary, body, author))
        captions = tuple(map(xml_safe, captions))
        credit = xml_safe(credit) if credit else credit
    permalink = site.permalink(article.slug)
    image = make_image(article.image, site) if article.image else None
    body = absolute_links(body, site.url, permalink)
    published, updated = entry_times(article)
    sections = publishable_sections(article.sections)
    return Entry(
        seq=article.seq, id=permalink, url=permalink, slug=article.slug, title=title,
        summary=summary, body_html=body,
        content_html=figure_html(image, captions, credit) + body if image else body,
        captions=captions, credit=credit or None, author=author, sections=sections,
        image=image, via=article.link or None, published=published, updated=updated,
        edited=article.updated != article.stored_at,
    )


@functools.lru_cache(maxsize=4096)  # most articles share a few lists of sections
def publishable_sections(sections: tuple[str, ...]) -> tuple[str, ...]:
    """The sections that can be published (folder names); any other is left out."""
    if all(map(SECTION_NAME.fullmatch, sections)):
        return sections
    return tuple(s for s in sections if SECTION_NAME.fullmatch(s))


def entry_times(article: PublishedArticle) -> tuple[datetime, datetime]:
    """Published and updated as feeds show them.

    A never-edited article was last updated when it was published. Times from the
    store's clock (the time of the pass that stored or edited an article, also its
    published time when the source gave none) are shared by every article of that
    pass; adding the sequence number as microseconds keeps them in the order they were
    stored and distinct, as Atom asks of updated. Times an author wrote are kept."""
    tie = timedelta(microseconds=article.seq % 1_000_000)
    published = article.published
    if published == article.stored_at:
        published += tie
    if article.updated == article.stored_at:
        updated = published
    else:
        updated = max(article.updated + tie, published)
    return utc(published), utc(updated)


def utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def newest_first(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.published, e.seq), reverse=True)


def newest_update(entries: list[Entry], default: datetime = EPOCH) -> datetime:
    """A document's updated time: its newest entry's, never the time of the build."""
    return max((e.updated for e in entries), default=default)


def make_image(url: str, site: Site) -> Image:
    absolute = join_url(site.url, url)
    path = absolute.split("#", 1)[0].split("?", 1)[0]
    length = None
    if absolute.startswith(site.url):
        local = site.folder / path[len(site.url):]
        if local.resolve().is_relative_to(site.folder) and local.is_file():
            length = local.stat().st_size
    name = path.rsplit("/", 1)[-1]
    return Image(url=absolute, type=media_type(name[name.rfind("."):].lower()), length=length)


def join_url(base: str, url: str) -> str:
    """urljoin(base, url), without urllib's parsing for an absolute http(s) URL that
    urljoin would return as it is (most images are on other hosts; a full build
    resolves 100,000 of them). Anything less plain takes urljoin's own path."""
    return url if PLAIN_ABSOLUTE_URL.fullmatch(url) else urljoin(base, url)


@functools.cache
def media_type(suffix: str) -> str | None:
    return mimetypes.guess_type("image" + suffix)[0] if suffix.startswith(".") else None


def figure_html(image: Image | None, captions: tuple[str, ...], credit: str | None) -> str:
    if image is None:
        return ""
    caption = captions[0] if captions else ""
    alt = escape(caption, quote=True)
    figcaption = f"<figcaption>{escape(caption, quote=False)}</figcaption>" if caption else ""
    if credit and not caption.endswith(f"({credit})"):
        figcaption += f"<small>{escape(credit, quote=False)}</small>"
    return f'<figure><img src="{escape(image.url, quote=True)}" alt="{alt}">{figcaption}</figure>\n'


def absolute_links(html: str, base: str, page: str) -> str:
    """Resolve relative href/src against the site (a bare #fragment: against the page),
    because a feed reader shows the content far from our pages."""
    if '="' not in html:
        return html  # most bodies carry no attributes at all; skip the regex

    def resolve(match: re.Match) -> str:
        value = unescape(match[2])
        target = urljoin(page if value.startswith("#") else base, value)
        return match[1] + escape(target, quote=True) + match[3]

    return URL_ATTRIBUTE.sub(resolve, html)


def xml_safe(text: str) -> str:
    """The text without the control characters XML 1.0 forbids (the parsers let a few
    through from scraped dumps, and lxml refuses to write them)."""
    data = text.encode()
    cleaned = data.translate(None, CONTROL_BYTES)
    return text if len(cleaned) == len(data) else cleaned.decode()


@dataclass(frozen=True)
class Channel:
    """The head of one feed document: what it is, where it lives, what it links to."""

    title: str
    description: str
    home: str  # the page the feed stands for (the site's or the section's index)
    self_url: str
    feed_id: str
    language: str
    author: str
    hub: str
    updated: datetime
    prev_archive: str | None = None
    next_archive: str | None = None
    current: str | None = None  # archive documents: the live feed
