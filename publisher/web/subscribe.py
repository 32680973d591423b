"""Web: the subscribe form (double opt-in).

POST /subscribe answers the same page whatever the address's state (new, pending,
active, unsubscribed), so the form tells no one who is on the list; only the mailbox's
owner learns more, from the confirmation message. The message is queued in the same
request and sent after the answer, so the answer takes as long either way.
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime
from typing import Protocol

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.addresses import normalize_address
from publisher.config import Settings
from publisher.confirmations import queue_confirmation
from publisher.delivery import deliver, make_transport
from publisher.errors import AddressError
from publisher.store import Store
from publisher.store.subscribers import FREQUENCIES, Subscriber
from publisher.subscribers import Preferences, clean_preferences, request_subscription
from publisher.web.guard import same_site

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
    """Whom a rate limit counts: the client's address, and for IPv6 its /64, since one
    subscriber line gets a whole /64 to pick addresses from. (uvicorn puts the
    X-Forwarded-For client here only for a proxy in [web] trusted_proxies.)"""
    host = request.client.host if request.client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


async def subscribe(request: Request) -> Response:
    web = request.app.state.web
    if not same_site(request, web.settings):
        return web.pages.message(403, "Form not accepted",
                                 "This form can only be sent from "
                                 f"{web.settings.site.url}.")
    allowed, retry_after = web.subscribe_limiter.allow(client_key(request))
    if not allowed:
        return web.pages.message(429, "Too many requests",
                                 f"Please wait {retry_after} seconds and try again.",
                                 headers={"Retry-After": str(retry_after)})
    form = await request.form(max_files=0, max_fields=100)
    values = {"email": str(form.get("email", "")).strip(), "name": str(form.get("name", "")),
              "frequency": str(form.get("frequency", "")),
              "sections": [str(v) for v in form.getlist("sections")],
              "timezone": str(form.get("timezone", ""))}
    try:
        email = normalize_address(values["email"])
        prefs = clean_preferences(values["name"], values["frequency"], values["sections"],
                                  values["timezone"])
    except AddressError as exc:
        return await render_form(request, values, str(exc), 400)
    refusal = web.caps.refusal(email) if web.caps else None
    if refusal:  # before anything is stored: the answer says nothing about the address
        return web.pages.message(429, "Please try again later", refusal,
                                 headers={"Retry-After": "3600"})
    now = web.clock()
    background = await run_in_threadpool(start_confirmation, web, email, prefs, now)
    return web.pages.message(
        200, "Check your inbox",
        f"If {email} can receive mail, a message with a confirmation link is on its way. "
        f"Follow the link within {web.settings.web.confirm_hours} hours to start "
        f"receiving {web.settings.site.title}.",
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
    if web.caps:
        web.caps.record(subscriber.email)
    return BackgroundTask(web.confirmations.deliver, now)
