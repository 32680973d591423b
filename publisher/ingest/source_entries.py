"""Parse stage, upstream feeds: the entries of an RSS, Atom or JSON feed as Articles.

feedparser reads RSS and Atom (any flavour, broken ones too: it sets `bozo` rather than
raising); JSON Feed, which feedparser does not read, is mapped to the same shape. Entry
HTML is sanitized with nh3, and every link and image URL in it is made absolute against
the entry's base (its xml:base, else the feed's address), so the HTML reads the same in
our pages and in mail. An entry's id comes from its source's name and its guid (link +
title when it has none), so the same entry fetched again is the same article, and an
edited entry updates it in place.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape, unescape
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import feedparser
import nh3

from publisher.article import (
    Article,
    make_article,
    published_utc,
    section_names,
    stable_id,
    summarize,
)
from publisher.errors import InputError, item_errors

log = logging.getLogger(__name__)

URL_ATTRIBUTES = {"href", "src", "cite", "poster"}
BLOCK_TAGS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
              "tr", "dt", "dd", "figcaption", "br", "hr", "section", "article", "table",
              "ul", "ol", "dl", "figure", "header", "footer", "aside", "details", "summary"}
UNTITLED_CHARS = 80


@dataclass(frozen=True)
class SourceEntries:
    title: str
    articles: list[Article]
    skipped: int  # entries with neither a title, a link nor any text


def source_key(name: str) -> str:
    """The `source` of a source's articles; inbox files use their path, never a colon."""
    return f"feed:{name}"


def parse_entries(data: bytes, name: str, url: str, sections: tuple[str, ...] = (),
                  content_type: str = "") -> SourceEntries:
    """Every usable entry of the upstream feed in `data`, fetched from `url`, newest first.

    InputError when the bytes are not a feed at all.
    """
    if not data.strip():
        raise InputError(name, "empty response: the server sent no feed")
    with item_errors(name, "not a feed"):
        if is_json(data, content_type):
            feed_title, entries = read_json(data, name)
            shape = json_entry
        else:
            feed_title, entries = read_xml(data, name, url, content_type)
            shape = None
    sections = section_names(list(sections))
    articles, seen, skipped = [], set(), 0
    for index, entry in enumerate(entries):
        try:
            # The boundary for each entry: whatever its parsing raises (a date out of
            # range, ...) skips this entry only.
            with item_errors(f"{name}: entry {index + 1}"):
                article = entry_article(shape(entry) if shape else entry, name, url,
                                        sections)
        except InputError as exc:
            log.warning("source %s", exc)
            article = None
        if article is None:
            skipped += 1
        elif article.id not in seen:  # a feed that repeats an entry stores it once
            seen.add(article.id)
            articles.append(article)
    return SourceEntries(title=text_of(feed_title), articles=articles, skipped=skipped)


def read_xml(data: bytes, name: str, url: str, content_type: str) -> tuple[str, list]:
    """RSS or Atom, through feedparser."""
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    # A BytesIO, never bytes: feedparser would try a bytes string as a file name first.
    parsed = feedparser.parse(io.BytesIO(data), response_headers=headers,
                              sanitize_html=False, resolve_relative_uris=True)
    if parsed.bozo and not parsed.entries and not parsed.feed.get("title"):
        reason = getattr(parsed, "bozo_exception", None) or "unreadable"
        raise InputError(name, f"not a feed ({str(reason).splitlines()[0][:200]})")
    return parsed.feed.get("title", ""), parsed.entries


def is_json(data: bytes, content_type: str) -> bool:
    return "json" in content_type.lower() or data.lstrip()[:1] == b"{"


def read_json(data: bytes, name: str) -> tuple[str, list[dict]]:
    """JSON Feed 1.0 and 1.1 (feedparser reads only XML): its items, which json_entry
    shapes like feedparser's entries one by one (so a bad item is that item's error)."""
    try:
        feed = json.loads(data)
    except ValueError as exc:
        raise InputError(name, f"not a feed (JSON: {exc})") from exc
    if not isinstance(feed, dict) or not isinstance(feed.get("items"), list) or \
            "jsonfeed.org/version/" not in str(feed.get("version", "")):
        raise InputError(name, "not a feed (JSON without a jsonfeed.org version and items)")
    return str(feed.get("title") or ""), [item for item in feed["items"]
                                          if isinstance(item, dict)]


def json_entry(item: dict) -> dict:
    authors = item.get("authors") or ([item["author"]] if item.get("author") else [])
    content = [{"type": kind, "value": item[key]}
               for key, kind in (("content_html", "text/html"), ("content_text", "text/plain"))
               if isinstance(item.get(key), str) and item[key]]
    summary = item.get("summary") if isinstance(item.get("summary"), str) else ""
    image = item.get("image") or item.get("banner_image")
    return {
        "id": str(item.get("id") or ""),
        "link": item.get("url") or item.get("external_url") or "",
        "title": escape(str(item.get("title") or "")),  # JSON Feed titles are text
        "content": content,
        "summary": summary,
        "summary_detail": {"type": "text/plain", "value": summary} if summary else None,
        "author": escape(str(authors[0].get("name") or "")) if authors and
        isinstance(authors[0], dict) else "",
        "media_thumbnail": [{"url": image}] if isinstance(image, str) else [],
        "published_parsed": json_time(item.get("date_published") or item.get("date_modified")),
    }


