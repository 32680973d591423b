"""Console: the outbox: messages by state, the latest errors, retrying failed ones (the
same ledger calls as `publisher outbox` and `publisher outbox retry`)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.web.admin.auth import Operator, console_page
from publisher.web.admin.common import audit, back, now_of, render, web_of


@console_page()
async def page(request: Request, operator: Operator) -> Response:
    ledger = web_of(request).store.ledger
    counts = await run_in_threadpool(ledger.counts)
    errors = await run_in_threadpool(ledger.latest_errors, 50)
    return render(request, operator, "outbox.html", section="outbox", title="Outbox",
                  counts=counts, errors=errors)


@console_page()
async def retry(request: Request, operator: Operator) -> Response:
    count = await run_in_threadpool(web_of(request).store.ledger.retry_failed,
                                    now_of(request))
    await audit(request, operator, "outbox.retry", "", f"{count} failed messages queued again")
    return back(request, "outbox", f"{count} failed message{'' if count == 1 else 's'} "
                "queued again; the next run sends them.")
