"""Editions stage: mail an editor wrote in editions/, sent once per reader when it is due.

    queue_editions(settings, store, now) -> EditionsReport

reads every file in the instance's editions/ folder (files.py), and starts each edition
that is due (its send_at passed, or none given) and not started yet: its content is
stored as it is now and one outbox message is queued for every active subscriber in its
audience (audience.py), in one transaction (store/editions.py). The delivery stage sends
them like digests. A file edited after its edition started is refused with one line (a
correction is a new edition); a bad file is one line too, and the pass goes on.

    edition_status(settings, store, now) -> list[EditionStatus]   (`edition list`, console)
    resolve(settings, store, edition_file) -> StoredEdition      (previews, tests)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from publisher.addresses import message_id_parts
from publisher.config import Settings
from publisher.editions.audience import in_audience, is_due
from publisher.editions.files import EditionFile, Problem, load_editions
from publisher.errors import InputError
from publisher.store import Store
from publisher.store.editions import StoredEdition

log = logging.getLogger(__name__)

FOLDER = "editions"

__all__ = ["EditionStatus", "EditionsReport", "edition_status", "load", "queue_editions",
           "resolve"]


@dataclass
class EditionsReport:
    started: int = 0
    queued: int = 0  # messages queued for the editions started
    scheduled: int = 0  # due later
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not (self.started or self.scheduled or self.problems):
            return ""  # no editions: nothing to say
        line = (f"editions: {self.started} started ({self.queued} "
                f"message{'s' if self.queued != 1 else ''} queued)")
        if self.scheduled:
            line += f", {self.scheduled} scheduled"
        if self.problems:
            line += f", {len(self.problems)} refused: " + "; ".join(self.problems)
        return line


def load(settings: Settings) -> tuple[list[EditionFile], list[Problem]]:
    return load_editions(settings.path(FOLDER), ZoneInfo(settings.site.timezone),
                         settings.ingest.max_markdown_bytes)


def queue_editions(settings: Settings, store: Store, now: datetime) -> EditionsReport:
    """Start every edition that is due and not started yet."""
    report = EditionsReport()
    files, problems = load(settings)
    started = store.editions.by_slug()
    for edition in files:
        known = started.get(edition.slug)
        if known is not None:
            if known.content_hash != edition.content_hash:
                problems.append(edited_after_start(edition, known))
        elif not is_due(edition.send_at, now):
            report.scheduled += 1
        else:
            try:
                start(settings, store, edition, now, report)
            except InputError as exc:
                problems.append(Problem(edition.source, exc.reason))
    for problem in problems:
        log.warning("edition not sent: %s", problem.line())
    report.problems = [problem.line() for problem in problems]
    log.info("%s", report.line())
    return report


def start(settings: Settings, store: Store, edition: EditionFile, now: datetime,
          report: EditionsReport) -> None:
    content = resolve(settings, store, edition)
    stored = store.editions.start(
        content, lambda reader: in_audience(reader, content.sections, content.frequencies),
        now, message_id_parts(settings, "edition"))
    if stored is not None:  # None: another process started it a moment ago
        report.started += 1
        report.queued += stored.recipients
        log.info("edition %s started: %d messages queued", stored.slug, stored.recipients)


def edited_after_start(edition: EditionFile, known: StoredEdition) -> Problem:
    return Problem(edition.source, f"edited after it started sending on "
                                   f"{known.queued_at:%Y-%m-%d %H:%M} UTC; the edit is not "
                                   "sent: send a correction as a new edition (a new file)")


def resolve(settings: Settings, store: Store, edition: EditionFile) -> StoredEdition:
    """The edition's content as it would be stored now: its article cards looked up
    (the slugs it names, then the newest N); InputError for a slug not stored."""
    found = store.editions.seqs_of_slugs(edition.articles)
    missing = [slug for slug in edition.articles if slug not in found]
    if missing:
        raise InputError(edition.source, f"articles: no stored article has the slug "
                                          f"{missing[0]!r}")
    seqs = [found[slug] for slug in edition.articles]
    if edition.latest:
        seqs += [seq for seq in store.editions.latest_seqs(edition.latest + len(seqs))
                 if seq not in seqs][:edition.latest]
    return StoredEdition(
        id=0, slug=edition.slug, content_hash=edition.content_hash, subject=edition.subject,
        sections=edition.sections, frequencies=edition.frequencies, send_at=edition.send_at,
        body_html=edition.body_html, body_text=edition.body_text, article_seqs=tuple(seqs),
        queued_at=None)


@dataclass(frozen=True)
class EditionStatus:
    """One edition (a file, a started edition, or both) as `edition list` shows it."""

    slug: str
    subject: str
    state: str  # scheduled, due, sending, sent, edited, invalid, file removed
    when: datetime | None  # send_at, else when it started
    queued: int = 0
    sent: int = 0
    failed: int = 0
    problem: str = ""


def edition_status(settings: Settings, store: Store, now: datetime) -> list[EditionStatus]:
    """Every edition file and every started edition, newest first by date."""
    files, problems = load(settings)
    started = store.editions.by_slug()
    counts = store.editions.delivery_counts()
    rows = {}
    for slug, known in started.items():
        count = counts.get(known.id, {"queued": 0, "sent": 0, "failed": 0})
        state = "sending" if count["queued"] else "sent"
        rows[slug] = EditionStatus(slug, known.subject, state, known.published, **count,
                                   problem="" if any(f.slug == slug for f in files)
                                   else "its file was removed (the web copy stays)")
    for edition in files:
        known = started.get(edition.slug)
        if known is not None:
            if known.content_hash != edition.content_hash:
                problem = edited_after_start(edition, known).reason
                rows[edition.slug] = EditionStatus(**{**rows[edition.slug].__dict__,
                                                      "problem": problem})
            continue
        state = "due" if is_due(edition.send_at, now) else "scheduled"
        rows[edition.slug] = EditionStatus(edition.slug, edition.subject, state,
                                           edition.send_at)
    for problem in problems:
        slug = problem.source.rsplit("/", 1)[-1].removesuffix(".md")
        rows.setdefault(slug, EditionStatus(slug, "", "invalid", None, problem=problem.reason))
    return sorted(rows.values(), key=lambda r: (r.when is None, r.when or now), reverse=True)
