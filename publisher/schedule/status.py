"""Operations: what `publisher status` reports, as text for people and JSON for scripts.

Everything comes from the store, so status describes the instance whichever process
(cron runs, the daemon, another node) did the work.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from publisher.config import Settings, SourceSettings
from publisher.ingest.source_entries import source_key
from publisher.ingest.sources import source_health
from publisher.ops.metrics import complaint_rate
from publisher.store import Store, safe_url
from publisher.store.bounces import KINDS
from publisher.store.sources import SourceState
from publisher.store.subscribers import STATUSES
from publisher.subscribers.rules import lost_sections
from publisher.words import counted

COMPLAINT_WARNING = 0.001  # half of Gmail's and Yahoo's 0.3%


@dataclass
class StageRun:
    stage: str
    started_at: datetime
    finished_at: datetime | None
    ok: bool | None  # None while it runs (or if its process died mid-run)
    node: str
    summary: dict[str, Any]

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass
class SourceStatus:
    name: str
    url: str
    health: str  # new, ok, failing, unhealthy
    failures: int
    last_error: str | None
    last_ok_at: datetime | None
    next_fetch_at: datetime | None
    articles: int


@dataclass
class Status:
    instance: str
    database: str
    now: datetime
    articles: int
    newest_article_at: datetime | None
    subscribers: dict[str, int]
    stages: list[StageRun]
    outbox: dict[str, int]
    oldest_waiting_at: datetime | None
    sources: list[SourceStatus] = field(default_factory=list)
    bounces_by_day: dict[str, dict[str, int]] = field(default_factory=dict)  # last 7 days
    sent_7d: int = 0
    complaint_rate_7d: float = 0.0
    warnings: list[str] = field(default_factory=list)
    webhooks: dict[str, int] = field(default_factory=dict)  # deliveries by state
    # Active subscribers whose chosen sections all disappeared: they get nothing.
    without_sections: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(s.health != "unhealthy" for s in self.sources) and \
            all(run.ok is not False for run in self.stages)


def collect_status(settings: Settings, store: Store, now: datetime) -> Status:
    status = read_status(settings, store, now)
    add_bounces(status, store, now)
    return status


def add_bounces(status: Status, store: Store, now: datetime) -> None:
    """Bounces and complaints per day for the last 7 days, and the complaint rate,
    with a warning above COMPLAINT_WARNING (half the 0.3% Gmail and Yahoo allow)."""
    since = now - timedelta(days=7)
    by_day = store.bounces.counts_by_day(since)
    for offset in range(6, -1, -1):
        day = (now - timedelta(days=offset)).date().isoformat()
        status.bounces_by_day[day] = {kind: by_day.get((day, kind), 0) for kind in KINDS}
    complaints = sum(n for (_, kind), n in by_day.items() if kind == "complaint")
    status.sent_7d = store.bounces.sent_since(since)
    status.complaint_rate_7d = complaint_rate(complaints, status.sent_7d)
    if status.complaint_rate_7d > COMPLAINT_WARNING:
        status.warnings.append(
            f"complaint rate {status.complaint_rate_7d:.2%} over the last 7 days "
            f"({complaints} complaints, {status.sent_7d} messages sent) is above "
            f"{COMPLAINT_WARNING:.1%}; Gmail and Yahoo block senders above 0.3%")


def read_status(settings: Settings, store: Store, now: datetime) -> Status:
    articles, newest = store.status.articles()
    by_status = store.subscribers.count_by_status()
    states = store.sources.states()
    counts = store.sources.article_counts(source_key(""))
    return Status(
        instance=str(settings.instance.resolve()),
        database=safe_url(settings.database_url),
        now=now,
        articles=articles,
        newest_article_at=newest,
        subscribers={s: by_status.get(s, 0) for s in STATUSES} | by_status,
        stages=[stage_run(row) for row in store.runs.last_of_each_stage()],
        outbox=store.status.outbox_by_state(),
        oldest_waiting_at=store.status.oldest_waiting(),
        webhooks=store.events.delivery_counts() if settings.webhooks else {},
        sources=[source_status(source, states.get(source.name),
                               counts.get(source_key(source.name), 0))
                 for source in settings.sources],
        without_sections=[s.email for s in lost_sections(settings, store)],
    )


def source_status(source: SourceSettings, state: SourceState | None,
                  articles: int) -> SourceStatus:
    return SourceStatus(
        name=source.name, url=source.url, health=source_health(source, state),
        failures=state.failures if state else 0,
        last_error=state.last_error if state else None,
        last_ok_at=state.last_ok_at if state else None,
        next_fetch_at=state.next_fetch_at if state else None,
        articles=articles)


def stage_run(row: dict) -> StageRun:
    try:
        summary = json.loads(row["summary"]) if row["summary"] else {}
    except ValueError:
        summary = {"text": row["summary"]}
    return StageRun(stage=row["stage"], started_at=row["started_at"],
                    finished_at=row["finished_at"], ok=row["ok"], node=row["node"],
                    summary=summary)


def status_json(status: Status) -> str:
    data = asdict(status)
    data["healthy"] = status.healthy
    for run, stage in zip(data["stages"], status.stages, strict=True):
        run["seconds"] = stage.seconds
    return json.dumps(data, default=lambda v: v.isoformat(), indent=2, ensure_ascii=False)


def status_lines(status: Status) -> list[str]:
    when = Clock(status.now)
    lines = [
        f"instance: {status.instance}",
        f"database: {status.database}",
        f"articles: {status.articles}" + (f" (newest stored {when(status.newest_article_at)})"
                                           if status.newest_article_at else ""),
        "subscribers: " + counts(status.subscribers),
        *([f"  {len(status.without_sections)} active subscriber(s) get nothing: none of "
           f"their sections exists any more ({', '.join(status.without_sections[:5])}"
           f"{', ...' if len(status.without_sections) > 5 else ''}); change them with "
           "`publisher subscribers set EMAIL --sections ...`"]
          if status.without_sections else []),
        "outbox: " + counts(status.outbox) + (
            f" (oldest waiting since {when(status.oldest_waiting_at)})"
            if status.oldest_waiting_at else ""),
        "last runs:" if status.stages else "last runs: none yet",
    ]
    width = max((len(run.stage) for run in status.stages), default=0)
    for run in status.stages:
        state = "running" if run.ok is None else "ok" if run.ok else "FAILED"
        took = f" in {run.seconds:.1f}s" if run.seconds is not None else ""
        detail = run.summary.get("error") or ", ".join(
            f"{k} {v}" for k, v in run.summary.items() if isinstance(v, int | float))
        lines.append(f"  {run.stage:<{width}}  {state:<7} {when(run.started_at)}{took}"
                     + (f"  {detail}" if detail else ""))
    lines += bounce_lines(status)
    if status.webhooks:
        lines.append("webhooks: " + counts(status.webhooks))
    if status.sources:
        lines.append("sources:")
        width = max(len(source.name) for source in status.sources)
        for source in status.sources:
            lines.append(f"  {source.name:<{width}}  {source.health:<9} "
                         + counted(source.articles, "article") + source_detail(source, when))
    return lines


def bounce_lines(status: Status) -> list[str]:
    days = [(day, counts) for day, counts in status.bounces_by_day.items()
            if any(counts.values())]
    lines = [f"bounces, last 7 days: {'none' if not days else ''}".rstrip()]
    for day, counts in days:
        lines.append(f"  {day}  " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    lines.append(f"complaint rate, last 7 days: {status.complaint_rate_7d:.3%} of "
                 f"{status.sent_7d} sent")
    return lines + [f"WARNING: {warning}" for warning in status.warnings]


def source_detail(source: SourceStatus, when: Clock) -> str:
    parts = []
    if source.failures:
        parts.append(f"{counted(source.failures, 'failure')} in a row: {source.last_error}")
    if source.last_ok_at:
        parts.append(f"last ok {when(source.last_ok_at)}")
    if source.next_fetch_at:
        parts.append(f"next {when(source.next_fetch_at)}")
    return "; " + "; ".join(parts) if parts else ""


def counts(by_key: dict[str, int]) -> str:
    return ", ".join(f"{n} {key}" for key, n in by_key.items())


class Clock:
    """UTC times for status lines, with how long ago (or how soon) each is."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self, moment: datetime) -> str:
        seconds = (self.now - moment).total_seconds()
        return f"{moment:%Y-%m-%d %H:%M:%S} UTC ({span(abs(seconds))} " + \
            ("ago)" if seconds >= 0 else "from now)")


def span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
