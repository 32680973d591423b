"""Console: one subscriber: their settings, their history (joining, confirmation mail,
each digest with its articles and what became of it, bounces and complaints, leaving,
operators' actions), and the actions on them: edit, resend confirmation, unsubscribe,
delete with their data, export their data as JSON. Each action calls the same
subscribers-stage function the CLI calls, and writes an audit entry naming the
subscriber by id only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.errors import PublisherError
from publisher.store.bounces import BounceEvent
from publisher.store.subscribers import FREQUENCIES, STATUSES, Subscriber
from publisher.subscribers.rules import Preferences, clean_preferences, update_subscriber
from publisher.web.admin.auth import Operator, console_page, form_of
from publisher.web.admin.common import audit, back, int_param, now_of, render, web_of
from publisher.web.links import zone_groups
from publisher.words import counted


@dataclass(frozen=True)
class Event:
    at: datetime
    kind: str  # joined, confirm, confirmed, digest, bounce, left, admin
    title: str
    outcome: str = ""  # a message's state
    detail: str = ""
    articles: tuple = ()  # (title, url) of a digest's articles


def subscriber_or_404(request: Request) -> Subscriber | None:
    subscriber_id = int_param(request.path_params.get("subscriber_id"))
    if subscriber_id is None:
        return None
    return web_of(request).store.subscribers.by_id(subscriber_id)


def not_found(request: Request) -> Response:
    return web_of(request).pages.message(404, "No such subscriber",
                                         "They may have been deleted.")


def history(web, subscriber: Subscriber) -> list[Event]:
    """Everything that happened to them, newest first."""
    store = web.store
    digests = store.browse.digests_of(subscriber.id)
    seqs = {seq for row in digests for seq in row["article_seqs"] or ()}
    articles = store.ledger.articles_by_seq(seqs)
    site = web.settings.site.url
    events = [Event(subscriber.created_at, "joined", "Joined the list",
                    detail=f"as {subscriber.frequency}")]
    if subscriber.confirmed_at:
        events.append(Event(subscriber.confirmed_at, "confirmed", "Confirmed"))
    for row in store.browse.other_messages(subscriber.id):
        events.append(Event(row["created_at"], "confirm", f"{row['kind'].capitalize()} message",
                            outcome=row["state"], detail=message_detail(row)))
    for row in digests:
        held = tuple((articles[seq].title, f"{site}articles/{articles[seq].slug}.html")
                     for seq in row["article_seqs"] or () if seq in articles)
        gone = len(row["article_seqs"] or ()) - len(held)
        more = row["more"] + gone
        events.append(Event(row["created_at"], "digest", f"Digest {row['period']}",
                            outcome=row["state"] or "pruned", detail=message_detail(row)
                            + (f" {more} more articles linked." if more else ""),
                            articles=held))
    if subscriber.status in LEFT:  # before the report that did it, at the same instant
        events.append(Event(subscriber.updated_at, "left", left_title(subscriber)))
    for report in store.bounces.events(subscriber.id, subscriber.email):
        events.append(bounce_event(report))
    for entry in store.accounts.audit_page(None, 100, f"subscriber {subscriber.id}"):
        events.append(Event(entry.at, "admin", f"{entry.actor}: {entry.action}",
                            detail=entry.detail))
    return sorted(events, key=lambda e: e.at, reverse=True)


LEFT = ("unsubscribed", "bounced", "complained")
BOUNCE_TITLES = {"hard": "Hard bounce", "soft": "Soft bounce",
                 "complaint": "Complaint (marked as spam)"}


def bounce_event(report: BounceEvent) -> Event:
    """A bounce report or complaint the bounces stage recorded about them."""
    status = f"{report.status} " if report.status else ""
    return Event(report.received_at, "bounce", BOUNCE_TITLES.get(report.kind, report.kind),
                 outcome=report.kind, detail=f"{status}{report.detail[:300]} (from "
                 f"{report.origin}; {report.action})".strip())


def left_title(subscriber: Subscriber) -> str:
    if subscriber.status == "unsubscribed":
        return "Unsubscribed"
    if subscriber.status == "complained":
        return "Marked complained: no more mail"
    if subscriber.bounce_count:
        return f"Marked bounced after {subscriber.bounce_count} failed deliveries"
    return "Marked bounced: no more mail"


def message_detail(row: dict) -> str:
    if row.get("state") == "sent" and row.get("sent_at"):
        return f"Sent {row['sent_at']:%Y-%m-%d %H:%M} UTC."
    if row.get("last_error"):
        code = f" {row['last_code']}" if row.get("last_code") else ""
        return f"Attempt {row['attempts']}{code}: {row['last_error']}"
    return ""


@console_page()
async def page(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    subscriber = await run_in_threadpool(subscriber_or_404, request)
    if subscriber is None:
        return not_found(request)
    events = await run_in_threadpool(history, web, subscriber)
    sections = await run_in_threadpool(web.store.subscribers.known_sections)
    return render(request, operator, "subscriber.html", section="subscribers",
                  title=subscriber.email, subscriber=subscriber, events=events,
                  statuses=STATUSES, frequencies=FREQUENCIES,
                  sections=sorted({*sections, *subscriber.sections}), zones=zone_groups(),
                  default_zone=web.settings.digest_timezone)


def person_action(handler):
    """A POST on one subscriber: finds them (404 if gone), runs the action."""

    @console_page()
    async def endpoint(request: Request, operator: Operator) -> Response:
        subscriber = await run_in_threadpool(subscriber_or_404, request)
        if subscriber is None:
            return not_found(request)
        try:
            return await handler(request, operator, subscriber)
        except PublisherError as exc:
            return back(request, f"subscribers/{subscriber.id}", f"Not done: {exc}")

    endpoint.__name__ = handler.__name__
    return endpoint


@person_action
async def edit(request: Request, operator: Operator, subscriber: Subscriber) -> Response:
    web = web_of(request)
    form = form_of(request)
    prefs = clean_preferences(str(form.get("name", "")), str(form.get("frequency", "")),
                              [str(v) for v in form.getlist("sections")],
                              str(form.get("timezone", "")), default=Preferences.of(subscriber))
    status = str(form.get("status", ""))
    status = status if status in STATUSES else None
    new_links = form.get("new_links") == "yes"
    changed = await run_in_threadpool(update_subscriber, web.settings, web.store, subscriber,
                                      prefs, status, now_of(request), new_links)
    fields = [name for name in ("name", "frequency", "sections", "timezone", "status")
              if getattr(changed, name) != getattr(subscriber, name)]
    await audit(request, operator, "subscriber.edit", f"subscriber {subscriber.id}",
                "changed " + (", ".join(fields) or "nothing")
                + ("; new links" if new_links else ""))
    return back(request, f"subscribers/{subscriber.id}", "Saved.")


@person_action
async def resend(request: Request, operator: Operator, subscriber: Subscriber) -> Response:
    web = web_of(request)
    now = now_of(request)
    # The same queue-then-deliver the subscribe form uses (and its refusal if not pending).
    await run_in_threadpool(web.confirmations.queue, subscriber, now)
    await audit(request, operator, "subscriber.resend_confirmation",
                f"subscriber {subscriber.id}")
    await web.confirmations.deliver(now)
    return back(request, f"subscribers/{subscriber.id}", "Confirmation message sent.")


@person_action
async def unsubscribe(request: Request, operator: Operator, subscriber: Subscriber) -> Response:
    web = web_of(request)
    await run_in_threadpool(web.store.subscribers.unsubscribe, subscriber.id, now_of(request))
    await audit(request, operator, "subscriber.unsubscribe", f"subscriber {subscriber.id}")
    return back(request, f"subscribers/{subscriber.id}", "Unsubscribed.")


@person_action
async def delete(request: Request, operator: Operator, subscriber: Subscriber) -> Response:
    web = web_of(request)
    if form_of(request).get("confirm_email", "").strip().lower() != subscriber.email:
        return back(request, f"subscribers/{subscriber.id}",
                    "Not deleted: type their address to confirm.")
    gone = await run_in_threadpool(web.store.subscribers.forget, subscriber.id)
    what = f"{counted(gone.digests, 'digest')}, {counted(gone.messages, 'message')}"
    await audit(request, operator, "subscriber.delete", f"subscriber {subscriber.id}",
                f"{what} deleted")
    return back(request, "subscribers", f"Deleted subscriber {subscriber.id} and their "
                f"data ({what}).")


def personal_data(web, subscriber: Subscriber) -> dict:
    """What we hold about them, for a data request."""
    store = web.store
    digests = store.browse.digests_of(subscriber.id, limit=10_000)
    seqs = {seq for row in digests for seq in row["article_seqs"] or ()}
    articles = store.ledger.articles_by_seq(seqs)
    return {
        "email": subscriber.email, "name": subscriber.name, "status": subscriber.status,
        "frequency": subscriber.frequency, "sections": list(subscriber.sections),
        "timezone": subscriber.timezone, "created": subscriber.created_at,
        "confirmed": subscriber.confirmed_at, "last_digest": subscriber.last_digest_at,
        "bounces": subscriber.bounce_count,
        "digests": [{"period": row["period"], "queued": row["created_at"],
                     "state": row["state"], "sent": row["sent_at"],
                     "articles": [articles[seq].title for seq in row["article_seqs"] or ()
                                  if seq in articles]} for row in digests],
        "messages": [{"kind": row["kind"], "queued": row["created_at"], "state": row["state"],
                      "sent": row["sent_at"]}
                     for row in store.browse.other_messages(subscriber.id, limit=10_000)],
    }


@console_page()
async def export_json(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    subscriber = await run_in_threadpool(subscriber_or_404, request)
    if subscriber is None:
        return not_found(request)
    data = await run_in_threadpool(personal_data, web, subscriber)
    await audit(request, operator, "subscriber.export", f"subscriber {subscriber.id}")
    body = json.dumps(data, default=lambda v: v.isoformat(), indent=2, ensure_ascii=False)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": f'attachment; filename="subscriber-{subscriber.id}.json"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
