"""Console: editions: every edition file and every started edition, with its state and
delivery counts (the same stage call as `publisher edition list`). Editions are written
as files (editions/NAME.md); the console shows where each stands and sends nothing."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.editions import edition_status
from publisher.web.admin.auth import Operator, console_page
from publisher.web.admin.common import now_of, render, web_of


@console_page()
async def page(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    rows = await run_in_threadpool(edition_status, web.settings, web.store, now_of(request))
    return render(request, operator, "editions.html", section="editions", title="Editions",
                  editions=rows, zone=web.settings.site.timezone,
                  tz=ZoneInfo(web.settings.site.timezone),
                  site_url=web.settings.site.base_url)
