"""Helpers for the digest and delivery tests: stored articles and subscribers, real SMTP
servers (aiosmtpd on 127.0.0.1) that record, advertise PIPELINING, speak TLS or inject
faults, and parsing what they received."""

from __future__ import annotations

import email
import email.policy
import os
import re
import threading
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import insert

from publisher.article import make_article
from publisher.store import Store
from publisher.store.articles import FilePlan
from publisher.store.schema import digests
from tests.support import NOW, REPO
from tests.support.daemon import wait_until
from tests.support.servers import smtp_server


def add_articles(store: Store, specs: list[tuple[str, tuple[str, ...]]], when: datetime,
                 image_every: int = 2, source: str = "test.md") -> list[int]:
    """Store articles (title, sections), in order; returns their sequence numbers."""
    start = store.articles.count()
    new = [make_article(id=f"{source}-{start + n}", title=title,
                        paragraphs=(f"First paragraph of {title}.", "Second paragraph."),
                        source=source, sections=sections, source_index=start + n,
                        image=f"https://images.example.org/{start + n}.jpg"
                        if (start + n) % image_every == 0 else None,
                        published=when)
           for n, (title, sections) in enumerate(specs)]
    store.articles.save_files([FilePlan(f"{source}-{start}", "0" * 64, len(new), new=new)],
                              when)
    return [a.seq for a in store.articles.latest(len(new))][::-1]


def add_subscriber(store: Store, address: str, when: datetime, **fields):
    fields.setdefault("status", "active")
    fields.setdefault("frequency", "daily")
    return store.subscribers.add(address, when - timedelta(days=3), **fields)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


class Recorder:
    """Keeps every message accepted: (mail from, rcpt to, data). Thread-safe."""

    def __init__(self, pipelining: bool = False, delay: float = 0.0):
        self.pipelining = pipelining
        self.delay = delay
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  envelope.original_content or envelope.content))
        return "250 2.0.0 Message accepted"

    def message_ids(self) -> Counter:
        return Counter(parse(data)["Message-ID"] for _, _, data in self.messages)

    def by_recipient(self) -> dict[str, list[email.message.EmailMessage]]:
        found: dict[str, list] = {}
        for _, recipients, data in self.messages:
            for recipient in recipients:
                found.setdefault(recipient, []).append(parse(data))
        return found


def mail_server(handler, **server_kwargs):
    """A real SMTP server on 127.0.0.1 with `handler` (see servers.smtp_server)."""
    return smtp_server(handler, **server_kwargs)


def smtp_env(monkeypatch, url: str, **extra: str) -> None:
    """Point the instance's mail at a test server (and a site with a real domain)."""
    monkeypatch.setenv("PUBLISHER_MAIL__TRANSPORT", "smtp")
    monkeypatch.setenv("PUBLISHER_MAIL__SMTP_URL", url)
    monkeypatch.setenv("PUBLISHER_SITE__URL", "https://news.example.org/")
    for key, value in extra.items():
        monkeypatch.setenv(f"PUBLISHER_{key.upper()}", value)


def write_articles(settings, *names: tuple[str, str]) -> None:
    """Markdown articles in section folders: (section, title) pairs."""
    for n, (section, title) in enumerate(names):
        folder = settings.path("articles") / section
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n:03d}.md").write_text(f"---\ntitle: {title}\n---\nBody of {title}.\n")


def add_digest(store, subscriber_id: int, period: str, seqs: list[int]) -> int:
    with store.writing() as conn:
        return conn.execute(insert(digests).values(
            subscriber_id=subscriber_id, period=period, first_seq=min(seqs),
            last_seq=max(seqs), article_seqs=seqs, more=0, created_at=NOW,
        ).returning(digests.c.id)).scalar_one()


def wait_for_mail(handler, count: int):
    """The count-th message a recording SMTP handler accepted, once it has arrived."""
    wait_until(lambda: len(handler.messages) >= count, f"message {count} to arrive")
    return handler.messages[count - 1]


def unsubscribe_message(subject: str, sender: str = "ada@example.org") -> bytes:
    return (f"From: {sender}\r\nTo: unsubscribe@example.org\r\nSubject: {subject}\r\n"
            "Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n\r\n\r\n").encode()


def link_in(message_bytes: bytes, path: str) -> str:
    message = email.message_from_bytes(message_bytes, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(rf"https?://\S+/{path}/\S+", text)[0]


def sending_env(smtp_url: str, lease_seconds: int, **extra: str) -> dict[str, str]:
    """The environment of a `publisher` process that sends to the test server over four
    connections with short leases (the SIGKILL tests), its store the instance's own."""
    env = {**os.environ, "PUBLISHER_MAIL__TRANSPORT": "smtp",
           "PUBLISHER_MAIL__SMTP_URL": smtp_url, "PUBLISHER_MAIL__CONNECTIONS": "4",
           "PUBLISHER_MAIL__LEASE_SECONDS": str(lease_seconds),
           "PUBLISHER_SITE__URL": "https://news.example.org/", "PYTHONPATH": str(REPO),
           **extra}
    env.pop("PUBLISHER_STORE__URL", None)
    return env
