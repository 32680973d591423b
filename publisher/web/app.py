"""Web: the application `publisher serve` runs (Starlette): the publish folder, the
subscribe form, confirmation, preferences and one-click unsubscribe links, each
subscriber's private feed, and the bounce webhooks of hosted senders.

`create_app(settings, store)` builds it; everything a handler needs travels in one
`Web` object on app.state, so tests build the same app with their own store, clock or
confirmation sender.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from publisher import tokens
from publisher.bounces.sns import Fetch, SnsVerifier, https_get
from publisher.clock import Clock, system_clock
from publisher.config import Settings
from publisher.delivery import Transport, make_transport
from publisher.ops.metrics import metrics_app
from publisher.store import Store
from publisher.web import admin, api, bounce_hooks, links, subscribe
from publisher.web.api.problems import problem_response
from publisher.web.guard import FormTokenError, RateLimiter
from publisher.web.http import Representation, conditional_response
from publisher.web.pages import Pages
from publisher.web.static import NotFound, PublishFolder, Redirect

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # our forms are a few hundred bytes
CONFIRMATIONS_PER_HOUR = 3  # to one address, however many clients ask


@dataclass
class Web:
    settings: Settings
    store: Store
    pages: Pages
    folder: PublishFolder
    clock: Clock
    subscribe_limiter: RateLimiter
    address_limiter: RateLimiter
    confirmations: subscribe.ConfirmationSender
    sns: SnsVerifier
    webhook_refusals: RateLimiter
    stylesheet: Representation | None = None
    api: Any = None  # publisher.web.api.ApiState
    started: datetime = field(init=False)
    transport_factory: Callable[[Settings], Transport] = make_transport  # console test sends

    def __post_init__(self) -> None:
        self.started = self.clock()  # the style sheet's Last-Modified


def create_app(settings: Settings, store: Store, *, clock: Clock = system_clock,
               confirmations: subscribe.ConfirmationSender | None = None,
               sns_fetch: Fetch = https_get) -> Starlette:
    """`sns_fetch` gets SNS signing certificates and confirmation URLs (tests pass their
    own); the rule that those URLs are https on an SNS host applies whatever it is."""
    # A missing or short [web] secret stops us here, not at the first link.
    tokens.sign(settings, "confirm", 0, now=clock())
    web = Web(settings=settings, store=store, pages=Pages(settings),
              folder=PublishFolder(settings.path(settings.feeds.folder)), clock=clock,
              subscribe_limiter=RateLimiter(settings.web.subscribe_per_minute, 60.0),
              address_limiter=RateLimiter(CONFIRMATIONS_PER_HOUR, 3600.0),
              confirmations=confirmations or subscribe.MailConfirmations(settings, store),
              sns=SnsVerifier(settings.bounces.sns_topics, sns_fetch),
              webhook_refusals=RateLimiter(bounce_hooks.REFUSALS_PER_MINUTE, 60.0))
    web.api = api.ApiState(settings, store)
    routes = [
        Route("/subscribe", subscribe.form_page, methods=["GET"]),
        Route("/subscribe", subscribe.with_cors(settings), methods=["POST", "OPTIONS"]),
        Mount(api.PREFIX, routes=api.routes()),
        Route("/confirm/{token}", links.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", links.confirm, methods=["POST"]),
        Route("/preferences/{token}", links.preferences_page, methods=["GET"]),
        Route("/preferences/{token}", links.save_preferences, methods=["POST"]),
        Route("/unsubscribe/{token}", links.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", links.unsubscribe, methods=["POST"]),
        Route("/s/{token}/feed.atom", links.private_feed, methods=["GET"]),
        Route("/webhooks/ses", bounce_hooks.ses, methods=["POST"]),
        Route("/webhooks/postmark", bounce_hooks.postmark, methods=["POST"]),
        Route("/webhooks/mailgun", bounce_hooks.mailgun, methods=["POST"]),
        Route("/webhooks/bounces", bounce_hooks.generic, methods=["POST"]),
        Route("/_publisher/style.css", stylesheet, methods=["GET"]),
        *admin.routes(),
        *([Route("/metrics", metrics_app(settings, store), methods=["GET"])]
          if settings.web.metrics else []),
        Route("/{path:path}", static_file, methods=["GET"]),
    ]
    app = Starlette(routes=routes, max_body_size=MAX_BODY_BYTES, exception_handlers={
        tokens.TokenError: bad_link,
        FormTokenError: bad_form,
        HTTPException: http_error,
        Exception: server_error,
    })
    app.state.web = web
    return app


def web_of(request: Request) -> Web:
    return request.app.state.web


async def static_file(request: Request) -> Response:
    web = web_of(request)
    try:
        rep = web.folder.representation(request.path_params["path"])
    except Redirect as redirect:
        return RedirectResponse(redirect.location, status_code=301)
    except NotFound:
        return web.pages.message(404, "Not found", "There is no page at this address.")
    return conditional_response(request, rep)


async def stylesheet(request: Request) -> Response:
    web = web_of(request)
    if web.stylesheet is None:
        web.stylesheet = Representation(body=web.pages.stylesheet().encode(),
                                        media_type="text/css; charset=utf-8",
                                        last_modified=web.started)
    return conditional_response(request, web.stylesheet)


async def bad_link(request: Request, exc: Exception) -> Response:
    web = web_of(request)
    return web.pages.message(
        400, "This link does not work", sentence(str(exc)),
        hint="Links in our messages are signed. If you copied one by hand, check that "
             "nothing is missing; if it has expired, subscribe again to get a new one.")


async def bad_form(request: Request, exc: Exception) -> Response:
    return web_of(request).pages.message(400, "This form could not be sent",
                                         sentence(str(exc)))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith(api.PREFIX + "/"):
        detail = {404: "there is no such API route; see /api/v1/openapi.json",
                  405: f"{request.method} is not allowed here"}.get(exc.status_code,
                                                                    str(exc.detail))
        return problem_response(exc.status_code, {
            "type": "about:blank", "title": str(exc.detail), "status": exc.status_code,
            "detail": detail[:1].upper() + detail[1:] + "."}, exc.headers)
    titles = {404: "Not found", 405: "Method not allowed", 413: "Request too large"}
    title = titles.get(exc.status_code, "Request not accepted")
    return web_of(request).pages.message(exc.status_code, title, str(exc.detail),
                                         headers=exc.headers or {})


async def server_error(request: Request, exc: Exception) -> Response:
    # The path, never the query, and with any link token cut out: the log must not be
    # able to unsubscribe people or read their private feeds.
    log.error("error serving %s %s", request.method, tokens.redact(request.url.path),
              exc_info=exc)
    if request.url.path.startswith(api.PREFIX + "/"):
        return problem_response(500, {"type": "about:blank", "title": "Internal Server Error",
                                      "status": 500, "detail": "The error was logged."})
    try:
        return web_of(request).pages.message(
            500, "Something went wrong", "The error was logged; please try again later.")
    except Exception:  # the page itself failed: say so plainly
        return PlainTextResponse("Internal server error", status_code=500)


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
