"""Web API: /api/v1/subscribers: list (filters, keyset pages), get, create (with or
without double opt-in), update, unsubscribe, delete with their data, and their history.

Each function checks what the client sent and calls the stage function the command line
calls for the same thing (publisher.subscribers.rules), so the rules live in one place.
"""

from __future__ import annotations

from typing import Any

from starlette.background import BackgroundTask

from publisher.addresses import normalize_address
from publisher.store.api_queries import SubscriberFilter
from publisher.store.subscribers import FREQUENCIES, STATUSES, Subscriber
from publisher.subscribers.rules import (
    Preferences,
    add_subscriber,
    clean_preferences,
    update_subscriber,
)
from publisher.web.api.endpoint import Call, object_body
from publisher.web.api.problems import Problem
from publisher.web.api.views import subscriber_json

CREATE_FIELDS = {"email", "name", "frequency", "sections", "timezone", "double_opt_in"}
UPDATE_FIELDS = {"name", "frequency", "sections", "timezone", "status", "new_links"}


def list_subscribers(call: Call) -> tuple[int, Any]:
    email = call.query.get("email")
    where = SubscriberFilter(
        status=call.choice("status", STATUSES), frequency=call.choice("frequency", FREQUENCIES),
        section=call.query.get("section") or None,
        email=normalize_address(email) if email else None,
        contains=call.query.get("q") or None,
        created_after=call.moment("created_after"), created_before=call.moment("created_before"),
        updated_after=call.moment("updated_after"))
    limit = call.limit()
    page = call.web.store.api.subscribers_page(where, call.integer("after", 0), limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return 200, {"items": [subscriber_json(s) for s in page],
                 "next_after": page[-1].id if more else None}


def subscriber_of(call: Call) -> Subscriber:
    subscriber_id = call.path_id()
    subscriber = call.web.store.subscribers.by_id(subscriber_id)
    if subscriber is None:
        raise Problem(404, f"there is no subscriber {subscriber_id}")
    return subscriber


def get_subscriber(call: Call) -> tuple[int, Any]:
    return 200, subscriber_json(subscriber_of(call))


def create_subscriber(call: Call) -> tuple[int, Any]:
    body = object_body(call)
    unknown = set(body) - CREATE_FIELDS
    if unknown:
        raise Problem(422, f"unknown field(s) {', '.join(sorted(unknown))}; a subscriber "
                      f"is made from {', '.join(sorted(CREATE_FIELDS))}")
    email = text_field(body, "email", required=True)
    double_opt_in = body.get("double_opt_in", True)
    if not isinstance(double_opt_in, bool):
        raise Problem(422, "double_opt_in must be true or false")
    prefs = clean_preferences(text_field(body, "name") or "",
                              text_field(body, "frequency") or "",
                              sections_field(body) or "", text_field(body, "timezone") or "")
    web = call.web
    known = web.store.subscribers.by_email(normalize_address(email))
    if known is not None:
        raise Problem(409, f"{known.email} is already on the list (subscriber {known.id}, "
                      f"{known.status}); PATCH /api/v1/subscribers/{known.id} changes it",
                      title="Already subscribed", subscriber_id=known.id)
    subscriber = add_subscriber(web.settings, web.store, email, prefs, call.now,
                                confirmed=not double_opt_in)
    if double_opt_in:  # the confirmation goes out after the answer, as from the form
        call.background = BackgroundTask(web.confirmations.deliver, call.now)
    call.response_headers["Location"] = f"/api/v1/subscribers/{subscriber.id}"
    return 201, subscriber_json(subscriber)


def update_subscriber_call(call: Call) -> tuple[int, Any]:
    body = object_body(call)
    unknown = set(body) - UPDATE_FIELDS
    if unknown:
        raise Problem(422, f"unknown field(s) {', '.join(sorted(unknown))}; these can "
                      f"change: {', '.join(sorted(UPDATE_FIELDS))}")
    subscriber = subscriber_of(call)
    status = text_field(body, "status")
    if status is not None and status not in STATUSES:
        raise Problem(422, f"status {status!r} is not one of {', '.join(STATUSES)}")
    new_links = body.get("new_links", False)
    if not isinstance(new_links, bool):
        raise Problem(422, "new_links must be true or false")
    prefs = clean_preferences(text_field(body, "name"), text_field(body, "frequency"),
                              sections_field(body), text_field(body, "timezone"),
                              default=Preferences.of(subscriber))
    web = call.web
    changed = update_subscriber(web.settings, web.store, subscriber, prefs, status, call.now,
                                new_links)
    return 200, subscriber_json(changed)


def unsubscribe(call: Call) -> tuple[int, Any]:
    subscriber = subscriber_of(call)
    return 200, subscriber_json(call.web.store.subscribers.unsubscribe(subscriber.id,
                                                                       call.now))


def delete_subscriber(call: Call) -> tuple[int, Any]:
    subscriber = subscriber_of(call)
    gone = call.web.store.subscribers.forget(subscriber.id)
    return 200, {"deleted": {"subscriber": subscriber.id, "email": subscriber.email,
                             "digests": gone.digests, "messages": gone.messages}}


def history(call: Call) -> tuple[int, Any]:
    subscriber = subscriber_of(call)
    store, limit = call.web.store, call.limit(100)
    return 200, {"subscriber": subscriber_json(subscriber),
                 "messages": store.api.history(subscriber.id, limit),
                 "events": store.events.for_subscriber(subscriber.id, limit)}


def text_field(body: dict, name: str, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise Problem(422, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise Problem(422, f"{name} must be a string")
    return value


def sections_field(body: dict) -> list[str] | str | None:
    value = body.get("sections")
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise Problem(422, "sections must be a list of section names")
