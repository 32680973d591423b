"""Digests stage: who is due (pure functions of `now`), what each digest holds, queuing it.

A daily or weekly subscriber is due when their period's send time ([digest] daily_at,
weekly_on), in their own time zone, has passed since their last digest (or since they
joined). An instant subscriber is due whenever something is new. A digest holds the
articles stored after the subscriber's cursor that match their sections, newest first,
at most [digest] max_articles; nothing new means no digest and the cursor stays.

Each digest is keyed by (subscriber, period) — "daily:2026-11-24", "weekly:2026-W48",
"instant:<newest seq>", "now:<newest seq>" — so queuing it twice inserts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from publisher.addresses import message_id_parts
from publisher.config import WEEKDAYS, DigestSettings, Settings
from publisher.digests.note import note_for_pass
from publisher.store import Store
from publisher.store.queueing import ArticleLookup, Candidate, DigestPlan
from publisher.words import counted

log = logging.getLogger(__name__)

# Subscribers read, planned and queued per transaction.
BATCH = 1000


@dataclass
class DigestReport:
    checked: int = 0  # active subscribers with anything stored after their cursor
    queued: int = 0
    note: bool = False  # the editor's note was in force
    problem: str = ""  # the note file could not be used: why

    def line(self) -> str:
        line = f"digests: {self.queued} queued ({counted(self.checked, 'subscriber')} checked)"
        if self.note and self.queued:
            line += ", with the editor's note"
        return f"{line}; {self.problem}" if self.problem else line


# ---------------------------------------------------------------- who is due
@lru_cache(maxsize=1024)
def zone(name: str, default: str) -> ZoneInfo:
    """The subscriber's zone, or the default one when theirs is empty or unknown."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r; using %s", name, default)
    return ZoneInfo(default)


def latest_send_time(frequency: str, tz: ZoneInfo, now: datetime,
                     digest: DigestSettings, at: str = "") -> tuple[datetime, str] | None:
    """The last scheduled send time at or before `now` (aware UTC) and its period label;
    None for instant subscribers, who have no schedule. `at` is the subscriber's own
    delivery time (HH:MM in their zone); empty: [digest] daily_at."""
    if frequency not in ("daily", "weekly"):
        return None
    hour, minute = (int(part) for part in (at or digest.daily_at).split(":"))
    local_now = now.astimezone(tz)
    day = local_now.date()
    if frequency == "weekly":
        wanted = WEEKDAYS.index(digest.weekly_on.lower())
        day -= timedelta(days=(day.weekday() - wanted) % 7)
    send = local_time(day, hour, minute, tz)
    if send > now:
        day -= timedelta(days=7 if frequency == "weekly" else 1)
        send = local_time(day, hour, minute, tz)
    if frequency == "daily":
        return send, f"daily:{day.isoformat()}"
    year, week, _ = day.isocalendar()
    return send, f"weekly:{year}-W{week:02d}"


def local_time(day: date, hour: int, minute: int, tz: ZoneInfo) -> datetime:
    """HH:MM on that day in that zone, as aware UTC. Compared in UTC, never as wall
    times (Python compares two times of one zone by their wall clocks, which is wrong
    across a daylight-saving change). A time in the hour skipped in spring is read with
    the offset before the change (02:30 becomes 03:30 daylight time); a time in the hour
    repeated in autumn is its first occurrence, so either day still has one send time."""
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)


Scheduled = tuple[datetime, str]  # a send time (aware UTC) and its period label


def schedule(settings: Settings,
             now: datetime) -> Callable[[str, str, str], Scheduled | None]:
    """(frequency, time zone, delivery time) -> the latest send time at `now` and its
    label, worked out once per pass and triple: most subscribers share a few schedules."""

    @cache
    def scheduled(frequency: str, timezone: str, at: str = "") -> Scheduled | None:
        return latest_send_time(frequency, zone(timezone, settings.digest_timezone), now,
                                settings.digest, at)

    return scheduled


def due(candidate: Candidate, scheduled: Callable[[str, str, str], Scheduled | None],
        everyone: bool = False) -> str | None:
    """The rule: the period label if the subscriber is due, else None. `everyone` (send
    --now) and instant subscribers are always due (what is new decides); a daily or weekly
    one when their latest send time (their delivery time, else [digest] daily_at, in
    their zone) came after their last digest, or after they joined. A changed delivery
    time never doubles a day's digest: the period label is the same.
    Instant and `everyone` labels get the newest article's seq appended by the planner."""
    if everyone:
        return "now"
    if candidate.frequency == "instant":
        return "instant"
    found = scheduled(candidate.frequency, candidate.timezone, candidate.deliver_at)
    if found is None:
        return None
    send, label = found
    since = candidate.last_digest_at or candidate.created_at
    return label if since < send else None


