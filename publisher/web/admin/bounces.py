"""Console: the bounce events stored by the bounces stage (what `publisher bounces list`
shows, from the same store call), newest first, by kind, in keyset pages; and one
event's raw report as plain text."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.store.bounces import KINDS
from publisher.store.browse import PAGE, decode_cursor, encode_cursor
from publisher.web.admin.auth import Operator, console_page
from publisher.web.admin.common import int_param, render, web_of


def cursor_of(text: str) -> tuple[datetime, int] | None:
    """(received_at, id) from a next-page link; anything else is the first page."""
    values = decode_cursor(text[:200]) if text else None
    if not values or len(values) != 2 or not isinstance(values[1], int):
        return None
    try:
        at = datetime.fromisoformat(str(values[0]))
    except ValueError:
        return None
    return (at, values[1]) if at.tzinfo else None


@console_page()
async def page(request: Request, operator: Operator) -> Response:
    kind = request.query_params.get("kind", "")
    kind = kind if kind in KINDS else ""
    before = cursor_of(request.query_params.get("after", ""))
    rows = await run_in_threadpool(web_of(request).store.bounces.events, None, None,
                                   PAGE + 1, kind or None, before)
    after = ""
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        last = rows[-1]
        after = encode_cursor([last.received_at.isoformat(), last.id])
    query = {"kind": kind} if kind else {}
    return render(request, operator, "bounces.html", section="bounces", title="Bounces",
                  rows=rows, kinds=KINDS, kind=kind, paged=before is not None,
                  first_url=f"?{urlencode(query)}",
                  next_url=f"?{urlencode({**query, 'after': after})}" if after else "")


@console_page()
async def raw(request: Request, operator: Operator) -> Response:
    """The report as received, as text/plain: a stranger wrote it, so it is never
    served as anything a browser would render or run."""
    event_id = int_param(request.path_params.get("event_id"))
    data = await run_in_threadpool(web_of(request).store.bounces.raw, event_id) \
        if event_id else None
    if data is None:
        return web_of(request).pages.message(
            404, "No such report", "The event is gone (pruned after [bounces] "
            "keep_days) or no report was kept with it.")
    return Response(data.decode("utf-8", "replace"), media_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                             "Content-Security-Policy": "default-src 'none'; sandbox",
                             "Content-Disposition": "inline"})
