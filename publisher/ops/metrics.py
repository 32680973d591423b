"""Operations: Prometheus metrics — what this process did, and what the store holds now.

Two kinds of figures, as Prometheus expects them:
- events this process saw (counters and the stage-duration histogram): articles
  ingested, feed files written, digests queued, messages sent / deferred / failed by
  reply class, source errors; stages report them through `record_stage`, delivery
  through `record_message`.
- the state of the instance (gauges read from the store at scrape time): outbox depth
  by state, articles, subscribers by status, each source's failures in a row. These are
  right whichever process did the work (cron runs, the daemon, another node).

`publisher daemon` serves them on [daemon] metrics_port; `metrics_app(store)` is the ASGI
app `publisher serve` mounts at /metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    make_asgi_app,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from publisher.clock import Clock, system_clock
from publisher.errors import ConfigError
from publisher.store.bounces import KINDS
from publisher.store.status import WAITING

if TYPE_CHECKING:
    from publisher.config import Settings
    from publisher.store import Store

log = logging.getLogger(__name__)

# Process-wide event metrics, registered into every exposition registry below.
EVENTS = CollectorRegistry(auto_describe=True)

ARTICLES_INGESTED = Counter(
    "publisher_articles_ingested", "Articles stored new, by origin (inbox files or feeds).",
    ["origin"], registry=EVENTS)
ARTICLES_UPDATED = Counter(
    "publisher_articles_updated", "Stored articles edited in place, by origin.",
    ["origin"], registry=EVENTS)
FEEDS_WRITTEN = Counter(
    "publisher_feeds_written", "Feed and archive files written because they changed.",
    registry=EVENTS)
DIGESTS_QUEUED = Counter(
    "publisher_digests_queued", "Digests queued into the outbox.", registry=EVENTS)
MESSAGES = Counter(
    "publisher_messages", "Messages by outcome (sent, deferred, failed) and SMTP reply class "
    "(2xx, 4xx, 5xx; none when no reply came: network errors, maildir).",
    ["outcome", "reply_class"], registry=EVENTS)
SOURCE_ERRORS = Counter(
    "publisher_source_errors", "Failed fetches of upstream sources.", ["source"],
    registry=EVENTS)
BOUNCES = Counter(
    "publisher_bounces", "Bounce events stored, by kind (hard, soft, complaint).",
    ["kind"], registry=EVENTS)
STAGE_RUNS = Counter(
    "publisher_stage_runs", "Stage passes, by stage and outcome (ok, error).",
    ["stage", "outcome"], registry=EVENTS)
STAGE_SECONDS = Histogram(
    "publisher_stage_duration_seconds", "Wall-clock seconds each stage pass took.",
    ["stage"], registry=EVENTS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))

# Which field of a stage's report feeds which counter; a stage not named here still gets
# its duration and outcome recorded.
REPORT_COUNTERS: dict[tuple[str, str], Any] = {
    ("ingest", "new"): ARTICLES_INGESTED.labels(origin="inbox"),
    ("ingest", "updated"): ARTICLES_UPDATED.labels(origin="inbox"),
    ("sources", "new"): ARTICLES_INGESTED.labels(origin="feed"),
    ("sources", "updated"): ARTICLES_UPDATED.labels(origin="feed"),
    ("feeds", "written"): FEEDS_WRITTEN,
    ("digests", "queued"): DIGESTS_QUEUED,
}


def record_stage(name: str, seconds: float, ok: bool, report: object | None) -> None:
    """Called by the pipeline after every stage pass."""
    STAGE_SECONDS.labels(stage=name).observe(seconds)
    STAGE_RUNS.labels(stage=name, outcome="ok" if ok else "error").inc()
    for (stage, field), counter in REPORT_COUNTERS.items():
        value = getattr(report, field, None) if stage == name else None
        if isinstance(value, int) and value > 0:
            counter.inc(value)


def reply_class(code: int | None) -> str:
    """2xx, 4xx or 5xx from an SMTP reply code; none when no reply came (a network
    error, a message that could not be composed, or the maildir transport)."""
    if code is None or not 200 <= code < 600:
        return "none"
    return f"{code // 100}xx"


def record_bounce(kind: str) -> None:
    """Called by the bounces stage for each new event it stores."""
    BOUNCES.labels(kind=kind).inc()


def record_message(outcome: str, code: int | None) -> None:
    """Called by delivery for each attempt: outcome sent, deferred or failed."""
    MESSAGES.labels(outcome=outcome, reply_class=reply_class(code)).inc()


class StoreCollector:
    """Gauges read from the store at each scrape, so they hold across processes."""

    def __init__(self, settings: Settings, store: Store, clock: Clock = system_clock):
        self.settings = settings
        self.store = store
        self.clock = clock

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("publisher_store_up", "1 when the store answered this scrape.")
        try:
            families = list(self.read())
        except Exception:  # a scrape must answer even when the database does not
            log.exception("metrics: cannot read the store")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def read(self) -> Iterator[Metric]:
        by_state = self.store.status.outbox_by_state()
        outbox = GaugeMetricFamily("publisher_outbox_messages",
                                   "Messages in the outbox, by state.", labels=["state"])
        for state, count in by_state.items():
            outbox.add_metric([state], count)
        yield outbox
        depth = GaugeMetricFamily("publisher_outbox_depth",
                                  "Messages waiting to be sent (queued, sending, deferred).")
        depth.add_metric([], sum(by_state.get(state, 0) for state in WAITING))
        yield depth
        articles = GaugeMetricFamily("publisher_articles", "Articles in the store.")
        articles.add_metric([], self.store.status.articles()[0])
        yield articles
        subscribers = GaugeMetricFamily("publisher_subscribers", "Subscribers, by status.",
                                        labels=["status"])
        for status, count in self.store.subscribers.count_by_status().items():
            subscribers.add_metric([status], count)
        yield subscribers
        failures = GaugeMetricFamily("publisher_source_failures",
                                     "Failed fetches in a row, by source (0: healthy).",
                                     labels=["source"])
        states = self.store.sources.states()
        for source in self.settings.sources:
            state = states.get(source.name)
            failures.add_metric([source.name], state.failures if state else 0)
        yield failures
        yield from self.bounces()

    def bounces(self) -> Iterator[Metric]:
        # The scrape's own time: metrics describe the instance as it is when asked.
        now = self.clock()
        day = GaugeMetricFamily("publisher_bounces_24h",
                                "Bounce events stored in the last 24 hours, by kind.",
                                labels=["kind"])
        last_day = self.store.bounces.counts_since(now - timedelta(days=1))
        for kind in KINDS:
            day.add_metric([kind], last_day.get(kind, 0))
        yield day
        rate = GaugeMetricFamily("publisher_complaint_rate_7d",
                                 "Complaints over messages sent, the last 7 days.")
        complaints = self.store.bounces.counts_since(now - timedelta(days=7)).get("complaint", 0)
        rate.add_metric([], complaint_rate(complaints, self.store.bounces.sent_since(
            now - timedelta(days=7))))
        yield rate


def complaint_rate(complaints: int, sent: int) -> float:
    """Complaints as a share of messages sent (complaints with nothing sent: all of it)."""
    if not sent:
        return 1.0 if complaints else 0.0
    return complaints / sent


def registry_for(settings: Settings, store: Store) -> CollectorRegistry:
    """A registry with this process's events, the store's state and process figures."""
    registry = CollectorRegistry()
    registry.register(EVENTS)
    registry.register(StoreCollector(settings, store))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class MetricsApp:
    """ASGI app serving the metrics; a class (not a function) so Starlette's Route
    serves it as an app at exactly /metrics: `Route("/metrics", metrics_app(...))`."""

    def __init__(self, settings: Settings, store: Store):
        self.app = make_asgi_app(registry_for(settings, store))

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


def metrics_app(settings: Settings, store: Store) -> MetricsApp:
    return MetricsApp(settings, store)


def serve_metrics(settings: Settings, store: Store):
    """Serve /metrics on [daemon] metrics_host:metrics_port in a thread; the server is
    returned so the caller can shut it down."""
    port, host = settings.daemon.metrics_port, settings.daemon.metrics_host
    try:
        server, _thread = start_http_server(port, addr=host,
                                            registry=registry_for(settings, store))
    except OSError as exc:
        raise ConfigError("daemon.metrics_port", port,
                          f"a port free on {host} ({exc.strerror or exc})") from exc
    return server