class DigestPlanner:
    """Plans one queue pass: the due rule and the article selection, both cached, since
    most subscribers share a schedule, a zone, a cursor and their sections."""

    def __init__(self, settings: Settings, now: datetime, max_seq: int, everyone: bool):
        self.scheduled = schedule(settings, now)
        self.max_seq = max_seq
        self.everyone = everyone
        self.limit = settings.digest.max_articles
        self.contents: dict[tuple, tuple[list[int], int]] = {}

    def __call__(self, candidates: list[Candidate], lookup: ArticleLookup) -> list[DigestPlan]:
        plans = []
        for candidate in candidates:
            label = due(candidate, self.scheduled, self.everyone)
            if label is None:
                continue
            seqs, total = self.content(candidate, lookup)
            if not seqs:
                continue  # nothing new for them: no digest, the cursor stays
            period = f"{label}:{seqs[0]}" if label in ("instant", "now") else label
            plans.append(DigestPlan(candidate.id, candidate.email, period, tuple(seqs),
                                    total - len(seqs)))
        return plans

    def content(self, candidate: Candidate, lookup: ArticleLookup) -> tuple[list[int], int]:
        key = (candidate.cursor, tuple(sorted(candidate.sections)))
        found = self.contents.get(key)
        if found is None:
            if len(self.contents) > 10_000:  # a pass over many distinct cursors
                self.contents.clear()
            found = self.contents[key] = lookup.matching(candidate.cursor, self.max_seq,
                                                         key[1], self.limit)
        return found


# ---------------------------------------------------------------- queuing
def queue_digests(settings: Settings, store: Store, now: datetime,
                  everyone: bool = False) -> DigestReport:
    """Queue a digest for every due subscriber with something new; `everyone` treats
    every active subscriber as due (`publisher send --now`)."""
    report = DigestReport()
    max_seq = store.articles.max_seq()  # articles stored during the pass wait for the next
    if not max_seq:
        return report
    planner = DigestPlanner(settings, now, max_seq, everyone)
    message_id = digest_message_id_parts(settings)
    note_id = note_in_force(settings, store, now, report)
    after = 0
    while True:
        batch = store.ledger.queue_batch(after, BATCH, max_seq, now, planner, message_id,
                                         note_id)
        if batch.last_id is None:
            break
        after = batch.last_id
        report.checked += batch.read
        report.queued += len(batch.queued)
    log.info("%s", report.line())
    return report


def note_in_force(settings: Settings, store: Store, now: datetime,
                  report: DigestReport) -> int | None:
    """The stored id of the editor's note in force at `now` (None: none, or a bad file,
    which the report then names: the digests go out without it)."""
    note, report.problem = note_for_pass(settings, now)
    if note is None:
        return None
    report.note = True
    return store.notes.save(note.content_hash, note.html, note.text, note.until, now)


def digest_message_id_parts(settings: Settings) -> tuple[str, str]:
    """A digest's Message-ID is `<digest-ID.TAG@DOMAIN>` (see message_id_parts)."""
    return message_id_parts(settings, "digest")


def digest_message_id(settings: Settings, digest_id: int) -> str:
    prefix, suffix = digest_message_id_parts(settings)
    return f"{prefix}{digest_id}{suffix}"


def starting_cursor(settings: Settings, store: Store, sections: tuple[str, ...] = ()) -> int:
    """The cursor a new subscriber starts at: the newest article, so they get no flood of
    old ones; with [digest] first_digest_recent = N, just before the N newest articles
    matching their sections, so their first digest holds those."""
    max_seq = store.articles.max_seq()
    wanted = settings.digest.first_digest_recent
    if wanted <= 0 or not max_seq:
        return max_seq
    seqs, _ = store.ledger.article_lookup(
        lambda lookup: lookup.matching(0, max_seq, tuple(sections), wanted))
    return min(seqs) - 1 if seqs else max_seq


def next_digest(settings: Settings, store: Store, candidate: Candidate) -> DigestPlan | None:
    """What the subscriber's next digest would hold if it were queued now (preview)."""
    max_seq = store.articles.max_seq()
    seqs, total = store.ledger.article_lookup(lambda lookup: lookup.matching(
        candidate.cursor, max_seq, tuple(sorted(candidate.sections)),
        settings.digest.max_articles))
    if not seqs:
        return None
    return DigestPlan(candidate.id, candidate.email, f"preview:{seqs[0]}", tuple(seqs),
                      total - len(seqs))
