"""Subscribers: the double opt-in mail, queued in the outbox like every other message.

The web stage calls, after a subscribe form is posted:

    subscriber = store.subscribers.add(email, now, name=..., status="pending",
                                       cursor=starting_cursor(settings, store, sections))
    queue_confirmation(settings, store, subscriber, now)
    await deliver(settings, store, make_transport(settings), now, kind="confirm")

The message is rendered at send time from templates/confirm.txt and confirm.html; its
link is tokens.link(settings, "confirm", subscriber.id, subscriber.token_version), which
tokens.verify accepts for [web] confirm_hours (pass max_age_seconds).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from publisher.addresses import message_domain
from publisher.config import Settings
from publisher.errors import AddressError
from publisher.store import Store
from publisher.store.subscribers import Subscriber


def queue_confirmation(settings: Settings, store: Store, subscriber: Subscriber,
                       now: datetime) -> int:
    """Queue the confirmation mail for a pending subscriber; returns its outbox id.
    Nothing is sent here: `deliver` (or the next `publisher run`) sends it. A subscriber
    who is no longer pending when it is sent gets nothing (the row fails, saying why)."""
    if subscriber.status != "pending":
        raise AddressError(f"{subscriber.email} is {subscriber.status}, not pending: "
                           "there is nothing to confirm")
    message_id = (f"<confirm-{subscriber.id}.{secrets.token_hex(8)}"
                  f"@{message_domain(settings)}>")
    return store.ledger.insert_message("confirm", subscriber.id, subscriber.email,
                                       message_id, None, now)
