"""Delivery: the words of the welcome mail that depend on the subscriber's choices."""

from __future__ import annotations

from publisher.config import Settings
from publisher.store.subscribers import Subscriber


def schedule_sentence(settings: Settings, subscriber: Subscriber) -> str:
    """When their digests come, in their terms: their frequency, delivery time, zone."""
    if subscriber.frequency == "instant":
        return "A digest comes as soon as something new is published."
    at = subscriber.deliver_at or settings.digest.daily_at
    zone = subscriber.timezone or settings.digest_timezone
    if subscriber.frequency == "weekly":
        day = settings.digest.weekly_on.capitalize()
        return f"A digest comes every {day} at {at} ({zone}) when something is new."
    return f"A digest comes every day at {at} ({zone}) when something is new."
