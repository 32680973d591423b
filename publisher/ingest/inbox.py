"""Ingest stage: find new and edited files in the inbox, parse them, store the articles.

A file whose bytes have not changed since the last pass is not parsed again. A file that
cannot become articles is moved to the inbox's quarantine/ folder with NAME.error beside
it, and the pass goes on with the other files.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from publisher.article import Article, section_names
from publisher.config import Settings
from publisher.errors import InputError, item_errors
from publisher.ingest.files import (
    QUARANTINE,
    Vanished,
    check_entry,
    checked_bytes,
    inbox_files,
    key_of,
    quarantine,
    read_inbox_file,
    release_changed,
)
from publisher.ingest.markdown import parse_markdown
from publisher.ingest.scraped import parse_scraped
from publisher.store import Store
from publisher.store.articles import FilePlan, StoredRef

log = logging.getLogger(__name__)

__all__ = ["QUARANTINE", "inbox_files", "ingest", "parse_bytes", "read_input"]
PARSERS = {".txt": "scraped", ".md": "markdown", ".markdown": "markdown"}


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
BATCH_ARTICLES = 2000


def ingest(settings: Settings, store: Store, now: datetime) -> IngestReport:
    inbox = settings.path(settings.ingest.inbox)
    report = IngestReport()
    seen = store.articles.seen_files()
    release_changed(inbox)
    batch: list[FilePlan] = []
    for path in inbox_files(inbox):
        plan = plan_file(path, inbox, settings, store, seen, now, report)
        if plan:
            batch.append(plan)
        if sum(len(p.new) + len(p.edited) for p in batch) >= BATCH_ARTICLES:
            store.articles.save_files(batch, now)
            batch = []
    if batch:
        store.articles.save_files(batch, now)
    log.info("%s", report.line())
    return report


def plan_file(path: Path, inbox: Path, settings: Settings, store: Store,
              seen: dict[str, tuple[str, int]], now: datetime,
              report: IngestReport) -> FilePlan | None:
    """What storing this file changes; None when it is unchanged or quarantined."""
    key = key_of(path, inbox)
    try:
        # The boundary: whatever reading and parsing a stranger's file raises is this
        # file's error, and the pass goes on with the others.
        with item_errors(key):
            check_entry(path, key)
            check_type(key)
            data = read_inbox_file(inbox, path, key, settings.ingest.max_bytes)
            sha256 = hashlib.sha256(data).hexdigest()
            if key in seen and seen[key][0] == sha256:
                report.unchanged += seen[key][1]
                return None
            parsed = parse_bytes(data, key, settings)
    except Vanished:
        log.info("%s went away before it was read", key)
        return None
    except InputError as exc:
        try:
            quarantine(path, inbox, exc.reason, now)
        except OSError as error:  # the quarantine cannot be used: the file stays put
            log.error("%s: %s; cannot quarantine it (%s)", key, exc.reason, error)
            return None
        report.quarantined += 1
        return None
    plan = reconcile(FilePlan(key, sha256, len(parsed)), parsed,
                     store.articles.refs_for(key, [a.id for a in parsed]))
    report.new += len(plan.new)
    report.updated += len(plan.edited)
    report.unchanged += plan.count - len(plan.new) - len(plan.edited)
    return plan


def read_input(path: Path, key: str, max_bytes: int) -> bytes:
    """A file the operator names (`publisher parse`), read with the inbox's checks."""
    check_type(key)
    with path.open("rb") as handle:
        return checked_bytes(handle.read(max_bytes + 1), key, max_bytes)


def check_type(key: str) -> None:
    suffix = Path(key).suffix
    if suffix.lower() not in PARSERS:
        raise InputError(key, f"unsupported file type {suffix or '(none)'!r}: "
                              "the inbox takes .txt page text and .md Markdown")


def parse_bytes(data: bytes, key: str, settings: Settings) -> list[Article]:
    """Articles from one file's bytes; sub-folders of the inbox name their sections."""
    folders = section_names(list(Path(key).parent.parts))
    if PARSERS.get(Path(key).suffix.lower()) == "markdown":
        if len(data) > settings.ingest.max_markdown_bytes:
            raise InputError(key, f"Markdown file is over the limit of "
                                  f"{settings.ingest.max_markdown_bytes:,} bytes "
                                  "([ingest] max_markdown_bytes)")
        return parse_markdown(data, key, folders, ZoneInfo(settings.site.timezone))
    return parse_scraped(data, key, folders)


def reconcile(plan: FilePlan, parsed: list[Article], refs: list[StoredRef]) -> FilePlan:
    """Sort parsed articles into the plan's new, edited (under the stored id) and moved."""
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
