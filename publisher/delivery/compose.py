"""Delivery: claimed outbox rows become ready messages, rendered from stored data at send time.

Digests that hold the same articles share one render: the templates run once with
placeholders for the subscriber's name, address and links, CSS is inlined once, and the
result is kept as a prepared Body. The first message of each prepared Body is also
rendered in full and compared; a template that does more with a subscriber's values
than print them (a filter, a test other than "is there a name") fails that check and
its messages are rendered in full, one by one: slower, never wrong.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from publisher.addresses import check_header_text, domain_of, mailbox, message_domain
from publisher.config import Settings
from publisher.delivery.dkim import DkimSigner
from publisher.delivery.links import LinkSigner
from publisher.delivery.message import (
    Body,
    Slots,
    address_line,
    assemble,
    content_type_line,
    decoded_parts,
    display_phrase,
    header_line,
    make_body,
    raw_line,
)
from publisher.delivery.templates import (
    article_context,
    confirm_context,
    confirm_subject,
    digest_context,
    digest_subject,
    inline_css,
    render,
)
from publisher.delivery.transport import Envelope
from publisher.delivery.verp import Verp
from publisher.errors import PublisherError
from publisher.store import Store
from publisher.store.ledger import Claimed

log = logging.getLogger(__name__)

SLOT_NAMES = ("name", "email", "unsubscribe_url", "preferences_url")


class Skip(PublisherError):
    """A row that must not be sent (say, the subscriber left after it was queued)."""


class LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value):
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


@dataclass
class Draft:
    """A composed message before its optional DKIM signature and final assembly."""

    row: Claimed
    headers: list[bytes]
    static: int  # how many leading headers are the same in every message
    pieces: list[bytes]
    body: Body


class Prepared:
    """One digest content, rendered once: its subject and its Body with gaps."""

    def __init__(self, articles: list[dict], more: int, subject: str, body: Body):
        self.articles = articles
        self.more = more
        self.subject = subject
        self.subject_line = header_line("Subject", subject)
        self.body = body
        self.fast: bool | None = None  # None until the first message has checked it


class Composer:
    def __init__(self, settings: Settings, store: Store, dkim: DkimSigner | None = None):
        self.settings = settings
        self.store = store
        self.dkim = dkim
        self.links = LinkSigner(settings)
        self.slots = Slots(SLOT_NAMES)
        mail = settings.mail
        display, self.from_address = mailbox(mail.from_)
        self.sender = mailbox(mail.bounce)[1] if mail.bounce else self.from_address
        # The VERP return path names each message, so its bounce names its subscriber.
        self.verp = Verp(settings, self.sender) if settings.bounces.verp else None
        self.domain = message_domain(settings)
        title = check_header_text("site title", settings.site.title)
        header_line("Subject", digest_subject(settings, 12))  # refuse a bad subject now
        self.common = [address_line("From", display, self.from_address)]
        if mail.reply_to:
            self.common.append(address_line("Reply-To", *mailbox(mail.reply_to)))
        self.common.append(b"MIME-Version: 1.0\r\n")
        self.bulk = [*self.common,
                     f"List-Id: {display_phrase(title)} <digest.{self.domain}>\r\n".encode(),
                     b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                     b"Precedence: bulk\r\n"]
        if mail.feedback_id:
            self.bulk.append(header_line("Feedback-ID", mail.feedback_id))
        # Where List-Unsubscribe's mailto goes; see the README on handling that mailbox.
        self.unsubscribe_mailbox = f"unsubscribe@{domain_of(self.from_address)}"
        self.prepared: LRU = LRU(64)
        self.articles: LRU = LRU(2000)
        self._date: tuple[int, bytes] = (0, b"")
        self.lock = threading.Lock()

    # ---------------------------------------------------------------- per kind
    def message(self, row: Claimed, now: datetime) -> Envelope:
        """The finished message of one row: composed, signed when DKIM is on."""
        draft = self.compose(row, now)
        return self.envelope(draft, self.signature(draft, now))

    def compose(self, row: Claimed, now: datetime) -> Draft:
        if row.kind == "digest":
            return self.digest(row, now)
        if row.kind == "confirm":
            return self.confirm(row, now)
        raise Skip(f"not sent: unknown message kind {row.kind!r}")

    def digest(self, row: Claimed, now: datetime) -> Draft:
        if row.status != "active":
            raise Skip(f"not sent: the subscriber is {row.status or 'deleted'}")
        prepared = self.prepare(row.article_seqs, row.more, bool(row.name))
        unsubscribe = self.links.token("unsubscribe", row.subscriber_id, row.token_version,
                                       now)
        values = {"name": row.name, "email": row.recipient,
                  "unsubscribe_url": self.links.url("unsubscribe", unsubscribe),
                  "preferences_url": self.links.link("preferences", row.subscriber_id,
                                                     row.token_version, now)}
        pieces, body = self.fill(prepared, values)
        list_unsubscribe = (f"List-Unsubscribe: <{values['unsubscribe_url']}>,\r\n"
                            f" <mailto:{self.unsubscribe_mailbox}?subject=unsubscribe%20"
                            f"{unsubscribe}>\r\n").encode("ascii")
        headers = [*self.bulk, prepared.subject_line, content_type_line(body),
                   address_line("To", row.name, row.recipient), self.date_line(now),
                   raw_line("Message-ID", row.message_id), list_unsubscribe]
        return Draft(row, headers, len(self.bulk), pieces, body)

    def confirm(self, row: Claimed, now: datetime) -> Draft:
        if row.status != "pending":
            raise Skip(f"not sent: the subscriber is {row.status or 'deleted'}, not pending")
        subject = confirm_subject(self.settings)
        url = self.links.link("confirm", row.subscriber_id, row.token_version, now)
        context = confirm_context(self.settings, subject,
                                  {"name": row.name, "email": row.recipient}, url)
        body = make_body(render(self.settings, "confirm.txt", context),
                         inline_css(render(self.settings, "confirm.html", context)))
        pieces = body.fill({})
        headers = [*self.common, header_line("Subject", subject), content_type_line(body),
                   address_line("To", row.name, row.recipient), self.date_line(now),
                   raw_line("Message-ID", row.message_id)]
        return Draft(row, headers, len(self.common), pieces, body)

    def signature(self, draft: Draft, now: datetime) -> bytes | None:
        """The DKIM-Signature line, or None when DKIM is off. Thread-safe: OpenSSL signs
        without the GIL, so several threads sign at once."""
        if self.dkim is None:
            return None
        return self.dkim.signature(draft.headers, draft.static,
                                   draft.body.canonical(draft.pieces), int(now.timestamp()))

    def envelope(self, draft: Draft, signature: bytes | None) -> Envelope:
        headers = [signature, *draft.headers] if signature else draft.headers
        row = draft.row
        sender = self.verp.address(row.subscriber_id, row.id) if self.verp else self.sender
        return Envelope(row.id, row.message_id, sender, (row.recipient,),
                        assemble(headers, draft.pieces), dot_safe=True)

    def date_line(self, now: datetime) -> bytes:
        second = int(now.timestamp())
        if self._date[0] != second:
            self._date = (second, f"Date: {format_datetime(now)}\r\n".encode("ascii"))
        return self._date[1]

    # ---------------------------------------------------------------- rendering
    def prepare(self, seqs: tuple[int, ...], more: int, named: bool) -> Prepared:
        key = (seqs, more, named)
        found = self.prepared.get(key)
        if found is not None:
            return found
        with self.lock:  # composing runs in threads: render each content once
            found = self.prepared.get(key)
            return found if found is not None else self.prepare_new(key)

    def prepare_new(self, key: tuple) -> Prepared:
        seqs, more, named = key
        articles = self.article_contexts(seqs)
        subject = digest_subject(self.settings, len(articles) + more)
        marks = self.slots.marks()
        subscriber = {"name": marks["name"] if named else "", "email": marks["email"]}
        text, html = self.render_digest(articles, more, subject, subscriber, marks)
        return self.prepared.put(key, Prepared(articles, more, subject,
                                               make_body(text, html, self.slots)))

    def render_digest(self, articles: list[dict], more: int, subject: str,
                      subscriber: dict, links: dict) -> tuple[str, str]:
        context = digest_context(self.settings, articles, more, subject, subscriber, links)
        return (render(self.settings, "digest.txt", context),
                inline_css(render(self.settings, "digest.html", context)))

    def fill(self, prepared: Prepared, values: dict[str, str]) -> tuple[list[bytes], Body]:
        if prepared.fast:
            return prepared.body.fill(values), prepared.body
        full = self.render_digest(prepared.articles, prepared.more, prepared.subject,
                                  {"name": values["name"], "email": values["email"]}, values)
        if prepared.fast is None:
            pieces = prepared.body.fill(values)
            filled = decoded_parts(b"".join(pieces), prepared.body.boundary)
            prepared.fast = filled == [part.replace("\r\n", "\n") for part in full]
            if prepared.fast:
                return pieces, prepared.body
            log.info("a digest template transforms subscriber values; rendering each "
                     "message of this content in full")
        body = make_body(*full)
        return body.fill({}), body

    def article_contexts(self, seqs: tuple[int, ...]) -> list[dict]:
        missing = [seq for seq in seqs if seq not in self.articles]
        if missing:
            for seq, article in self.store.ledger.articles_by_seq(missing).items():
                self.articles.put(seq, article_context(self.settings, article))
        found = [self.articles[seq] for seq in seqs if seq in self.articles]
        if not found:
            raise Skip("not sent: its articles are no longer stored")
        return found
