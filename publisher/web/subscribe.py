"""Web: the subscribe form (double opt-in), posted from our pages or, with CORS, from
the site's other origins ([web] allowed_origins), as a form or as JSON.

POST /subscribe answers the same page whatever the address's state (new, pending,
active, unsubscribed), so the form tells no one who is on the list; only the mailbox's
owner learns more, from the confirmation message. The message is queued in the same
request and sent after the answer, so the answer takes as long either way. A JSON post
(or one that accepts only JSON) gets the same answers as JSON: {"message": ...} or a
problem (RFC 9457); the per-client and per-address limits are the same whatever the
origin.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Protocol

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import request_response

from publisher.addresses import normalize_address
from publisher.config import Settings
from publisher.delivery import deliver, make_transport
from publisher.errors import AddressError
from publisher.store import Store
from publisher.store.subscribers import FREQUENCIES, Subscriber
from publisher.subscribers.confirmations import queue_confirmation
from publisher.subscribers.rules import Preferences, clean_preferences, request_subscription
from publisher.web.api.problems import problem_response
from publisher.web.guard import allowed_origins, same_site

log = logging.getLogger(__name__)


class ConfirmationSender(Protocol):
    """Queues a confirmation message (in the request) and delivers it (after it)."""

    def queue(self, subscriber: Subscriber, now: datetime) -> None: ...

    async def deliver(self, now: datetime) -> None: ...


class MailConfirmations:
    """Confirmations through the outbox and [mail] transport, like every message: queued
    in the request, sent right after the answer; a failed send stays in the outbox for
    the next `publisher send` or `publisher run`."""

    def __init__(self, settings: Settings, store: Store):
        self.settings, self.store = settings, store

    def queue(self, subscriber: Subscriber, now: datetime) -> None:
        queue_confirmation(self.settings, self.store, subscriber, now)

    async def deliver(self, now: datetime) -> None:
        try:
            report = await deliver(self.settings, self.store, make_transport(self.settings),
                                   now, kind="confirm")
        except Exception:
            log.exception("sending confirmations failed; they stay in the outbox")
            return
        log.info("confirmations: %s", report.line())


async def form_page(request: Request) -> Response:
    return await render_form(request, {}, None, 200)


async def render_form(request: Request, values: dict, error: str | None,
                      status: int) -> Response:
    web = request.app.state.web
    sections = await run_in_threadpool(web.store.subscribers.known_sections)
    chosen = values.get("sections", ())
    return web.pages.render("subscribe.html", status=status, error=error,
                            values={"email": values.get("email", ""),
                                    "name": values.get("name", ""),
                                    "frequency": values.get("frequency") or "daily",
                                    "sections": chosen},
                            frequencies=FREQUENCIES, sections=sorted({*sections, *chosen}))


def client_key(request: Request) -> str:
    # uvicorn puts the X-Forwarded-For client here when the proxy is trusted.
    return request.client.host if request.client else "unknown"


def with_cors(settings: Settings):
    """POST /subscribe behind Starlette's CORS middleware: a preflight from an allowed
    origin is answered, any other origin's is refused (400), and answers to allowed
    origins carry Access-Control-Allow-Origin so `fetch` can read them."""
    return CORSMiddleware(request_response(subscribe), allow_origins=allowed_origins(settings),
                          allow_methods=["POST"], allow_headers=["Content-Type"], max_age=600)


def wants_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    accept = request.headers.get("accept", "")
    return kind == "application/json" or ("application/json" in accept
                                          and "text/html" not in accept)


def refusal(request: Request, status: int, title: str, text: str,
            headers: dict | None = None) -> Response:
    if wants_json(request):
        return problem_response(status, {"type": "about:blank", "title": title,
                                         "status": status, "detail": text}, headers)
    return request.app.state.web.pages.message(status, title, text, headers=headers)


async def read_values(request: Request) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() \
            == "application/json":
        try:
            data = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            raise AddressError("the body is not a JSON object with an email")
        sections = data.get("sections") or []
        return {"email": str(data.get("email") or "").strip(),
                "name": str(data.get("name") or ""),
                "frequency": str(data.get("frequency") or ""),
                "sections": [str(v) for v in sections] if isinstance(sections, list)
                else [str(sections)],
                "timezone": str(data.get("timezone") or "")}
    form = await request.form(max_files=0, max_fields=100)
    return {"email": str(form.get("email", "")).strip(), "name": str(form.get("name", "")),
            "frequency": str(form.get("frequency", "")),
            "sections": [str(v) for v in form.getlist("sections")],
            "timezone": str(form.get("timezone", ""))}


async def subscribe(request: Request) -> Response:
    web = request.app.state.web
    if request.method == "OPTIONS":  # not a CORS preflight: say what is allowed
        return Response(status_code=204, headers={"Allow": "GET, POST, OPTIONS"})
    if not same_site(request, web.settings):
        return refusal(request, 403, "Form not accepted",
                       f"This form can only be sent from {web.settings.site.url}.")
    allowed, retry_after = web.subscribe_limiter.allow(client_key(request))
    if not allowed:
        return refusal(request, 429, "Too many requests",
                       f"Please wait {retry_after} seconds and try again.",
                       headers={"Retry-After": str(retry_after)})
    values: dict = {}
    try:
        values = await read_values(request)
        email = normalize_address(values["email"])
        prefs = clean_preferences(values["name"], values["frequency"], values["sections"],
                                  values["timezone"])
    except AddressError as exc:
        if wants_json(request):
            return refusal(request, 400, "Not subscribed", str(exc))
        return await render_form(request, values, str(exc), 400)
    now = web.clock()
    background = await run_in_threadpool(start_confirmation, web, email, prefs, now)
    text = (f"If {email} can receive mail, a message with a confirmation link is on its way. "
            f"Follow the link within {web.settings.web.confirm_hours} hours to start "
            f"receiving {web.settings.site.title}.")
    if wants_json(request):
        return JSONResponse({"message": text}, background=background)
    return web.pages.message(
        200, "Check your inbox", text,
        hint="Nothing arrives? Look in your spam folder, or send the form again.",
        background=background)


def start_confirmation(web, email: str, prefs: Preferences,
                       now: datetime) -> BackgroundTask | None:
    """Record the request and queue the message; the delivery runs after the answer."""
    subscriber = request_subscription(web.settings, web.store, email, prefs, now)
    if subscriber is None:
        return None
    if not web.address_limiter.allow(subscriber.email)[0]:
        log.info("confirmation to subscriber %s not sent: sent recently", subscriber.id)
        return None
    web.confirmations.queue(subscriber, now)
    return BackgroundTask(web.confirmations.deliver, now)
