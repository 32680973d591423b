"""Web: the bounce and complaint webhooks of hosted senders, for `publisher serve`.

    POST /webhooks/ses        Amazon SES via SNS: signature checked against the signing
                              certificate; subscription confirmations are followed
    POST /webhooks/postmark   Postmark: HTTP basic auth, password [bounces] postmark_secret
    POST /webhooks/mailgun    Mailgun: HMAC-SHA256 under [bounces] mailgun_signing_key
    POST /webhooks/bounces    generic: HMAC-SHA256 under [bounces] webhook_secret

A webhook whose setting is empty is off (404). An unsigned, badly signed or stale call
gets 401 and changes nothing; a client making too many such calls gets 429 for a
minute. The rules live in publisher.bounces; this module only speaks HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Iterable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from publisher.bounces import Event, handle
from publisher.bounces.providers import (
    PayloadError,
    SignatureError,
    check_generic,
    check_mailgun,
    generic_events,
    mailgun_events,
    postmark_events,
    ses_events,
)
from publisher.bounces.sns import SnsError

log = logging.getLogger(__name__)

REFUSALS_PER_MINUTE = 20  # refused calls one client may make before it gets 429


def web_of(request: Request):
    return request.app.state.web


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def ses(request: Request) -> Response:
    web = web_of(request)
    if not web.settings.bounces.sns_topics:
        return off()
    body, refused = await read(request)
    if refused:
        return refused
    try:
        message = json.loads(body)
        if not isinstance(message, dict):
            raise SnsError("not an SNS message")
        await run_in_threadpool(web.sns.verify, message, web.clock())
    except (ValueError, SnsError) as exc:
        return unauthorized(request, f"not a verified SNS message: {exc}")
    if message["Type"] == "SubscriptionConfirmation":
        try:
            await run_in_threadpool(web.sns.confirm, message)
        except SnsError as exc:
            return JSONResponse({"error": str(exc)}, status_code=502)
        return JSONResponse({"ok": True, "results": ["subscription confirmed"]})
    if message["Type"] == "UnsubscribeConfirmation":
        return JSONResponse({"ok": True, "results": ["unsubscribe confirmation noted"]})
    try:
        events = ses_events(json.loads(message.get("Message") or ""))
    except (ValueError, PayloadError) as exc:
        return bad_payload(exc)
    return await apply(request, events)


async def postmark(request: Request) -> Response:
    secret = web_of(request).settings.bounces.postmark_secret
    if not secret:
        return off()
    body, refused = await read(request)
    if refused:
        return refused
    if not basic_password_matches(request.headers.get("authorization", ""), secret):
        return unauthorized(request, "Postmark webhooks must carry the basic-auth "
                            "password set as [bounces] postmark_secret")
    try:
        events = postmark_events(json.loads(body))
    except (ValueError, PayloadError) as exc:
        return bad_payload(exc)
    return await apply(request, events)


async def mailgun(request: Request) -> Response:
    web = web_of(request)
    key = web.settings.bounces.mailgun_signing_key
    if not key:
        return off()
    body, refused = await read(request)
    if refused:
        return refused
    try:
        payload = json.loads(body)
        check_mailgun(payload, key, web.clock())
    except (ValueError, SignatureError) as exc:
        return unauthorized(request, str(exc))
    try:
        events = mailgun_events(payload)
    except PayloadError as exc:
        return bad_payload(exc)
    return await apply(request, events)


async def generic(request: Request) -> Response:
    web = web_of(request)
    secret = web.settings.bounces.webhook_secret
    if not secret:
        return off()
    body, refused = await read(request)
    if refused:
        return refused
    try:
        check_generic(body, request.headers.get("x-publisher-timestamp", ""),
                      request.headers.get("x-publisher-signature", ""), secret, web.clock())
    except SignatureError as exc:
        return unauthorized(request, str(exc))
    try:
        events = list(generic_events(json.loads(body)))
    except (ValueError, PayloadError) as exc:
        return bad_payload(exc)
    return await apply(request, events)


# ----------------------------------------------------------------------- helpers
async def read(request: Request) -> tuple[bytes, Response | None]:
    """The body, unless this client has been refused too often lately."""
    web = web_of(request)
    key = client_key(request)
    if web.webhook_refusals.full(key):
        return b"", JSONResponse({"error": "too many refused calls; wait a minute"},
                                 status_code=429, headers={"Retry-After": "60"})
    return await request.body(), None


async def apply(request: Request, events: Iterable[Event]) -> Response:
    web = web_of(request)
    results = []
    for event in events:
        outcome = await run_in_threadpool(handle, web.settings, web.store, event, web.clock())
        results.append(outcome.line)
    return JSONResponse({"ok": True, "results": results})


def unauthorized(request: Request, why: str) -> Response:
    web_of(request).webhook_refusals.allow(client_key(request))
    log.warning("webhook %s from %s refused: %s", request.url.path, client_key(request), why)
    return JSONResponse({"error": why}, status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="webhooks"'})


def bad_payload(exc: Exception) -> Response:
    return JSONResponse({"error": f"payload not understood: {exc}"}, status_code=400)


def off() -> Response:
    return JSONResponse({"error": "this webhook is off (its [bounces] setting is empty)"},
                        status_code=404)


def basic_password_matches(header: str, secret: str) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        _user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(password.encode(), secret.encode())
