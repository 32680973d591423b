"""Bounces stage: one event, whatever brought it (mail, IMAP, a webhook): find whom it is
about, store it, apply the policy.

Whom: the VERP tag first (signed, so it cannot name someone else), then the report's
own fields (a DSN's Final-Recipient, an ARF's Original-Rcpt-To) and the Message-ID of
our returned message, then the addresses flufl.bounce found. Policy, as the README
states it: a hard bounce marks the subscriber bounced at once; soft bounces mark them
bounced after [bounces] soft_limit within [bounces] soft_days; a complaint marks them
complained, and only a new double opt-in makes them active again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from publisher.addresses import mailbox
from publisher.bounces.classify import NONE, Finding, classify
from publisher.config import Settings
from publisher.delivery.verp import Verp
from publisher.errors import ConfigError
from publisher.ops.metrics import record_bounce
from publisher.store import Store
from publisher.store.bounces import Decide
from publisher.store.subscribers import SUPPRESSED

log = logging.getLogger(__name__)

WORDS = {"hard": "hard bounce", "soft": "soft bounce", "complaint": "complaint"}
TAG_SCAN_BYTES = 1 << 20


@dataclass(frozen=True)
class Event:
    """A bounce, complaint or non-bounce from any source, before we look it up."""

    kind: str  # hard, soft, complaint, none
    why: str  # how we know
    origin: str  # mail, imap, ses, postmark, mailgun, webhook
    fingerprint: str  # the same report twice has the same one
    status: str = ""
    detail: str = ""
    recipients: tuple[str, ...] = ()  # from the report's fields (or a provider's payload)
    detected: tuple[str, ...] = ()  # from flufl.bounce's detectors: asked last
    message_ids: tuple[str, ...] = ()  # our message it answers
    tag_text: str = ""  # where a VERP address may be: headers, an envelope sender
    raw: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    kind: str
    email: str | None
    action: str
    line: str
    counted: bool  # a new event was stored


def event_of_message(data: bytes, origin: str) -> Event:
    """The event of one bounce message (a DSN, an ARF report, anything)."""
    finding: Finding = classify(data)
    fingerprint = hashlib.sha256(data).hexdigest()
    from_report = not finding.why.startswith("flufl")
    return Event(kind=finding.kind, why=finding.why, origin=origin, fingerprint=fingerprint,
                 status=finding.status, detail=finding.detail,
                 recipients=finding.recipients if from_report else (),
                 detected=() if from_report else finding.recipients,
                 message_ids=finding.message_ids,
                 tag_text="\n".join(finding.headers.values()), raw=data)


def handle(settings: Settings, store: Store, event: Event, now: datetime) -> Outcome:
    """Store the event and apply the policy; a non-bounce is left alone, uncounted."""
    if event.kind == NONE:
        return Outcome(NONE, None, "left alone", f"not a bounce ({event.why}); left alone",
                       False)
    subscriber_id, email, how = resolve(settings, store, event)
    days = settings.bounces.soft_days
    recorded = store.bounces.record({
        "fingerprint": event.fingerprint, "subscriber_id": subscriber_id, "email": email,
        "kind": event.kind, "origin": event.origin, "status": event.status[:16],
        "detail": event.detail[:1000], "message_id": next(iter(event.message_ids), None),
        "received_at": now, "raw": event.raw,
    }, policy(settings), now - timedelta(days=days), now)
    if not recorded.duplicate:
        record_bounce(event.kind)
    what = WORDS[event.kind] + (f" {event.status}" if event.status else "")
    whom = f" for {email}" if email else ""
    line = f"{what}{whom} ({event.why}{', ' + how if how else ''}): {recorded.action}"
    log.info("%s", line)
    return Outcome(event.kind, email, recorded.action, line, not recorded.duplicate)


def policy(settings: Settings) -> Decide:
    limit, days = settings.bounces.soft_limit, settings.bounces.soft_days

    def decide(kind: str, status: str | None, soft: int) -> tuple[str | None, str]:
        if status is None:
            return None, "no such subscriber; recorded"
        if kind == "complaint":
            if status == "complained":
                return None, "already complained"
            return "complained", "marked complained"
        if status in SUPPRESSED:
            return None, f"already {status}"
        if kind == "hard":
            return "bounced", "marked bounced"
        if soft >= limit:
            return "bounced", f"marked bounced ({soft} soft bounces in {days} days)"
        return None, f"soft bounce {soft} of {limit} in {days} days"

    return decide


def resolve(settings: Settings, store: Store,
            event: Event) -> tuple[int | None, str | None, str]:
    """(subscriber id, address, how it was found), in the order the module states."""
    tag = read_tag(settings, event)
    candidates: list[tuple[str, str, object]] = []
    if tag is not None:
        candidates += [("by VERP tag", "id", tag.subscriber_id),
                       ("by VERP tag", "outbox", tag.outbox_id)]
    candidates += [("by address", "emails", event.recipients),
                   ("by Message-ID", "message_ids", event.message_ids),
                   ("by address", "emails", event.detected)]
    found = store.bounces.first_subscriber(candidates)
    if found is not None:
        return found
    return None, next(iter(event.recipients + event.detected), None), ""


def read_tag(settings: Settings, event: Event):
    verp = verp_of(settings)
    if verp is None:
        return None
    found = verp.read(event.tag_text)
    if found is None and event.raw:
        found = verp.read(event.raw[:TAG_SCAN_BYTES].decode("latin-1"))
    return found


def verp_of(settings: Settings) -> Verp | None:
    mail = settings.mail
    sender = mailbox(mail.bounce)[1] if mail.bounce else mailbox(mail.from_)[1]
    try:
        return Verp(settings, sender)
    except ConfigError:  # no [web] secret: no tags were ever made
        return None
