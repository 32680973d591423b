"""Ingest stage, upstream feeds: fetch each [[sources]] feed that is due, store its entries.

Fetches are polite: a conditional GET (If-None-Match, If-Modified-Since) with a
User-Agent naming Publisher and the site, a timeout, and a size cap. Due sources are
fetched in parallel threads, then stored one by one. A source that fails is retried with
backoff (sooner than its interval at first, then less and less often), logged with its
name, and called unhealthy by `publisher status` after `unhealthy_after` failures in a
row; it never stops the other sources.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from publisher import __version__
from publisher.config import Settings, SourceSettings
from publisher.errors import InputError
from publisher.ingest.source_entries import parse_entries
from publisher.ops.metrics import SOURCE_ERRORS
from publisher.store import Store
from publisher.store.sources import SourceState

log = logging.getLogger(__name__)

MAX_PARALLEL = 8
FIRST_RETRY_SECONDS = 60
LONGEST_RETRY_SECONDS = 3600
ACCEPT = ("application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
          "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5")


@dataclass
class SourcesReport:
    fetched: int = 0
    not_modified: int = 0
    failed: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def line(self) -> str:
        return (f"sources: {self.fetched} fetched, {self.not_modified} not modified, "
                f"{self.failed} failed; {self.new} new, {self.updated} updated")


@dataclass(frozen=True)
class Fetched:
    """What one GET brought back: a feed body (200) or nothing new (304)."""

    not_modified: bool
    content: bytes
    url: str  # after redirects
    content_type: str
    etag: str | None
    last_modified: str | None


class FetchError(Exception):
    """The source could not be fetched; the message says why, for logs and status."""


def user_agent(settings: Settings) -> str:
    return f"Publisher/{__version__} (+{settings.site.url})"


def fetch_sources(settings: Settings, store: Store, now: datetime,
                  only: set[str] | None = None) -> SourcesReport:
    """Fetch every configured source that is due at `now` (or only those named)."""
    return store_fetched(store, now, fetch_due(settings, store, now, only))


@dataclass(frozen=True)
class Pending:
    """A source's fetch, done or failed, waiting to be stored."""

    source: SourceSettings
    state: SourceState | None
    outcome: Fetched | Exception


def fetch_due(settings: Settings, store: Store, now: datetime,
              only: set[str] | None = None) -> list[Pending]:
    """The network half: GET every due source, in parallel; stores nothing. The daemon
    runs it apart from the other stages so a slow server never holds them up."""
    states = store.sources.states()
    due = [source for source in settings.sources
           if (only is None or source.name in only)
           and is_due(states.get(source.name), source, now)]
    if not due:
        return []
    agent = user_agent(settings)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(due)),
                            thread_name_prefix="source") as pool:
        futures = [(source, pool.submit(fetch, source, states.get(source.name), agent,
                                        settings.ingest.max_bytes)) for source in due]
        return [Pending(source, states.get(source.name), outcome(future))
                for source, future in futures]


def outcome(future) -> Fetched | Exception:
    try:
        return future.result()
    except Exception as exc:  # stored as the source's failure, never raised
        return exc


def store_fetched(store: Store, now: datetime, pending: list[Pending]) -> SourcesReport:
    """The store half: each fetch's new and edited entries, or its failure."""
    report = SourcesReport()
    for item in pending:
        store_result(store, item, now, report)
    if pending:
        log.info("%s", report.line())
    return report


def is_due(state: SourceState | None, source: SourceSettings, now: datetime) -> bool:
    if state is None or state.url != source.url or state.next_fetch_at is None:
        return True
    return state.next_fetch_at <= now


def fetch(source: SourceSettings, state: SourceState | None, agent: str,
          max_bytes: int) -> Fetched:
    headers = {"User-Agent": agent, "Accept": ACCEPT}
    # Validators belong to the URL they came from; a changed URL starts afresh.
    if state and state.url == source.url:
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
    try:
        with httpx.Client(timeout=source.timeout, follow_redirects=True) as client, \
                client.stream("GET", source.url, headers=headers) as response:
            return read_response(response, state, max_bytes)
    except httpx.TimeoutException as exc:
        raise FetchError(f"timed out after {source.timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{type(exc).__name__}: {exc}" if str(exc)
                         else type(exc).__name__) from exc


