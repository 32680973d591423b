"""Delivery: an edition as it would go out, from its file, without queuing it
(`publisher edition preview` and `publisher edition test`).

Nothing here writes to the store: no edition row, no outbox row. The message is composed
by the Composer the delivery stage uses, from the content the editions stage would store,
so the preview is what a send carries (but for Date and Message-ID). A test is that
message with "[TEST] " before its subject, addressed to one person only, sent through
the configured transport; it leaves no ledger row, so it can be sent again and again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from publisher.config import Settings
from publisher.delivery.compose import Composer, Draft
from publisher.delivery.dkim import load_signer
from publisher.delivery.preview import SAMPLE_EMAIL, SAMPLE_NAME, Shown, as_test
from publisher.delivery.templates import require_templates
from publisher.delivery.transport import Envelope
from publisher.store import Store
from publisher.store.editions import StoredEdition
from publisher.store.ledger import Claimed
from publisher.store.subscribers import Subscriber

UNSAVED = 0  # the edition id a preview composes under: no stored edition has it


@dataclass(frozen=True)
class EditionPreview(Shown):
    edition: StoredEdition
    draft: Draft
    envelope: Envelope
    composer: Composer

    def test(self, to: str, now: datetime) -> Envelope:
        """This message as a test to `to`: "[TEST] " subject, no ledger row."""
        return as_test(self.composer, self.draft, self.edition.subject, to, now)


def preview_edition(settings: Settings, store: Store, edition: StoredEdition,
                    subscriber: Subscriber | None, now: datetime,
                    address: str = SAMPLE_EMAIL) -> EditionPreview:
    """The edition as `subscriber` would get it (their name and links); without one, as
    a sample reader at `address` would."""
    require_templates(settings)
    composer = Composer(settings, store, load_signer(settings))
    composer.editions.put(UNSAVED, edition)
    row = Claimed(
        id=0, kind="edition", message_id=f"<edition-preview.{edition.slug}@{composer.domain}>",
        recipient=subscriber.email if subscriber else address, attempts=0, payload={},
        digest_id=None, subscriber_id=subscriber.id if subscriber else 0,
        name=subscriber.name if subscriber else SAMPLE_NAME, status="active",
        token_version=subscriber.token_version if subscriber else 0, article_seqs=(),
        more=0, edition_id=UNSAVED)
    draft = composer.compose(row, now)
    envelope = composer.envelope(draft, composer.signature(draft, now))
    return EditionPreview(edition, draft, envelope, composer)
