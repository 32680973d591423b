"""Operations: what `publisher status` reports, as text for people and JSON for scripts.

Everything comes from the store, so status describes the instance whichever process
(cron runs, the daemon, another node) did the work.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from publisher.config import Settings, SourceSettings
from publisher.ingest.source_entries import source_key
from publisher.ingest.sources import source_health
from publisher.store import Store, safe_url
from publisher.store.sources import SourceState
from publisher.store.subscribers import STATUSES


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
    webhooks: dict[str, int] = field(default_factory=dict)  # deliveries by state

    @property
    def healthy(self) -> bool:
        return all(s.health != "unhealthy" for s in self.sources) and \
            all(run.ok is not False for run in self.stages)


def collect_status(settings: Settings, store: Store, now: datetime) -> Status:
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
    if status.webhooks:
        lines.append("webhooks: " + counts(status.webhooks))
    if status.sources:
        lines.append("sources:")
        width = max(len(source.name) for source in status.sources)
        for source in status.sources:
            lines.append(f"  {source.name:<{width}}  {source.health:<9} "
                         f"{source.articles} articles" + source_detail(source, when))
    return lines


def source_detail(source: SourceStatus, when: Clock) -> str:
    parts = []
    if source.failures:
        parts.append(f"{source.failures} failures in a row: {source.last_error}")
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
