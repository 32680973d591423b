"""Web: "view in your browser": the page of one digest, behind the signed link the
digest carries (tokens purpose "view": the digest's id and its subscriber's link version).

Only that digest, only for a link signed for it: a forged or altered token, a link
for another digest, a revoked one or a digest no longer kept all get the same 404 page,
which tells a stranger nothing. Each client may open VIEWS_PER_MINUTE pages a minute and
present REFUSALS_PER_MINUTE bad links (then 429), since anyone can try tokens.

The page is mail HTML: its styles are inline, its images are the articles' (often on
other hosts). So it has a CSP of its own: no script at all, inline styles, images from
anywhere, and `Referrer-Policy: no-referrer`, so the token in its URL never reaches the
image hosts.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from publisher import tokens
from publisher.delivery.webview import digest_page
from publisher.web.guard import RateLimiter, client_key

VIEWS_PER_MINUTE = 30
REFUSALS_PER_MINUTE = 20
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "img-src * data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
    "Cache-Control": "private, no-store",
}


class ViewLimits:
    def __init__(self) -> None:
        self.views = RateLimiter(VIEWS_PER_MINUTE, 60.0)
        self.refusals = RateLimiter(REFUSALS_PER_MINUTE, 60.0)


async def digest_view(request: Request) -> Response:
    web = request.app.state.web
    client = client_key(request)
    wait = web.view_limits.refusals.wait(client)
    if not wait:
        _, wait = web.view_limits.views.allow(client)  # (True, 0) or (False, seconds)
    if wait:
        seconds = str(wait)
        return web.pages.message(429, "Too many requests",
                                 f"Please wait {seconds} seconds and try again.",
                                 headers={"Retry-After": seconds})
    now = web.clock()
    try:
        data = tokens.verify(web.settings, "view", request.path_params["token"], now=now)
    except tokens.TokenError:
        return not_here(web, client)
    html = await run_in_threadpool(digest_page, web.settings, web.store, data.subscriber_id,
                                   data.version, now)
    if html is None:
        return not_here(web, client)
    return HTMLResponse(html, headers=PAGE_HEADERS)


def not_here(web, client: str) -> Response:
    web.view_limits.refusals.allow(client)
    return web.pages.message(
        404, "No digest here",
        "This link does not open a digest: it is incomplete, altered, or the digest is "
        "no longer kept.",
        hint="Links in our messages are signed; copy the whole link from the message.")
