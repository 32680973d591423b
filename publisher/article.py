"""The Article: what every source parses into and every later stage reads."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from html import escape
from string import ascii_letters, ascii_lowercase, digits
from urllib.parse import urlsplit

from publisher.errors import InputError

SUMMARY_CHARS = 280
# Bounds on what one article may ask of the later stages: each section costs four files
# and a folder name, and a date must survive conversion into any reader's time zone.
MAX_SECTIONS = 32
MAX_SECTION_CHARS = 64
MAX_ID_CHARS, MAX_SLUG_CHARS, MAX_SOURCE_BYTES = 64, 200, 1000  # the store's columns
MAX_TITLE_CHARS = 1000  # a longer first line is a paragraph, not a title
FIRST_YEAR, LAST_YEAR = 1900, 8999
IMAGE_SCHEMES = {"", "http", "https"}  # "": a path under [site] url
NOT_IN_SECTION_NAME = re.compile(r"[^a-z0-9]+")
# For slugs: ASCII letters lower-cased, digits kept, every other byte a space; and the
# bytes that are not lower-case letters.
SLUG_BYTES = bytes(ord(chr(c).lower()) if chr(c) in ascii_letters + digits else 0x20
                   for c in range(256))
NOT_A_LETTER = bytes(c for c in range(256) if chr(c) not in ascii_lowercase)
SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # in C (a Python loop: ~3% of a parse)


@dataclass(frozen=True)
class Article:
    """One article as parsed; the store adds its sequence number and times."""

    id: str
    slug: str
    title: str
    paragraphs: tuple[str, ...]
    body_html: str
    summary: str
    source: str
    captions: tuple[str, ...] = ()
    credit: str | None = None
    author: str | None = None
    sections: tuple[str, ...] = ()
    image: str | None = None
    published: datetime | None = None
    link: str | None = None  # the original page, for articles from upstream feeds
    source_index: int = 0
    content_hash: str = field(default="", compare=False)

    @property
    def caption(self) -> str | None:
        return self.captions[0] if self.captions else None

    def to_json(self) -> dict:
        data = asdict(self)
        data["caption"] = self.caption
        data["published"] = self.published.isoformat() if self.published else None
        for key in ("paragraphs", "captions", "sections"):
            data[key] = list(data[key])
        return data


def make_article(**fields) -> Article:
    """Build an Article, deriving the summary, HTML, slug and hash where not given."""
    paragraphs = tuple(fields.pop("paragraphs", ()))
    check_bounds(fields)
    # Derived only when missing: the Markdown parser gives its own HTML and summary.
    if "summary" not in fields:
        fields["summary"] = summarize(paragraphs)
    if "body_html" not in fields:
        fields["body_html"] = paragraphs_html(paragraphs)
    if "slug" not in fields:
        fields["slug"] = slugify(fields["title"], fields["id"])
    fields["paragraphs"] = paragraphs
    fields["content_hash"] = hash_of(fields)
    return Article(**fields)


def paragraphs_html(paragraphs: tuple[str, ...]) -> str:
    """Each paragraph escaped, in its own <p>."""
    if not paragraphs:
        return ""
    # Most text has nothing to escape, and finding that out is a fast scan each for
    # "&", "<" and ">" (str.replace is not: it counts character by character).
    text = "".join(paragraphs)
    if "&" in text or "<" in text or ">" in text:
        return "".join([f"<p>{escape(p, quote=False)}</p>\n" for p in paragraphs])
    return "<p>" + "</p>\n<p>".join(paragraphs) + "</p>\n"


HASHED = ("title", "paragraphs", "body_html", "summary", "captions", "credit", "author",
          "sections", "image", "link", "published")
# Each field as "name<US>value<US>", its value filled in by str.format (as an f-string
# would, so a value of another type hashes as it always did).
HASHED_LAYOUT = "".join(f"{name}\x1f{{}}\x1f" for name in HASHED)


def content_hash(**fields) -> str:
    """Hash of everything a reader sees; a changed hash means the article was edited."""
    return hash_of(fields)


def hash_of(fields: dict) -> str:
    """content_hash of a dict of fields, which make_article has at hand (no copy)."""
    # Most values are text or None: those skip the call that converts the rest.
    text = HASHED_LAYOUT.format(*[
        value if value.__class__ is str else "" if value is None else hashed_text(value)
        for value in map(fields.get, HASHED)])
    # One update of the whole: the same bytes, so the same hash as one update a field.
    return hashlib.sha256(text.encode()).hexdigest()


def hashed_text(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return "\x1e".join(value)  # record separator: cannot occur in a line of text
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def stable_id(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def slugify(title: str, article_id: str, limit: int = 80) -> str:
    """ASCII slug for file names and URLs; titles in other scripts fall back to the id."""
    if title.isascii():  # NFKD leaves ASCII as it is
        ascii_title = title.encode("ascii")
    else:
        ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore")
    # Lower-case letters and digits, each run of anything else one "-" (none at the
    # ends): one byte table, then split and join, in place of a regex substitution.
    slug = "-".join(ascii_title.translate(SLUG_BYTES).decode("ascii").split())
    if len(slug) > limit:
        slug = slug[:limit].rsplit("-", 1)[0]
    if len(slug.encode("ascii").translate(None, NOT_A_LETTER)) < 3:
        slug = f"article-{article_id[:8]}" + (f"-{slug}" if slug else "")
    return slug


def summarize(paragraphs: tuple[str, ...] | list[str], limit: int = SUMMARY_CHARS) -> str:
    """The first paragraph, cut at a word boundary near `limit` characters."""
    if not paragraphs:
        return ""
    first = paragraphs[0]
    if len(first) <= limit:
        return first
    cut = first[:limit].rsplit(" ", 1)[0].rstrip(",;:—-")
    return cut + "…"


@dataclass(frozen=True)
class StoredArticle(Article):
    """An article as the store holds it: with its sequence number and its times."""

    seq: int = 0
    updated: datetime | None = None
    stored_at: datetime | None = None


def check_bounds(fields: dict) -> None:
    """What the store's columns and the publish folder's file names can hold."""
    source, sections = fields["source"], fields.get("sections", ())
    if len(fields["title"]) > MAX_TITLE_CHARS:
        raise InputError(source, f"title of {len(fields['title']):,} characters: a title "
                                 f"has at most {MAX_TITLE_CHARS:,}")
    for name, limit in (("id", MAX_ID_CHARS), ("slug", MAX_SLUG_CHARS)):
        if len(fields.get(name) or "") > limit:
            raise InputError(source, f"{name} is longer than {limit} characters")
    # UTF-8 takes at most 4 bytes a character: most paths need no encoding to know.
    if (len(source) * 4 > MAX_SOURCE_BYTES
            and len(source.encode("utf-8", "surrogateescape")) > MAX_SOURCE_BYTES):
        raise InputError(source[:80] + "...", f"the file's path is over {MAX_SOURCE_BYTES} "
                                              "bytes: move it nearer the inbox")
    if len(sections) > MAX_SECTIONS:
        raise InputError(source, f"{len(sections):,} sections: an article takes at most "
                                 f"{MAX_SECTIONS}")
    for name in sections:
        if len(name) > MAX_SECTION_CHARS:
            raise InputError(source, f"section name {name[:40]!r}... is longer than "
                                     f"{MAX_SECTION_CHARS} characters")


def published_utc(moment: datetime, source: str) -> datetime:
    """An aware date in UTC, refused when it is too near the ends of the calendar for
    the later stages to convert into any time zone."""
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise InputError(source, f"date {moment.isoformat()} is out of range: years "
                                 f"{FIRST_YEAR} to {LAST_YEAR}")
    return moment.astimezone(UTC)


def image_url_problem(url: str) -> str | None:
    """Why an image URL from a stranger cannot be used; None when it can. Only http(s)
    and paths under the site: never javascript:, data:, file: and the like."""
    if SPACE_OR_CONTROL.search(url):
        return "has spaces or control characters in it"
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return "is not a URL"
    if scheme not in IMAGE_SCHEMES:
        return f"is a {scheme}: URL; images must be http(s) URLs or paths under the site"
    return None


def section_names(value: object) -> tuple[str, ...]:
    """Sections become URL path parts, so they are lower-case words joined by '-'."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        items = [str(items)]
    names = (NOT_IN_SECTION_NAME.sub("-", str(item).strip().lower()).strip("-") for item in items)
    return tuple(name for name in names if name)
