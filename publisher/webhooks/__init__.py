"""Webhooks stage: tell other systems what happened (subscriber.confirmed,
subscriber.unsubscribed, subscriber.bounced, digest.sent), by POSTing each event as JSON
to every [[webhooks]] receiver, signed with HMAC-SHA256.

Events are recorded by the store in the same transaction as the change (so none is lost
or invented); this stage fans new ones out to each receiver as deliveries and posts
them, oldest first. A receiver that fails (an error status, a refused connection, a
timeout) is left for the rest of the pass and its delivery retried later with growing
pauses, MAX_ATTEMPTS times; other receivers, and mail, never wait for it. A receiver
sees the events recorded after it first appeared in the settings of a pass.

The signature header: `Publisher-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the receiver's secret>`; `verify_signature` is the receiver's check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from publisher import __version__
from publisher.config import Settings, WebhookSettings
from publisher.store import Store

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Publisher-Signature"
MAX_ATTEMPTS = 12
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=6)
BATCH = 500
TOLERANCE_SECONDS = 300


@dataclass
class WebhooksReport:
    queued: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    def line(self) -> str:
        return (f"webhooks: {self.queued} queued, {self.sent} sent, {self.retrying} to retry, "
                f"{self.failed} given up")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes, now: datetime,
                     tolerance: int = TOLERANCE_SECONDS) -> bool:
    """What a receiver does: the signature matches the body and is recent."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    if abs(now.timestamp() - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def retry_delay(attempts: int) -> timedelta:
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_RETRY)


def deliver_webhooks(settings: Settings, store: Store, now: datetime,
                     client: httpx.Client | None = None) -> WebhooksReport:
    """One pass: queue new events for each receiver, post what is due, prune old ones."""
    report = WebhooksReport()
    hooks = {hook.url: hook for hook in settings.webhooks}
    dropped = store.events.forget_receivers(list(hooks))
    if dropped:
        log.warning("webhooks: %d deliveries to receivers no longer configured dropped",
                    dropped)
    if settings.mail.keep_days:
        store.events.prune(now - timedelta(days=settings.mail.keep_days))
    if not hooks:
        return report
    report.queued = store.events.fan_out({url: h.events for url, h in hooks.items()}, now)
    own_client = client is None
    client = client or httpx.Client(headers={"User-Agent": f"Publisher/{__version__}"},
                                    follow_redirects=False)
    try:
        failing: set[str] = set()
        for row in store.events.due(list(hooks), now, BATCH):
            if row["url"] in failing:
                continue
            if not post(client, store, hooks[row["url"]], row, now, report):
                failing.add(row["url"])
    finally:
        if own_client:
            client.close()
    return report


def post(client: httpx.Client, store: Store, hook: WebhookSettings, row: dict,
         now: datetime, report: WebhooksReport) -> bool:
    body = json.dumps({"id": row["event_id"], "type": row["kind"],
                       "created_at": row["created_at"].isoformat(), "data": row["payload"]},
                      ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Publisher-Event": row["kind"],
               "Publisher-Delivery": str(row["event_id"]),
               SIGNATURE_HEADER: sign(hook.secret, int(now.timestamp()), body)}
    code, error = None, ""
    try:
        answer = client.post(hook.url, content=body, headers=headers, timeout=hook.timeout)
        code = answer.status_code
        if 200 <= code < 300:
            store.events.delivered(row["id"], now, code)
            report.sent += 1
            return True
        error = f"answered {code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    attempts = row["attempts"] + 1
    give_up = attempts >= MAX_ATTEMPTS
    store.events.attempt_failed(row["id"], attempts, now + retry_delay(attempts), give_up,
                                code, error)
    if give_up:
        report.failed += 1
        log.error("webhook %s: gave up on event %s after %d attempts: %s", hook.url,
                  row["event_id"], attempts, error)
    else:
        report.retrying += 1
        log.warning("webhook %s: event %s not delivered (%s); retrying in %s", hook.url,
                    row["event_id"], error, retry_delay(attempts))
    return False
