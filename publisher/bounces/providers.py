"""Bounces stage: what hosted senders report by webhook (Amazon SES through SNS,
Postmark, Mailgun, and our own generic signed JSON), as events, and the signature
checks of the ones that sign with a shared key.

Each function takes the decoded JSON and returns the events in it; a payload that is
not what the provider sends raises PayloadError (the webhook answers 400). Provider
event ids make the fingerprints, so a retried delivery counts once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import datetime

from publisher.bounces.classify import COMPLAINT, HARD, NONE, SOFT, one_line
from publisher.bounces.handle import Event

MAX_EVENTS = 100  # per call: a bounded amount of work for one request
MAX_SKEW_SECONDS = 15 * 60  # signed timestamps older or newer than this are refused


class PayloadError(ValueError):
    """The body is not what this webhook accepts."""


class SignatureError(ValueError):
    """Unsigned, badly signed or stale: the webhook answers 401 and does nothing."""


def fingerprint(*parts: object) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()


def text(value: object, limit: int = 320) -> str:
    return one_line(str(value or ""), limit)


# ------------------------------------------------------------------ Amazon SES
SES_SOFT_SUBTYPES = {"MailboxFull", "MessageTooLarge", "ContentRejected",
                     "AttachmentRejected"}


def ses_events(notification: dict) -> list[Event]:
    """An SES bounce or complaint notification (the SNS message's Message, decoded)."""
    if not isinstance(notification, dict):
        raise PayloadError("the SNS Message is not an SES notification")
    kind = notification.get("notificationType") or notification.get("eventType")
    mail = notification.get("mail") or {}
    source = text(mail.get("source"))
    ids = tuple(text(h.get("value")) for h in mail.get("headers") or ()
                if isinstance(h, dict) and str(h.get("name", "")).lower() == "message-id")
    if kind == "Bounce":
        bounce = notification.get("bounce") or {}
        kind_of = HARD if bounce.get("bounceType") == "Permanent" and \
            bounce.get("bounceSubType") not in SES_SOFT_SUBTYPES else SOFT
        why = f"SES {bounce.get('bounceType')}/{bounce.get('bounceSubType')}"
        return [Event(kind_of, why, "ses", fingerprint("ses", bounce.get("feedbackId"),
                                                         r.get("emailAddress")),
                      status=text(r.get("status"), 16), detail=text(r.get("diagnosticCode")),
                      recipients=(text(r.get("emailAddress")).lower(),), message_ids=ids,
                      tag_text=source, raw=json.dumps(notification).encode())
                for r in listed(bounce.get("bouncedRecipients"))]
    if kind == "Complaint":
        complaint = notification.get("complaint") or {}
        feedback = complaint.get("complaintFeedbackType") or "abuse"
        if feedback == "not-spam":
            return [Event(NONE, "SES not-spam feedback", "ses", "")]
        return [Event(COMPLAINT, f"SES complaint ({feedback})", "ses",
                      fingerprint("ses", complaint.get("feedbackId"), r.get("emailAddress")),
                      recipients=(text(r.get("emailAddress")).lower(),), message_ids=ids,
                      tag_text=source, raw=json.dumps(notification).encode())
                for r in listed(complaint.get("complainedRecipients"))]
    return [Event(NONE, f"SES {kind or 'unknown'} notification", "ses", "")]


def listed(value: object) -> list[dict]:
    if not isinstance(value, list):
        raise PayloadError("expected a list of recipients")
    return [item for item in value[:MAX_EVENTS] if isinstance(item, dict)]


# ------------------------------------------------------------------ Postmark
POSTMARK_HARD = {"HardBounce", "BadEmailAddress"}
POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "SpamNotification", "Blocked",
                 "DMARCPolicy"}
POSTMARK_COMPLAINT = {"SpamComplaint"}


