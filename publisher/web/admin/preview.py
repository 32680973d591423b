"""Console: the digest preview and the test send. The preview page shows the message's
headers, its text part, and its HTML part in a sandboxed frame; the frame's document is
served from its own URL under a CSP `sandbox` with no scripts, so mail HTML can do
nothing in the console's origin. "Send a test to me" mails the same message, marked
[TEST], to the logged-in operator through the configured transport; nothing is stored
but the audit entry."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from publisher.addresses import normalize_address
from publisher.delivery.preview import Preview, preview_digest, send_test, sent, test_envelope
from publisher.errors import PublisherError
from publisher.web.admin.auth import Operator, admin_path, console_page
from publisher.web.admin.common import audit, back, int_param, now_of, render, web_of

log = logging.getLogger(__name__)

FRAME_CSP = ("sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
             "frame-ancestors 'self'")


def build(request: Request, subscriber_id: int | None, sample: bool) -> tuple:
    """(subscriber or None, preview or None); raises LookupError for an unknown id."""
    web = web_of(request)
    subscriber = None
    if subscriber_id is not None:
        subscriber = web.store.subscribers.by_id(subscriber_id)
        if subscriber is None:
            raise LookupError(subscriber_id)
    return subscriber, preview_digest(web.settings, web.store, subscriber, now_of(request),
                                      sample)


def choice(request: Request) -> tuple[int | None, bool]:
    subscriber_id = int_param(request.path_params.get("subscriber_id"))
    return subscriber_id, subscriber_id is None or request.query_params.get("sample") == "1"


@console_page()
async def page(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    subscriber_id, sample = choice(request)
    wanted = request.query_params.get("email", "").strip()
    if subscriber_id is None and wanted:
        found = await run_in_threadpool(find_by_address, web, wanted)
        if found is not None:
            return back(request, f"subscribers/{found}/preview")
        return back(request, "preview", f"{wanted[:100]} is not on the list.")
    try:
        subscriber, preview = await run_in_threadpool(build, request, subscriber_id, sample)
    except LookupError:
        return web.pages.message(404, "No such subscriber", "They may have been deleted.")
    except PublisherError as exc:
        return render(request, operator, "preview.html", status=400, section="preview",
                      title="Preview", subscriber=None, preview=None, problem=str(exc),
                      frame="", sample=sample, request_path="")
    here = admin_path(web.settings, f"subscribers/{subscriber_id}/preview"
                      if subscriber_id else "preview")
    frame = here + "/frame" + ("?sample=1" if sample and subscriber_id else "")
    return render(request, operator, "preview.html", section="preview", title="Preview",
                  subscriber=subscriber, preview=preview, problem="", frame=frame,
                  request_path=here,
                  sample=sample, mail_headers=preview.headers() if preview else [],
                  text=preview.part("plain") if preview else "",
                  articles=len(preview.plan.article_seqs) if preview else 0)


def find_by_address(web, text: str) -> int | None:
    try:
        found = web.store.subscribers.by_email(normalize_address(text))
    except PublisherError:
        return None
    return found.id if found else None


@console_page()
async def frame(request: Request, operator: Operator) -> Response:
    """The HTML part alone, for the preview's iframe."""
    subscriber_id, sample = choice(request)
    try:
        _subscriber, preview = await run_in_threadpool(build, request, subscriber_id, sample)
    except (LookupError, PublisherError):
        preview = None
    html = preview.part("html") if preview else "<p>Nothing to preview.</p>"
    return HTMLResponse(html, headers={
        "Content-Security-Policy": FRAME_CSP, "X-Frame-Options": "SAMEORIGIN",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer"})


@console_page()
async def test_send(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    subscriber_id, sample = choice(request)
    sample = sample or request.state.form.get("sample") == "1"
    here = f"subscribers/{subscriber_id}/preview" if subscriber_id else "preview"
    here += "?sample=1" if sample and subscriber_id else ""
    try:
        _subscriber, preview = await run_in_threadpool(build, request, subscriber_id, sample)
    except LookupError:
        return web.pages.message(404, "No such subscriber", "They may have been deleted.")
    if preview is None:
        return back(request, here, "Nothing to send: no digest to preview.")
    to = operator.account.email
    result = await deliver_test(web, preview, to, now_of(request))
    target = f"subscriber {subscriber_id}" if subscriber_id else "sample"
    await audit(request, operator, "digest.test_send", target,
                f"{'sent' if sent(result) else 'not sent'}: {result.code or ''} "
                f"{result.detail}".strip())
    if sent(result):
        return back(request, here, f"Test sent to {to}.")
    return back(request, here, f"Test not sent to {to}: {result.detail or result.status}")


async def deliver_test(web, preview: Preview, to: str, now):
    envelope = test_envelope(preview, to, now)
    transport = web.transport_factory(web.settings)
    return await send_test(transport, envelope)