def read_response(response: httpx.Response, state: SourceState | None,
                  max_bytes: int) -> Fetched:
    etag = response.headers.get("etag")
    last_modified = response.headers.get("last-modified")
    if response.status_code == 304:
        return Fetched(True, b"", str(response.url), "", etag or (state and state.etag),
                       last_modified or (state and state.last_modified))
    if response.status_code != 200:
        raise FetchError(f"HTTP {response.status_code} {response.reason_phrase}".strip())
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(f"feed is over {max_bytes:,} bytes ([ingest] max_bytes)")
    return Fetched(False, bytes(body), str(response.url),
                   response.headers.get("content-type", ""), etag, last_modified)


def store_result(store: Store, item: Pending, now: datetime, report: SourcesReport) -> None:
    """Store one source's fetch, or record its failure; never raises for the source's
    own faults, so one broken feed cannot stop the others."""
    source, state, fetched = item.source, item.state, item.outcome
    try:
        if isinstance(fetched, Exception):
            raise fetched
        if fetched.not_modified:
            store.sources.save_fetch(source.name, source.url, now, new=(), edited=(),
                                     etag=fetched.etag, last_modified=fetched.last_modified,
                                     next_fetch_at=now + timedelta(seconds=source.interval))
            report.not_modified += 1
            return
        entries = parse_entries(fetched.content, source.name, fetched.url, source.sections,
                                fetched.content_type)
    except (FetchError, InputError) as exc:
        reason = exc.reason if isinstance(exc, InputError) else str(exc)
        record_failure(store, source, state, now, reason, report)
        return
    except Exception as exc:  # a bug on one feed's odd input must not stop the others
        log.error("source %s: unexpected error", source.name, exc_info=exc)
        record_failure(store, source, state, now, f"unexpected error: {exc}", report)
        return
    stored = store.sources.content_hashes([a.id for a in entries.articles])
    new = [a for a in entries.articles if a.id not in stored]
    edited = [(a.id, a) for a in entries.articles
              if a.id in stored and stored[a.id] != a.content_hash]
    store.sources.save_fetch(source.name, source.url, now, new=new, edited=edited,
                             etag=fetched.etag, last_modified=fetched.last_modified,
                             next_fetch_at=now + timedelta(seconds=source.interval))
    report.fetched += 1
    report.new += len(new)
    report.updated += len(edited)
    report.unchanged += len(entries.articles) - len(new) - len(edited)
    if state and state.failures:
        log.warning("source %s: fetched again after %d failures", source.name,
                    state.failures)
    log.info("source %s: %d new, %d updated, %d unchanged", source.name, len(new),
             len(edited), len(entries.articles) - len(new) - len(edited))


def record_failure(store: Store, source: SourceSettings, state: SourceState | None,
                   now: datetime, error: str, report: SourcesReport) -> None:
    failures = (state.failures if state else 0) + 1
    retry_at = now + timedelta(seconds=retry_delay(failures, source.interval))
    failures = store.sources.save_failure(source.name, source.url, now, error, retry_at)
    SOURCE_ERRORS.labels(source=source.name).inc()
    report.failed += 1
    log.warning("source %s: %s (failure %d in a row; next try %s)", source.name, error,
                failures, retry_at.isoformat(timespec="seconds"))
    if failures == source.unhealthy_after:
        log.error("source %s is unhealthy: %d failures in a row, the last: %s",
                  source.name, failures, error)


def retry_delay(failures: int, interval: int) -> int:
    """Seconds before the next try after `failures` in a row: from a minute (or the
    interval, if shorter), doubling, up to the longer of the interval and an hour."""
    first = min(FIRST_RETRY_SECONDS, interval)
    return min(first * 2 ** (failures - 1), max(interval, LONGEST_RETRY_SECONDS))


def source_health(source: SourceSettings, state: SourceState | None) -> str:
    """'unhealthy' after `unhealthy_after` failures in a row, 'new' before any fetch."""
    if state is None or state.last_attempt_at is None:
        return "new"
    if state.failures >= source.unhealthy_after:
        return "unhealthy"
    return "failing" if state.failures else "ok"

