"""Delivery: a digest as it would go out now, without queuing it, for the preview
(`publisher digest preview`, the console) and the test send ("send a test to me").

Nothing here writes to the store: no digest row, no outbox row, no cursor moves. The
message is composed by the same Composer the delivery stage uses, so what the preview
shows is byte for byte what a send would carry (but for the Date and Message-ID). A test
is that message with "[TEST] " before its subject, addressed (To and RCPT TO) to the
operator, sent through the configured transport.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as email_policy

from publisher.addresses import normalize_address
from publisher.config import Settings
from publisher.delivery.compose import Composer, Draft
from publisher.delivery.dkim import load_signer
from publisher.delivery.message import address_line, header_line
from publisher.delivery.templates import require_templates
from publisher.delivery.transport import SENT, Envelope, Result, Transport
from publisher.digests.note import note_for_pass
from publisher.digests.planner import next_digest
from publisher.store import Store
from publisher.store.ledger import Claimed
from publisher.store.queueing import Candidate, DigestPlan
from publisher.store.subscribers import Subscriber

# The note of a preview is not stored (a preview writes nothing): it gets this id.
PREVIEW_NOTE = -1
# Who a preview from sample data is addressed to (no such subscriber exists).
SAMPLE_NAME, SAMPLE_EMAIL = "Sample Reader", "reader@example.org"


class Shown:
    """A composed message read back: what a preview (digest or edition) shows."""

    envelope: Envelope

    @property
    def message(self) -> EmailMessage:
        return BytesParser(policy=email_policy).parsebytes(self.envelope.data)

    def headers(self) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in self.message.items()]

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else ""


@dataclass(frozen=True)
class Preview(Shown):
    """One digest as it would go out."""

    subscriber: Subscriber | None  # None: sample data
    sample: bool  # True: the newest articles, not what is new to them
    plan: DigestPlan
    draft: Draft
    envelope: Envelope
    composer: Composer



def candidate_of(subscriber: Subscriber) -> Candidate:
    return Candidate(subscriber.id, subscriber.email, subscriber.frequency,
                     subscriber.sections, subscriber.timezone, subscriber.cursor,
                     subscriber.last_digest_at, subscriber.created_at)


def sample_plan(settings: Settings, store: Store, subscriber: Subscriber | None
                ) -> DigestPlan | None:
    """The newest articles (of the subscriber's sections), as if all were new."""
    sections = tuple(sorted(subscriber.sections)) if subscriber else ()
    max_seq = store.articles.max_seq()
    seqs, total = store.ledger.article_lookup(
        lambda lookup: lookup.matching(0, max_seq, sections, settings.digest.max_articles))
    if not seqs:
        return None
    return DigestPlan(subscriber.id if subscriber else 0,
                      subscriber.email if subscriber else SAMPLE_EMAIL,
                      f"sample:{seqs[0]}", tuple(seqs), total - len(seqs))


def preview_digest(settings: Settings, store: Store, subscriber: Subscriber | None,
                   now: datetime, sample: bool = False) -> Preview | None:
    """The subscriber's next digest (None if nothing is new to them); with `sample`, or
    with no subscriber, one made of the newest articles (None if there are none)."""
    if subscriber is not None and not sample:
        plan = next_digest(settings, store, candidate_of(subscriber))
    else:
        plan = sample_plan(settings, store, subscriber)
    if plan is None:
        return None
    require_templates(settings)
    composer = Composer(settings, store, load_signer(settings))
    note, _ = note_for_pass(settings, now)  # the note a digest queued now would carry
    if note is not None:
        composer.notes.put(PREVIEW_NOTE, {"html": note.html, "text": note.text})
    row = Claimed(
        id=0, kind="digest", message_id=f"<digest-preview.{plan.subscriber_id}"
        f"@{composer.domain}>", recipient=plan.email, attempts=0, payload={},
        digest_id=None, subscriber_id=plan.subscriber_id,
        name=subscriber.name if subscriber else SAMPLE_NAME, status="active",
        token_version=subscriber.token_version if subscriber else 0,
        article_seqs=plan.article_seqs, more=plan.more,
        note_id=PREVIEW_NOTE if note is not None else None)
    draft = composer.compose(row, now)
    envelope = composer.envelope(draft, composer.signature(draft, now))
    return Preview(subscriber, sample or subscriber is None, plan, draft, envelope, composer)


def test_envelope(preview: Preview, to: str, now: datetime) -> Envelope:
    """The previewed message as a test: "[TEST] " before its subject, To: and the
    envelope recipient `to`, a Message-ID of its own; the body is left exactly as is."""
    plan = preview.plan
    subject = preview.composer.prepare(plan.article_seqs, plan.more,
                                       bool(preview.draft.row.name),
                                       preview.draft.row.note_id).subject
    return as_test(preview.composer, preview.draft, subject, to, now)


def as_test(composer: Composer, composed: Draft, subject: str, to: str,
            now: datetime) -> Envelope:
    """A composed message (digest or edition) readdressed as a test to `to`."""
    to = normalize_address(to)
    replaced = {b"subject:": header_line("Subject", f"[TEST] {subject}"),
                b"to:": address_line("To", "", to),
                b"message-id:": f"Message-ID: <test-{secrets.token_hex(8)}"
                                f"@{composer.domain}>\r\n".encode("ascii")}
    headers = [replaced.get(line.split(b":", 1)[0].lower() + b":", line)
               for line in composed.headers]
    draft = Draft(composed.row, headers, composed.static, composed.pieces, composed.body)
    signed = composer.envelope(draft, composer.signature(draft, now))
    return Envelope(0, signed.message_id, signed.sender, (to,), signed.data,
                    signed.dot_safe)


async def send_test(transport: Transport, envelope: Envelope) -> Result:
    """Send one test message; the transport's Result (never raises for a refusal)."""
    results: list[Result] = []
    try:
        await transport.send([envelope], lambda _envelope, result: results.append(result))
    finally:
        await transport.close()
    if not results:
        return Result("temporary", None, transport.problem or "not sent")
    return results[0]


def sent(result: Result) -> bool:
    return result.status == SENT
