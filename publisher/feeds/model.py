"""Feeds stage, model: what every feed and page shows of an article, and where it lives.

`Site` knows the URL and file name of everything the stage publishes. `Entry` is one
article as readers see it (absolute links, defaults filled in, text safe for XML); it is
built once and shared by the RSS, Atom and JSON feeds and the pages, so the formats
cannot disagree. `Channel` is the head of one feed document.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape, unescape
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

from publisher.config import Settings
from publisher.store.articles import PublishedArticle

# A feed with no entries still needs an updated time; a fixed one keeps its bytes stable.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RSS, ATOM, JSON = "rss.xml", "atom.xml", "feed.json"
FEED_FILES = {RSS: "application/rss+xml", ATOM: "application/atom+xml",
              JSON: "application/feed+json"}
FEED_NAMES = {RSS: "RSS", ATOM: "Atom", JSON: "JSON Feed"}

# Section names become folder names; anything else is refused rather than published.
SECTION_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
# Quoted href/src attributes, as the parsers' sanitizer writes them.
URL_ATTRIBUTE = re.compile(r'(\s(?:href|src)=")([^"]*)(")')
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
        return cls(title=site.title, url=site.url.rstrip("/") + "/",
                   description=site.description, language=site.language,
                   author=site.author, timezone=ZoneInfo(site.timezone),
                   hub=settings.feeds.hub, items=settings.feeds.items,
                   folder=settings.path(settings.feeds.folder))

    def url_of(self, path: str) -> str:
        return self.url + path

    def permalink(self, slug: str) -> str:
        return self.url_of(article_path(slug))


def article_path(slug: str) -> str:
    return f"articles/{slug}.html"


def section_path(section: str) -> str:
    return f"sections/{section}/"


def archive_path(number: int) -> str:
    return f"archive/{number}.xml"


def section_title(section: str) -> str:
    return section.replace("-", " ").capitalize()


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    type: str | None
    length: int | None  # known when the image is a file in the publish folder


@dataclass(frozen=True, slots=True)
class Entry:
    """One article as every feed and page shows it."""

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
    clean = xml_safe if xml_clean else no_change
    permalink = site.permalink(article.slug)
    image = make_image(article.image, site) if article.image else None
    captions = tuple(clean(caption) for caption in article.captions)
    credit = clean(article.credit) if article.credit else None
    body = absolute_links(clean(article.body_html), site.url, permalink)
    published, updated = entry_times(article)
    return Entry(
        seq=article.seq, id=permalink, url=permalink, slug=article.slug,
        title=clean(article.title), summary=clean(article.summary), body_html=body,
        content_html=figure_html(image, captions, credit) + body,
        captions=captions, credit=credit, author=clean(article.author or site.author),
        sections=tuple(s for s in article.sections if SECTION_NAME.fullmatch(s)),
        image=image, via=article.link or None, published=published, updated=updated,
        edited=article.updated != article.stored_at,
    )


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
    return published.astimezone(UTC), updated.astimezone(UTC)


def newest_first(entries: list[Entry]) -> list[Entry]:
    return sorted(entries, key=lambda e: (e.published, e.seq), reverse=True)


def newest_update(entries: list[Entry]) -> datetime:
    """A document's updated time: its newest entry's, never the time of the build."""
    return max((e.updated for e in entries), default=EPOCH)


def make_image(url: str, site: Site) -> Image:
    absolute = urljoin(site.url, url)
    kind = mimetypes.guess_type(urlsplit(absolute).path)[0]
    length = None
    if absolute.startswith(site.url):
        local = site.folder / urlsplit(absolute[len(site.url):]).path
        if local.resolve().is_relative_to(site.folder) and local.is_file():
            length = local.stat().st_size
    return Image(url=absolute, type=kind, length=length)


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
    if 'href="' not in html and 'src="' not in html:
        return html  # most bodies carry no links; skip the regex

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


def no_change(text: str) -> str:
    return text


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
