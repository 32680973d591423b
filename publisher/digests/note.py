"""Digests stage: the editor's note, shown above the articles of every digest queued
while it is in force.

The note is a Markdown file in the instance, `editions/note.md`, with front matter:

    ---
    until: 2026-12-24 18:00     # in [site] timezone unless it names an offset
    ---
    We are off for the holidays; the next digest comes on **January 4**.

A date alone (`until: 2026-12-24`) means through that day. The body is rendered like an
article's (markdown-it-py, then nh3 sanitizing), so it can link but never script. The
queue pass reads it once, compares `until` with the pass's `now`, and stores the note
with the digests it queues (store: digest_notes), so a digest sent again or read on the
web later shows the note it was queued with. A file that cannot be read is one line in
the pass's report; the digests go out without it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import nh3

from publisher.config import Settings
from publisher.errors import InputError
from publisher.ingest.front_matter import load_mapping
from publisher.ingest.markdown import FRONT_MATTER, markdown, paragraph_texts, read_date
from publisher.ingest.scraped import decode

log = logging.getLogger(__name__)

NOTE_FILE = "editions/note.md"
MAX_BYTES = 64 * 1024  # a note is a paragraph or two
KEYS = {"until"}


@dataclass(frozen=True)
class Note:
    html: str  # sanitized
    text: str
    until: datetime  # aware UTC; the note is in force before it

    @property
    def content_hash(self) -> str:
        data = "\0".join((self.html, self.text, self.until.isoformat()))
        return hashlib.sha256(data.encode("utf-8")).hexdigest()


def note_path(settings: Settings) -> Path:
    return settings.instance / NOTE_FILE


def current_note(settings: Settings, now: datetime) -> Note | None:
    """The note in force at `now`, or None (no file, or its `until` has passed).
    InputError naming the file says what is wrong with a file that cannot be used."""
    path = note_path(settings)
    if not path.is_file():
        return None
    note = read_note(path, NOTE_FILE, ZoneInfo(settings.site.timezone))
    return note if now < note.until else None


def read_note(path: Path, source: str, tz: ZoneInfo) -> Note:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(source, f"the note is {size:,} bytes, over the limit of "
                                     f"{MAX_BYTES:,}")
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(source, f"cannot be read: {exc.strerror or exc}") from exc
    text = decode(data, source).replace("\r\n", "\n").replace("\r", "\n")
    match = FRONT_MATTER.match(text)
    if not match:
        raise InputError(source, "no front matter: start the file with '---', then a line "
                                 "'until: 2026-12-24 18:00', then '---'")
    meta = load_mapping(match["meta"], source, KEYS, "its until",
                        "a note takes only 'until'")
    until = read_until(meta.get("until"), source, tz)
    tokens = markdown.parse(match["body"] or "")
    paragraphs = paragraph_texts(tokens)
    if not paragraphs:
        raise InputError(source, "the note has no text below its front matter")
    html = nh3.clean(markdown.renderer.render(tokens, markdown.options, {}))
    return Note(html=html, text="\n\n".join(paragraphs), until=until)


def read_until(value: object, source: str, tz: ZoneInfo) -> datetime:
    """`until` as aware UTC: a date means through that day; a time without an offset is
    in the site's zone (read as front matter dates are, ingest.markdown.read_date)."""
    if value is None or value == "":
        raise InputError(source, "front matter has no 'until': add a line such as "
                                 "'until: 2026-12-24 18:00' (the note shows until then)")
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value + timedelta(days=1), time(0))
    try:
        return read_date(value, source, tz)
    except InputError as exc:
        raise InputError(source, f"until {str(value)[:60]!r} is not a date or time such "
                                 "as 2026-12-24 or 2026-12-24 18:00") from exc


def note_for_pass(settings: Settings, now: datetime) -> tuple[Note | None, str]:
    """(the note in force, or None; a problem to report, or ""): the queue pass's view.
    A bad file never stops the digests."""
    try:
        return current_note(settings, now), ""
    except InputError as exc:
        log.warning("%s; digests go out without the note", exc)
        return None, f"note not used: {exc}"
