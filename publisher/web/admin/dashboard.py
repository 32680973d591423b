"""Console: the dashboard: subscribers by status and their growth over 90 days, digests
and messages per day with their outcomes, the outbox's depth, the sources' health and
the last run of each stage (what `publisher status` reports, from the same function)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.schedule.status import Status, collect_status
from publisher.web.admin import charts
from publisher.web.admin.auth import Operator, console_page
from publisher.web.admin.common import now_of, render, web_of

DAYS = 90
OUTCOMES = ("sent", "deferred", "failed", "queued", "sending")


@dataclass
class Dashboard:
    status: Status
    days: list[date]
    total: int
    new_today: int
    growth: Markup
    signups: Markup
    digests: Markup
    messages: Markup
    outcome_totals: dict[str, int]
    depth: int


def days_until(today: date, count: int) -> list[date]:
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def gather(web, now: datetime) -> Dashboard:
    store = web.store
    days = days_until(now.astimezone(UTC).date(), DAYS)
    since = datetime.combine(days[0], time(0), tzinfo=UTC)
    before, per_day = store.dashboard.signups(since)
    new = [per_day.get(day, 0) for day in days]
    running, total = [], before
    for count in new:
        total += count
        running.append(total)
    digests = store.dashboard.digests_per_day(since)
    messages = store.dashboard.messages_per_day(since)
    series = [(state, [messages.get(day, {}).get(state, 0) for day in days])
              for state in OUTCOMES]
    status = collect_status(web.settings, store, now)
    return Dashboard(
        status=status, days=days, total=total, new_today=new[-1],
        growth=charts.line(days, running, "Subscribers over the last 90 days"),
        signups=charts.bars(days, [("sign-ups", new)], "Sign-ups per day"),
        digests=charts.bars(days, [("digests", [digests.get(d, 0) for d in days])],
                            "Digests queued per day"),
        messages=charts.bars(days, series, "Messages per day by outcome"),
        outcome_totals={state: sum(values) for state, values in series},
        depth=sum(status.outbox.get(s, 0) for s in ("queued", "deferred", "sending")))


@console_page()
async def page(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    board = await run_in_threadpool(gather, web, now_of(request))
    return render(request, operator, "dashboard.html", section="", title="Dashboard",
                  board=board, outcomes=OUTCOMES, now=now_of(request),
                  keep_days=web.settings.mail.keep_days)