def postmark_events(payload: dict) -> list[Event]:
    """A Postmark bounce or spam-complaint webhook (authenticated by HTTP basic auth)."""
    if not isinstance(payload, dict) or "RecordType" not in payload:
        raise PayloadError("not a Postmark webhook payload (no RecordType)")
    kind_name = str(payload.get("Type") or payload.get("RecordType"))
    kind = HARD if kind_name in POSTMARK_HARD else SOFT if kind_name in POSTMARK_SOFT \
        else COMPLAINT if kind_name in POSTMARK_COMPLAINT else NONE
    return [Event(kind, f"Postmark {kind_name}", "postmark",
                  fingerprint("postmark", payload.get("RecordType"), payload.get("ID")),
                  detail=text(payload.get("Details") or payload.get("Description")),
                  recipients=(text(payload.get("Email")).lower(),),
                  raw=json.dumps(payload).encode())]


# ------------------------------------------------------------------ Mailgun
def check_mailgun(payload: dict, key: str, now: datetime) -> None:
    """Mailgun signs timestamp + token with HMAC-SHA256 under the webhook signing key."""
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict):
        raise SignatureError("no Mailgun signature")
    timestamp, token = str(signature.get("timestamp", "")), str(signature.get("token", ""))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature.get("signature", ""))):
        raise SignatureError("the Mailgun signature does not match")
    check_fresh(timestamp, now)


def mailgun_events(payload: dict) -> list[Event]:
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise PayloadError("not a Mailgun webhook payload (no event-data)")
    event, severity = data.get("event"), data.get("severity")
    status = data.get("delivery-status") or {}
    headers = (data.get("message") or {}).get("headers") or {}
    common = {"origin": "mailgun", "fingerprint": fingerprint("mailgun", data.get("id")),
              "recipients": (text(data.get("recipient")).lower(),),
              "message_ids": tuple(f"<{text(i).strip('<>')}>" for i in
                                   [headers.get("message-id")] if i),
              "tag_text": text((data.get("envelope") or {}).get("sender")),
              "raw": json.dumps(payload).encode()}
    if event == "complained":
        return [Event(COMPLAINT, "Mailgun complaint", **common)]
    if event == "failed" and severity == "permanent":
        code = text(status.get("enhanced-code") or status.get("code"), 16)
        kind = SOFT if str(code).startswith("4") else HARD
        return [Event(kind, f"Mailgun permanent failure ({data.get('reason')})", status=code,
                      detail=text(status.get("description") or status.get("message")),
                      **common)]
    # Temporary failures: Mailgun retries them itself and reports a permanent one if
    # it gives up, so counting each try would turn one slow server into a bounce.
    return [Event(NONE, f"Mailgun {event} {severity or ''}".strip(), "mailgun", "")]


# ------------------------------------------------------------------ generic
GENERIC_KINDS = {HARD, SOFT, COMPLAINT}


def check_generic(body: bytes, timestamp: str, signature: str, secret: str,
                  now: datetime) -> None:
    """X-Publisher-Signature: sha256=HEX, HMAC-SHA256 of "<timestamp>.<body>" under
    [bounces] webhook_secret, with X-Publisher-Timestamp in Unix seconds."""
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(f"sha256={expected}", signature or ""):
        raise SignatureError("the X-Publisher-Signature does not match")
    check_fresh(timestamp, now)


def generic_events(payload: object) -> Iterator[Event]:
    items = payload if isinstance(payload, list) else [payload]
    if len(items) > MAX_EVENTS:
        raise PayloadError(f"more than {MAX_EVENTS} events in one call")
    for item in items:
        if not isinstance(item, dict) or item.get("type") not in GENERIC_KINDS or \
                not (item.get("email") or item.get("return_path")):
            raise PayloadError('each event needs "type" (hard, soft or complaint) and '
                               '"email" or "return_path"')
        yield Event(item["type"], "webhook", "webhook",
                    fingerprint("webhook", item.get("id") or json.dumps(item, sort_keys=True)),
                    status=text(item.get("status"), 16), detail=text(item.get("detail")),
                    recipients=(text(item.get("email")).lower(),) if item.get("email") else (),
                    message_ids=(text(item["message_id"]),) if item.get("message_id") else (),
                    tag_text=text(item.get("return_path")), raw=json.dumps(item).encode())


def check_fresh(timestamp: str, now: datetime) -> None:
    try:
        skew = abs(now.timestamp() - float(timestamp))
    except ValueError as exc:
        raise SignatureError("the signed timestamp is not a number") from exc
    if skew > MAX_SKEW_SECONDS:
        raise SignatureError("the signed timestamp is too old or in the future")
