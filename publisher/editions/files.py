"""Editions stage, parse: the editions/ folder's Markdown files, each checked on its own.

An edition is `editions/SLUG.md`: YAML front matter, then the Markdown body.

    ---
    subject: Our spring letter          (required; one line)
    sections: [world, culture]          (optional: only readers of these sections)
    frequency: weekly                   (optional: only readers of this frequency, or a list)
    send_at: 2026-12-01 09:00           (optional, in [site] timezone unless it has an offset)
    articles: latest 3                  (optional: cards of articles, or a list of slugs)
    ---

A bad file is that file's problem, one line naming it and what to fix; the others go on
and the file stays where it is (an editor is still writing it). The cost of a file is
bounded as an article's is (size, front matter's nesting and aliases), and nothing
outside the folder is read: files are opened as the inbox's are, no link followed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import nh3

from publisher.errors import Gone, InputError, item_errors
from publisher.ingest.files import read_inbox_file
from publisher.ingest.front_matter import load_mapping
from publisher.ingest.markdown import FRONT_MATTER, markdown, read_date
from publisher.ingest.scraped import decode

KEYS = ("subject", "sections", "frequency", "send_at", "articles")
FREQUENCIES = ("instant", "daily", "weekly")
SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,199}")
LATEST = re.compile(r"latest\s+(\d{1,3})", re.I)
MAX_SUBJECT = 200
MAX_CARDS = 50
# editions/note.md is the editor's note shown above digests, not an edition.
RESERVED = {"note.md"}


@dataclass(frozen=True)
class EditionFile:
    """One edition as its file says, checked; `articles` not yet looked up."""

    slug: str
    source: str  # "editions/NAME.md", for messages
    content_hash: str  # sha256 of the file's bytes: an edit changes it
    subject: str
    sections: tuple[str, ...]
    frequencies: tuple[str, ...]
    send_at: datetime | None  # aware UTC
    articles: tuple[str, ...]  # slugs, in order
    latest: int  # "latest N": the N newest articles (after any slugs)
    body_html: str
    body_text: str


@dataclass(frozen=True)
class Problem:
    """A file that is not an edition (yet), and why: one line."""

    source: str
    reason: str

    def line(self) -> str:
        return f"{self.source}: {self.reason}"


def edition_files(folder: Path) -> list[Path]:
    """The candidate files: NAME.md directly in the folder, in name order."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir()
                  if path.suffix == ".md" and not path.name.startswith(".")
                  and path.name not in RESERVED)


def load_editions(folder: Path, tz: ZoneInfo, max_bytes: int
                  ) -> tuple[list[EditionFile], list[Problem]]:
    """Every edition file, parsed; the bad ones as problems (never an exception)."""
    found, problems = [], []
    for path in edition_files(folder):
        source = f"{folder.name}/{path.name}"
        try:
            with item_errors(source, "cannot be read as an edition"):
                found.append(read_edition(folder, path, source, tz, max_bytes))
        except InputError as exc:
            problems.append(Problem(source, exc.reason))
        except Gone:  # removed since the listing: nothing to say
            continue
    return found, problems


def read_edition(folder: Path, path: Path, source: str, tz: ZoneInfo,
                 max_bytes: int) -> EditionFile:
    slug = path.stem
    if not SLUG.fullmatch(slug):
        raise InputError(source, "name the file in lower-case letters, digits, '-', '_' "
                                 "or '.' (its name is the edition's web address)")
    data, _stat = read_inbox_file(folder, path, source, max_bytes)
    return parse_edition(data, slug, source, tz)


def parse_edition(data: bytes, slug: str, source: str, tz: ZoneInfo) -> EditionFile:
    text = decode(data, source).replace("\r\n", "\n").replace("\r", "\n")
    match = FRONT_MATTER.match(text)
    if not match:
        raise InputError(source, "no front matter: start the file with a '---' line, then "
                                 "subject: ..., then '---'")
    meta = front_matter(match["meta"], source)
    body = (match["body"] or "").strip()
    if not body:
        raise InputError(source, "the edition has a subject but no text below the '---'")
    slugs, latest = articles_of(meta.get("articles"), source)
    return EditionFile(
        slug=slug, source=source, content_hash=hashlib.sha256(data).hexdigest(),
        subject=subject_of(meta.get("subject"), source),
        sections=names(meta.get("sections"), "sections", source),
        frequencies=frequencies_of(meta.get("frequency"), source),
        send_at=read_date(meta.get("send_at"), source, tz),
        articles=slugs, latest=latest,
        body_html=nh3.clean(markdown.render(body)), body_text=plain_text(body))


def front_matter(text: str, source: str) -> dict:
    return load_mapping(text, source, KEYS, "its send_at")


def subject_of(value: object, source: str) -> str:
    if not isinstance(value, str | int | float) or not str(value).strip():
        raise InputError(source, "front matter has no subject: add a line 'subject: ...'")
    subject = " ".join(str(value).split())  # a line break would end the header
    if len(subject) > MAX_SUBJECT:
        raise InputError(source, f"subject of {len(subject)} characters: at most "
                                 f"{MAX_SUBJECT}")
    return subject


def names(value: object, key: str, source: str) -> tuple[str, ...]:
    """A word or a list of words, lower-cased."""
    if value is None or value == "" or value == []:
        return ()
    items = value if isinstance(value, list) else [value]
    if len(items) > 32 or not all(isinstance(i, str | int) and str(i).strip() for i in items):
        raise InputError(source, f"{key} must be a name or a list of up to 32 names, "
                                 "such as [world, culture]")
    out = tuple(dict.fromkeys(str(i).strip().lower()[:64] for i in items))
    return out


def frequencies_of(value: object, source: str) -> tuple[str, ...]:
    found = names(value, "frequency", source)
    for name in found:
        if name not in FREQUENCIES:
            raise InputError(source, f"frequency {name!r} is not one of "
                                     f"{', '.join(FREQUENCIES)}")
    return found


def articles_of(value: object, source: str) -> tuple[tuple[str, ...], int]:
    """(slugs, latest N) from `articles: latest 3`, `[slug, slug]` or a list with both."""
    if value is None or value == "" or value == []:
        return (), 0
    items = value if isinstance(value, list) else [value]
    slugs, latest = [], 0
    for item in items:
        if not isinstance(item, str | int) or not str(item).strip():
            raise InputError(source, "articles must be 'latest N' or a list of article "
                                     "slugs")
        text = str(item).strip()
        if match := LATEST.fullmatch(text):
            latest = int(match[1])
        else:
            slugs.append(text)
    if len(slugs) + latest > MAX_CARDS or (latest == 0 and not slugs):
        raise InputError(source, f"articles: between 1 and {MAX_CARDS} articles "
                                 "('latest N' or slugs)")
    return tuple(dict.fromkeys(slugs)), latest


def plain_text(body: str) -> str:
    """The Markdown as the text part: it reads well as it is, but for raw HTML blocks
    (a figure, an embed), which are left out rather than shown as tags."""
    lines = body.split("\n")
    for token in markdown.parse(body):
        if token.type == "html_block" and token.map:
            start, end = token.map
            lines[start:end] = [None] * (end - start)
    text = "\n".join(line for line in lines if line is not None)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
