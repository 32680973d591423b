"""The pipeline: one pass of every stage, in order. Cron and the daemon both call this."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from publisher.config import Settings
from publisher.delivery import DeliveryReport, deliver_blocking
from publisher.digests import DigestReport, queue_digests
from publisher.ingest import IngestReport, ingest
from publisher.store import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class RunReport:
    ingest: IngestReport
    digests: DigestReport
    delivery: DeliveryReport

    def lines(self) -> list[str]:
        return [self.ingest.line(), self.digests.line(), self.delivery.line()]


def run_once(settings: Settings, store: Store, transport: Any, now: datetime) -> RunReport:
    """Ingest new articles; later stages read what this one stored."""
    return RunReport(
        ingest=stage(store, "ingest", now, lambda: ingest(settings, store, now)),
        digests=stage(store, "digests", now, lambda: queue_digests(settings, store, now)),
        delivery=stage(store, "delivery", now,
                       lambda: deliver_blocking(settings, store, transport, now)),
    )


def stage(store: Store, name: str, now: datetime, work: Callable[[], T]) -> T:
    """Run one stage and record it in the runs table, failed or not."""
    run_id = store.runs.start(name, now)
    try:
        result = work()
    except Exception as exc:
        store.runs.finish(run_id, datetime.now(UTC), ok=False, summary={"error": str(exc)})
        raise
    summary = asdict(result) if hasattr(result, "__dataclass_fields__") else {}
    store.runs.finish(run_id, datetime.now(UTC), ok=True, summary=summary)
    return result