def json_time(value: object) -> time.struct_time | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return published_utc(moment, "date_published").timetuple()


def entry_article(entry, name: str, url: str,
                  sections: tuple[str, ...]) -> Article | None:
    base = entry_base(entry, url)
    link = absolute(base, entry.get("link") or "")
    html = entry_html(entry)
    body_html = clean_html(html, base)
    paragraphs = tuple(html_paragraphs(body_html))
    title = text_of(entry.get("title", "")) or untitled(paragraphs)
    if not title and not link:
        return None
    guid = entry.get("id") or f"{link}\n{title}"
    summary_html = entry.get("summary", "") if entry.get("content") else ""
    summary = summarize(tuple(html_paragraphs(clean_html(summary_html, base))) or paragraphs)
    return make_article(
        id=stable_id("feed", name, guid),
        title=title or link,
        paragraphs=paragraphs,
        body_html=body_html,
        summary=summary,
        source=source_key(name),
        author=text_of(entry.get("author", "")) or None,
        sections=sections,
        image=entry_image(entry, base),
        published=entry_time(entry),
        link=link or None,
    )


def entry_base(entry, url: str) -> str:
    """The URL relative references in the entry resolve against: its xml:base (which
    feedparser records on each text construct), else the feed's own address."""
    for detail in (*entry.get("content", []), entry.get("summary_detail"),
                   entry.get("title_detail")):
        if detail and detail.get("base"):
            return absolute(url, detail["base"]) or url
    return url


def entry_html(entry) -> str:
    """The fullest body the entry has: HTML content, else the summary; text is escaped."""
    details = [*entry.get("content", []), entry.get("summary_detail")]
    for detail in details:
        if not detail or not detail.get("value"):
            continue
        if "html" in (detail.get("type") or "text/html"):
            return detail["value"]
        return "".join(f"<p>{escape(part.strip())}</p>"
                       for part in re.split(r"\n\s*\n", detail["value"]) if part.strip())
    return ""


def clean_html(html: str, base: str) -> str:
    """Sanitized HTML (no scripts, handlers, styles) with absolute URLs."""
    if not html:
        return ""

    def make_absolute(tag: str, attribute: str, value: str) -> str | None:
        if attribute in URL_ATTRIBUTES:
            return absolute(base, value) or None
        return value

    return nh3.clean(html, attribute_filter=make_absolute).strip()


def absolute(base: str, url: str) -> str:
    """The URL made absolute, or "" when it is not one we keep: not http(s) or mailto,
    or not a URL at all (urllib raises on "http://[::1"; a bad href in an entry's body
    costs that href, not the entry)."""
    url = url.strip()
    if not url:
        return ""
    try:
        joined = urljoin(base, url)
        scheme = urlsplit(joined).scheme
    except ValueError:
        return ""
    return joined if scheme in {"http", "https", "mailto"} else ""


def entry_image(entry, base: str) -> str | None:
    """The entry's picture: media:content or media:thumbnail, else an image enclosure."""
    candidates = [m.get("url") for m in entry.get("media_content", [])
                  if m.get("medium") == "image" or m.get("type", "").startswith("image/")]
    candidates += [m.get("url") for m in entry.get("media_thumbnail", [])]
    candidates += [e.get("href") for e in entry.get("enclosures", [])
                   if e.get("type", "").startswith("image/")]
    for url in candidates:
        # absolute() keeps mailto: for links; a picture is http(s) or nothing.
        if url and (found := absolute(base, url)).startswith(("http://", "https://")):
            return found
    return None


def entry_time(entry) -> datetime | None:
    """When the entry was published (else last updated); feedparser gives UTC tuples.
    A date the calendar cannot hold, or too near its ends, is the entry's error."""
    moment = entry.get("published_parsed") or entry.get("updated_parsed")
    if not moment:
        return None
    return published_utc(datetime(*moment[:6], tzinfo=UTC), "the entry's date")


def text_of(html: str) -> str:
    """Plain text of a title or name, which feeds may send as HTML."""
    return " ".join(unescape(nh3.clean(html or "", tags=set())).split())


def untitled(paragraphs: tuple[str, ...]) -> str:
    """A title for an entry without one (short posts): the start of its text."""
    if not paragraphs:
        return ""
    text = paragraphs[0]
    if len(text) <= UNTITLED_CHARS:
        return text
    return text[:UNTITLED_CHARS].rsplit(" ", 1)[0] + "…"


class BlockText(HTMLParser):
    """Collects the text of each block element: one paragraph each, for plain-text mail."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in BLOCK_TAGS:
            self.flush()

    def handle_endtag(self, tag):
        if tag in BLOCK_TAGS:
            self.flush()

    def handle_data(self, data):
        self.parts.append(data)

    def flush(self) -> None:
        text = " ".join("".join(self.parts).split())
        if text:
            self.blocks.append(text)
        self.parts = []


def html_paragraphs(html: str) -> Iterator[str]:
    if not html:
        return iter(())
    parser = BlockText()
    parser.feed(html)
    parser.close()
    parser.flush()
    return iter(parser.blocks)
