"""The scraped parser and make_article as they were before they were made cheaper
(commit 268dc0f), kept verbatim as the oracle the faster code is checked against: the
same bytes must give the same Articles, or the same error, from both.

Decoding is frozen here too; the Article class and the bounds' constants are shared
with the product code (they are data, not the work being checked).
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from html import escape

from publisher.article import (
    MAX_ID_CHARS,
    MAX_SECTION_CHARS,
    MAX_SECTIONS,
    MAX_SLUG_CHARS,
    MAX_SOURCE_BYTES,
    MAX_TITLE_CHARS,
    SUMMARY_CHARS,
    Article,
)
from publisher.errors import InputError

CREDIT = re.compile(r"\((?P<credit>[A-Z0-9][^()]{0,59})\)$")
CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
HIGH_BYTES = bytes(range(0x80, 0x100))
MAX_HIGH_SHARE = 0.3
FURNITURE_WORDS = {"share", "print", "email", "tweet", "comments", "listen", "save",
                   "font size", "text size", "a a", "aa", "advertisement"}


def decode(data: bytes, source: str) -> str:
    """Bytes to text: UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        # Checked first: UTF-32's little-endian BOM begins with UTF-16's.
        raise InputError(source, "UTF-32 text is not read: save it as UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return text_only(data.decode("utf-16"), source)
        except UnicodeDecodeError as exc:
            raise InputError(source, f"broken UTF-16 text ({exc.reason})") from exc
    if b"\x00" in data:
        raise InputError(source, "binary file (it contains NUL bytes), not page text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Windows-1252 is what "not UTF-8" almost always means for Western news text;
        # its five undefined bytes fall back to Latin-1 so nothing is dropped. Such text
        # is mostly ASCII: bytes that are mostly not are binary, or another encoding.
        if len(data) - len(data.translate(None, HIGH_BYTES)) > len(data) * MAX_HIGH_SHARE:
            raise InputError(source, "binary file, or text in an encoding other than "
                                     "UTF-8, UTF-16 or Windows-1252") from None
        text = data.decode("cp1252", errors="reference_latin1_fallback")
    return text_only(text, source)


def text_only(text: str, source: str) -> str:
    if len(CONTROL.findall(text)) > max(8, len(text) // 100):
        raise InputError(source, "binary file (control characters), not page text")
    return text


def latin1_fallback(error: UnicodeDecodeError) -> tuple[str, int]:
    bad = error.object[error.start:error.end]
    return bad.decode("latin-1"), error.end


codecs.register_error("reference_latin1_fallback", latin1_fallback)


def parse_scraped(data: bytes, source: str, sections: tuple[str, ...] = ()) -> list[Article]:
    """Every article in a dump, in order; InputError when the file holds none."""
    text = decode(data, source)
    articles, problems, used_ids = [], [], set()
    for index, blocks in enumerate(split_articles(text)):
        try:
            articles.append(parse_chunk(blocks, source, index, sections, used_ids))
        except (ValueError, InputError) as exc:  # this chunk's problem, not the file's
            problems.append(f"text block {index + 1}: {getattr(exc, 'reason', exc)}")
    if not articles:
        reason = problems[0] if problems else "no text in the file"
        raise InputError(source, f"no article found ({reason})")
    return articles


def clean_lines(text: str) -> list[str]:
    # splitlines handles CRLF, CR and Unicode line separators; strip() takes trailing
    # spaces, tabs and the no-break spaces scrapers leave; a stray BOM is not content.
    return [line.replace("\ufeff", "").strip() for line in text.splitlines()]


def split_articles(text: str) -> Iterator[list[list[str]]]:
    """Chunks separated by 2+ blank lines, each a list of blocks of non-blank lines."""
    blocks: list[list[str]] = []
    block: list[str] = []
    blanks = 0
    for line in clean_lines(text):
        if not line:
            blanks += 1
            continue
        if blanks and block:
            blocks.append(block)
            block = []
        if blanks >= 2 and blocks:
            yield blocks
            blocks = []
        blanks = 0
        block.append(line)
    if block:
        blocks.append(block)
    if blocks:
        yield blocks


def parse_chunk(blocks: list[list[str]], source: str, index: int,
                sections: tuple[str, ...], used_ids: set[str]) -> Article:
    title, *after_title = blocks[0]
    header, taken = take_header(after_title, blocks[1:], known=())
    # Lines right under the title that are not captions are the body, written tight.
    leading_body = after_title if after_title and not header else []
    remaining = blocks[1 + taken:]
    # The header block again: the title line repeated, then its captions. Only one
    # repeat is dropped, so a body paragraph equal to the title further down is kept.
    if remaining and remaining[0][0] == title:
        repeat_tail = remaining[0][1:]
        again, taken = take_header(repeat_tail, remaining[1:], known=captions_of(header))
        if repeat_tail and not again:
            leading_body += repeat_tail
        header = header or again
        remaining = remaining[1 + taken:]
    paragraphs = leading_body + [line for block in remaining for line in block]
    if not paragraphs:
        raise ValueError(f"{title[:60]!r} has a title but no body paragraphs")
    captions = captions_of(header)
    article_id = stable_id(source, title)
    if article_id in used_ids:  # the same title twice in one file
        article_id = stable_id(source, title, str(index))
    used_ids.add(article_id)
    credit = CREDIT.search(captions[0]) if captions else None
    return make_article(
        id=article_id, title=title, paragraphs=tuple(paragraphs), source=source,
        source_index=index, captions=captions, sections=sections,
        credit=credit["credit"] if credit else None,
    )


def take_header(inline: list[str], blocks: list[list[str]],
                known: tuple[str, ...]) -> tuple[list[str], int]:
    """The header's meta lines and how many following blocks they took."""
    if inline:
        return (inline if is_meta(inline, known) else []), 0
    if blocks and is_meta(blocks[0], known):
        return blocks[0], 1
    return [], 0


def is_meta(lines: list[str], known: tuple[str, ...]) -> bool:
    """A header block: captions (credited, doubled or already seen) and page furniture.
    Counted and looked up in hash tables, so a stranger's 40,000-line header costs
    linear time, not quadratic."""
    if not lines:
        return False
    seen = set(known)
    counts = Counter(lines)
    return all(
        is_furniture(line) or line in seen or CREDIT.search(line) is not None
        or counts[line] > 1
        for line in lines
    ) and (len(lines) > 1 or CREDIT.search(lines[0]) is not None or lines[0] in seen
           or is_furniture(lines[0]))


def is_furniture(line: str) -> bool:
    return len(line) <= 3 or line.isdigit() or line.lower() in FURNITURE_WORDS


def captions_of(header: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(line for line in header if not is_furniture(line)))


def make_article(**fields) -> Article:
    """Build an Article, deriving the summary, HTML, slug and hash where not given."""
    paragraphs = tuple(fields.pop("paragraphs", ()))
    check_bounds(fields)
    fields.setdefault("summary", summarize(paragraphs))
    fields.setdefault("body_html", "".join(f"<p>{escape(p, quote=False)}</p>\n"
                                           for p in paragraphs))
    fields.setdefault("slug", slugify(fields["title"], fields["id"]))
    fields["content_hash"] = content_hash(paragraphs=paragraphs, **fields)
    return Article(paragraphs=paragraphs, **fields)


HASHED = ("title", "paragraphs", "body_html", "summary", "captions", "credit", "author",
          "sections", "image", "link", "published")


def content_hash(**fields) -> str:
    """Hash of everything a reader sees; a changed hash means the article was edited."""
    parts = []
    for name in HASHED:
        value = fields.get(name)
        if isinstance(value, (tuple, list)):
            value = "\x1e".join(value)  # record separator: cannot occur in a line of text
        elif isinstance(value, datetime):
            value = value.isoformat()
        parts.append(f"{name}\x1f{'' if value is None else value}\x1f")
    # One update of the whole: the same bytes, so the same hash as one update a field.
    return hashlib.sha256("".join(parts).encode()).hexdigest()


def stable_id(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def slugify(title: str, article_id: str, limit: int = 80) -> str:
    """ASCII slug for file names and URLs; titles in other scripts fall back to the id."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    if len(slug) > limit:
        slug = slug[:limit].rsplit("-", 1)[0]
    if len(re.sub(r"[^a-z]", "", slug)) < 3:
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


def check_bounds(fields: dict) -> None:
    """What the store's columns and the publish folder's file names can hold."""
    source, sections = fields["source"], fields.get("sections", ())
    if len(fields["title"]) > MAX_TITLE_CHARS:
        raise InputError(source, f"title of {len(fields['title']):,} characters: a title "
                                 f"has at most {MAX_TITLE_CHARS:,}")
    for name, limit in (("id", MAX_ID_CHARS), ("slug", MAX_SLUG_CHARS)):
        if len(fields.get(name) or "") > limit:
            raise InputError(source, f"{name} is longer than {limit} characters")
    if len(source.encode("utf-8", "surrogateescape")) > MAX_SOURCE_BYTES:
        raise InputError(source[:80] + "...", f"the file's path is over {MAX_SOURCE_BYTES} "
                                              "bytes: move it nearer the inbox")
    if len(sections) > MAX_SECTIONS:
        raise InputError(source, f"{len(sections):,} sections: an article takes at most "
                                 f"{MAX_SECTIONS}")
    for name in sections:
        if len(name) > MAX_SECTION_CHARS:
            raise InputError(source, f"section name {name[:40]!r}... is longer than "
                                     f"{MAX_SECTION_CHARS} characters")
