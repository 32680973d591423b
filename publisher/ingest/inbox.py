"""Ingest stage: find new and edited files in the inbox, parse them, store the articles.

A file whose bytes have not changed since the last pass is not parsed again. A file that
cannot become articles is moved to the inbox's quarantine/ folder with NAME.error beside
it, and the pass goes on with the other files.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from publisher.article import Article
from publisher.config import Settings
from publisher.errors import InputError, item_errors
from publisher.ingest.files import (
    QUARANTINE,
    Folders,
    Vanished,
    check_entry,
    checked_bytes,
    inbox_files,
    key_of,
    quarantine,
    read_inbox_file,
    release_changed,
)
from publisher.ingest.parallel import Parsing
from publisher.ingest.parse import PARSERS, options_of, parse_bytes
from publisher.ingest.scan import (
    InboxScan,
    changed_entries,
    named,
    scan_clock,
    stat_of,
    trusted,
)
from publisher.store import Store
from publisher.store.articles import FilePlan, StoredRef
from publisher.store.inbox_files import FileStat, SeenFile

log = logging.getLogger(__name__)

__all__ = ["QUARANTINE", "inbox_files", "ingest", "parse_bytes", "read_input"]


@dataclass
class IngestReport:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0

    def line(self) -> str:
        return (f"ingest: {self.new} new, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.quarantined} quarantined")


# Files are stored in batches: one transaction per batch keeps ingest fast, and a batch
# holds its files' records too, so a crash leaves each file either done or not started.
# The stored articles a batch's files may touch are looked up once for the whole batch.
BATCH_ARTICLES = 1000


def ingest(settings: Settings, store: Store, now: datetime,
           only: Iterable[Path] | None = None, rescan: bool = False) -> IngestReport:
    """Store what is new or edited in the inbox. Files unchanged since they were read
    (by their stat), in folders unchanged since they were listed, are not looked at
    again, but for a rotating share (scan.py). `only`: the paths that changed (the
    daemon's file events), looked at alone; None: the whole inbox; `rescan`: every
    folder listed and every file stat-ed now."""
    inbox = settings.path(settings.ingest.inbox)
    report = IngestReport()
    if only is not None and any(in_quarantine(path, inbox) for path in only):
        only = None  # a file in quarantine/ changed: it may be put back, so look at all
    clock = partial(scan_clock, inbox)  # the file system's time, read before a first read
    if only is None:
        release_changed(inbox)
        scan = InboxScan(inbox, store.inbox_files, clock, rescan)
        scan.run(settings.ingest.recheck_per_pass)
        entries, clock = list(scan.entries.values()), scan.now  # read once, if listed
        seen = store.inbox_files.seen([key for key, _path, _info in entries])
        # The files not to read are unchanged: their articles, from the store's total.
        report.unchanged = store.inbox_files.articles_total() - sum(
            record.articles for record in seen.values())
    else:
        entries = list(named(inbox, only))
        seen = store.inbox_files.seen([key for key, _path, _info in entries])
    paths, unchanged = changed_entries(entries, seen)
    report.unchanged += unchanged
    batch = Batch(store, now, report, clock() if paths else None)
    folders = Folders(inbox)
    reads = (read_file(path, inbox, settings, seen, report, folders) for path in paths)
    # Parsed here, or by worker processes when there are many (parallel.py); in order.
    # Their size by the stats listed (bytes of files that turn out unchanged included).
    size = sum(info.st_size for _key, _path, info in entries if info is not None)
    with folders, Parsing(options_of(settings), len(paths),
                          lambda data, key: parse_bytes(data, key, settings),
                          size) as parsing:
        for read in parsing.run(reads):
            batch.add(settled(read, inbox, now, report))
    batch.flush()
    log.info("%s", report.line())
    return report


def in_quarantine(path: Path, inbox: Path) -> bool:
    return path.is_relative_to(inbox / QUARANTINE)


@dataclass
class Read:
    """One file read: its hash and stat, and its articles unless its bytes are the
    ones stored already (parsed is None then). Its bytes wait in `data` for a parse;
    `error` says why it cannot become articles."""

    path: Path
    key: str
    sha256: str = ""
    stat: FileStat | None = None
    parsed: list[Article] | None = None
    data: bytes | None = None
    error: InputError | None = None


@dataclass
class Batch:
    """Files read and not yet stored; stored together once they hold enough articles."""

    store: Store
    now: datetime
    report: IngestReport
    clock: int | None  # the file system's time as the pass began (scan.scan_clock)
    parsed: list[Read] = field(default_factory=list)
    restat: list[tuple[str, FileStat | None]] = field(default_factory=list)
    articles: int = 0
    ids: set[str] = field(default_factory=set)  # the ids of the articles in `parsed`

    def add(self, read: Read | None) -> None:
        if read is None:
            return
        if read.parsed is None:  # touched, not changed: only its stat is new
            self.restat.append((read.key, trusted(read.stat, self.clock)))
            return
        ids = {article.id for article in read.parsed}
        if ids & self.ids:
            # An id a file before it in this batch has too (the same `id:` in two files):
            # store those first, so this file is matched to that article as it would be
            # in a later batch, rather than both inserted as new.
            self.flush()
        self.ids |= ids
        self.parsed.append(read)
        self.articles += len(read.parsed)
        if self.articles >= BATCH_ARTICLES:
            self.flush()

    def flush(self) -> None:
        if self.parsed:
            refs = self.store.articles.refs_for_files(
                {read.key: [a.id for a in read.parsed] for read in self.parsed})
            plans = [self.plan(read, refs[read.key]) for read in self.parsed]
            self.store.articles.save_files(plans, self.now)
        self.store.inbox_files.record_stats(self.restat)
        self.parsed, self.restat, self.articles, self.ids = [], [], 0, set()

    def plan(self, read: Read, refs: list[StoredRef]) -> FilePlan:
        plan = reconcile(FilePlan(read.key, read.sha256, len(read.parsed),
                                  trusted(read.stat, self.clock)), read.parsed, refs)
        self.report.new += len(plan.new)
        self.report.updated += len(plan.edited)
        self.report.unchanged += plan.count - len(plan.new) - len(plan.edited)
        return plan


def read_file(path: Path, inbox: Path, settings: Settings, seen: dict[str, SeenFile],
              report: IngestReport, folders: Folders | None = None) -> Read | None:
    """The file read, with its bytes to parse unless they are the ones stored; None when
    it went away."""
    key = key_of(path, inbox)
    try:
        # The boundary: whatever reading a stranger's file raises is this file's error,
        # and the pass goes on with the others (parsing has its own: parallel.py).
        with item_errors(key):
            check_entry(path, key)
            check_type(key)
            data, info = read_inbox_file(inbox, path, key, settings.ingest.max_bytes, folders)
            sha256 = hashlib.sha256(data).hexdigest()
            record = seen.get(key)
            if record is not None and record.sha256 == sha256:
                report.unchanged += record.articles
                return Read(path, key, sha256, stat_of(info))
            return Read(path, key, sha256, stat_of(info), data=data)
    except Vanished:
        log.info("%s went away before it was read", key)
        return None
    except InputError as exc:
        return Read(path, key, error=exc)


def settled(read: Read | None, inbox: Path, now: datetime,
            report: IngestReport) -> Read | None:
    """The file read and parsed; None when it could not be, and was quarantined."""
    if read is None or read.error is None:
        return read
    try:
        quarantine(read.path, inbox, read.error.reason, now)
    except OSError as error:  # the quarantine cannot be used: the file stays put
        log.error("%s: %s; cannot quarantine it (%s)", read.key, read.error.reason, error)
        return None
    report.quarantined += 1
    return None


def read_input(path: Path, key: str, max_bytes: int) -> bytes:
    """A file the operator names (`publisher parse`), read with the inbox's checks."""
    check_type(key)
    with path.open("rb") as handle:
        return checked_bytes(handle.read(max_bytes + 1), key, max_bytes)


def check_type(key: str) -> None:
    suffix = suffix_of(key)
    if suffix.lower() not in PARSERS:
        raise InputError(key, f"unsupported file type {suffix or '(none)'!r}: "
                              "the inbox takes .txt page text and .md Markdown")


def suffix_of(key: str) -> str:
    """Path(key).suffix by the string (a Path per file cost more than reading it)."""
    name = key.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def reconcile(plan: FilePlan, parsed: list[Article], refs: list[StoredRef]) -> FilePlan:
    """Sort parsed articles into the plan's new, edited (under the stored id) and moved."""
    if not refs:  # a new file, the usual case in a big pass: all of its articles are new
        plan.new.extend(parsed)
        return plan
    by_id = {ref.id: ref for ref in refs}
    parsed_ids = {article.id for article in parsed}
    # A stored article whose id is gone from the file had its title edited if a new
    # article now stands at its position.
    orphans = {ref.source_index: ref for ref in refs if ref.id not in parsed_ids}
    for article in parsed:
        ref = by_id.get(article.id) or orphans.pop(article.source_index, None)
        if ref is None:
            plan.new.append(article)
        elif ref.content_hash != article.content_hash or ref.id != article.id:
            plan.edited.append((ref.id, replace(article, id=ref.id)))
        elif ref.source_index != article.source_index:
            plan.moved.append((ref.id, article.source_index))
    return plan
