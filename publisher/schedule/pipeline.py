"""Schedule: the pipeline, one pass of every stage in order, and the bookkeeping every
stage run gets (a runs-table row and metrics), for cron's pass and the daemon's jobs alike."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypeVar

from publisher.bounces import ImapReport, bounces_stage
from publisher.clock import Clock
from publisher.config import Settings
from publisher.delivery import DeliveryReport, deliver_blocking
from publisher.digests.planner import DigestReport, queue_digests
from publisher.feeds import FeedsReport, build_feeds
from publisher.ingest.inbox import IngestReport, ingest
from publisher.ingest.sources import SourcesReport, fetch_sources
from publisher.ops.metrics import record_stage
from publisher.store import Store
from publisher.webhooks import WebhooksReport, deliver_webhooks

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class RunReport:
    ingest: IngestReport
    sources: SourcesReport
    feeds: FeedsReport
    digests: DigestReport
    delivery: DeliveryReport
    bounces: ImapReport
    webhooks: WebhooksReport | None = None  # None: no [[webhooks]] configured

    def lines(self) -> list[str]:
        lines = [self.ingest.line(), self.sources.line(), self.feeds.line(),
                 self.digests.line(), self.delivery.line()]
        # Without a bounce mailbox the stage only prunes: say so only when it did.
        if self.bounces.mailbox or self.bounces.pruned:
            lines.append(self.bounces.line())
        return lines + ([self.webhooks.line()] if self.webhooks else [])


def run_once(settings: Settings, store: Store, transport: Any, clock: Clock) -> RunReport:
    """Every stage once, in order; later stages read what earlier ones stored. Every stage
    decides by the pass's one `now`, read once from the clock."""
    now = clock()
    reports = {name: stage(store, name, clock, work)
               for name, work in stages(settings, store, now, transport)}
    return RunReport(**reports, webhooks=webhooks_stage(settings, store, clock, now))


def webhooks_stage(settings: Settings, store: Store, clock: Clock,
                   now: datetime) -> WebhooksReport | None:
    """Post events to [[webhooks]] receivers; with none, only forget old events."""
    if not settings.webhooks:
        deliver_webhooks(settings, store, now)
        return None
    return stage(store, "webhooks", clock, lambda: deliver_webhooks(settings, store, now))


def stages(settings: Settings, store: Store, now: datetime,
           transport: Any = None) -> list[tuple[str, Callable[[], Any]]]:
    """The stages of a pass in pipeline order, each deciding by `now`. `publisher run`
    runs them all; the daemon runs the ones a new file or a new article calls for."""
    return [
        ("ingest", lambda: ingest(settings, store, now)),
        ("sources", lambda: fetch_sources(settings, store, now)),
        ("feeds", lambda: build_feeds(settings, store, now)),
        ("digests", lambda: queue_digests(settings, store, now)),
        ("delivery", lambda: deliver_blocking(settings, store, transport, now)),
        # Pruning and the bounce mailbox; the daemon asks for it on a timer of its own.
        ("bounces", lambda: bounces_stage(settings, store, now)),
    ]


def stage(store: Store, name: str, clock: Clock, work: Callable[[], T]) -> T:
    """Run one stage; record it in the runs table and the metrics, failed or not.

    The runs table gets the clock's time at the stage's start and end, so status shows
    when each stage really ran and what it took; the pass's own `now`, which the work
    closes over, is what the work itself decides by.
    """
    run = StageRun.start(store, name, clock)
    try:
        result = work()
    except Exception as exc:
        run.failed(exc)
        raise
    run.done(result)
    return result


async def astage(store: Store, name: str, clock: Clock,
                 work: Callable[[], Awaitable[T]]) -> T:
    """`stage` for a coroutine (the daemon's sender): the same runs row and metrics; the
    store is written from a thread so the event loop never waits on the database."""
    run = await asyncio.to_thread(StageRun.start, store, name, clock)
    try:
        result = await work()
    except Exception as exc:
        await asyncio.to_thread(run.failed, exc)
        raise
    await asyncio.to_thread(run.done, result)
    return result


@dataclass
class StageRun:
    """The bookkeeping of one stage run: its runs-table row and its metrics."""

    store: Store
    name: str
    clock: Clock
    run_id: int
    started: float  # perf_counter

    @classmethod
    def start(cls, store: Store, name: str, clock: Clock) -> StageRun:
        return cls(store, name, clock, store.runs.start(name, clock()), time.perf_counter())

    def failed(self, exc: BaseException) -> None:
        record_stage(self.name, time.perf_counter() - self.started, ok=False, report=None)
        self.store.runs.finish(self.run_id, self.clock(), ok=False,
                               summary={"error": str(exc)})

    def done(self, result: object) -> None:
        record_stage(self.name, time.perf_counter() - self.started, ok=True, report=result)
        summary = asdict(result) if hasattr(result, "__dataclass_fields__") else {}
        self.store.runs.finish(self.run_id, self.clock(), ok=True, summary=summary)
