"""The pipeline: one pass of every stage, in order. Cron and the daemon both call this."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from publisher.clock import Clock
from publisher.config import Settings
from publisher.delivery import DeliveryReport, deliver_blocking
from publisher.digests import DigestReport, queue_digests
from publisher.feeds import FeedsReport, build_feeds
from publisher.ingest import IngestReport, ingest
from publisher.metrics import record_stage
from publisher.sources import SourcesReport, fetch_sources
from publisher.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class RunReport:
    ingest: IngestReport
    sources: SourcesReport
    feeds: FeedsReport
    digests: DigestReport
    delivery: DeliveryReport

    def lines(self) -> list[str]:
        return [self.ingest.line(), self.sources.line(), self.feeds.line(),
                self.digests.line(), self.delivery.line()]


def run_once(settings: Settings, store: Store, transport: Any, clock: Clock) -> RunReport:
    """Ingest new articles; later stages read what this one stored. Every stage decides
    by the pass's one `now`, read once from the clock."""
    now = clock()
    return RunReport(
        ingest=stage(store, "ingest", clock, lambda: ingest(settings, store, now)),
        sources=stage(store, "sources", clock, lambda: fetch_sources(settings, store, now)),
        feeds=stage(store, "feeds", clock, lambda: build_feeds(settings, store, now)),
        digests=stage(store, "digests", clock, lambda: queue_digests(settings, store, now)),
        delivery=stage(store, "delivery", clock,
                       lambda: deliver_blocking(settings, store, transport, now)),
    )


def stage(store: Store, name: str, clock: Clock, work: Callable[[], T]) -> T:
    """Run one stage; record it in the runs table and the metrics, failed or not.

    The runs table gets the clock's time at the stage's start and end, so status shows
    when each stage really ran and what it took; the pass's own `now`, which the work
    closes over, is what the work itself decides by.
    """
    run_id = store.runs.start(name, clock())
    started = time.perf_counter()
    try:
        result = work()
    except Exception as exc:
        record_stage(name, time.perf_counter() - started, ok=False, report=None)
        store.runs.finish(run_id, clock(), ok=False, summary={"error": str(exc)})
        raise
    record_stage(name, time.perf_counter() - started, ok=True, report=result)
    summary = asdict(result) if hasattr(result, "__dataclass_fields__") else {}
    store.runs.finish(run_id, clock(), ok=True, summary=summary)
    return result
