"""Delivery against a server that misbehaves on purpose (aiosmtpd with a fault-injecting
handler): 421 and 451 on some messages, 550 for one address, connections dropped before
and after a message's content. Every deliverable message arrives, and arrives once,
except where SMTP makes a repeat unavoidable (below); the 550 address ends bounced."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from datetime import timedelta

import pytest

from publisher.config import load_settings
from publisher.delivery import deliver
from publisher.delivery.smtp import SmtpTransport
from publisher.digests.planner import queue_digests
from publisher.store import open_store
from tests.support import NOW
from tests.support.mail import Recorder, add_articles, add_subscriber, mail_server, smtp_env

GROUPS = {"ok": 24, "busy": 3, "grey": 3, "drop": 3, "lost": 2, "dead": 1}


class Faulty(Recorder):
    """busy*: 421 on the first RCPT; grey*: 451 on the first RCPT; drop*: the connection
    closes at the first RCPT; lost*: the first message is taken, then the connection
    closes before the 250 goes out; dead: 550 always."""

    def __init__(self, pipelining: bool):
        super().__init__(pipelining=pipelining)
        self.rcpt_seen: Counter = Counter()
        self.data_seen: Counter = Counter()
        self.counter_lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.counter_lock:
            self.rcpt_seen[address] += 1
            first = self.rcpt_seen[address] == 1
        if address.startswith("dead"):
            return "550 5.1.1 <dead@example.org>: Recipient address rejected"
        if first and address.startswith("busy"):
            return "421 4.7.0 Too many connections, slow down"
        if first and address.startswith("grey"):
            return "451 4.7.1 Greylisted, try again later"
        if first and address.startswith("drop"):
            server.transport.close()
            return "250 OK"  # never arrives: the connection is gone
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        address = envelope.rcpt_tos[0]
        with self.counter_lock:
            self.data_seen[address] += 1
            first = self.data_seen[address] == 1
        if first and address.startswith("lost"):
            server.transport.close()  # the message is ours; the client never hears so
        return reply


@pytest.mark.slow  # hundreds of messages through a faulty server
@pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelined"])
def test_every_deliverable_message_arrives_once(tmp_path, monkeypatch, pipelining):
    from publisher.instance import init_instance

    site = tmp_path / "site"
    init_instance(site)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    handler = Faulty(pipelining)
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url, MAIL__BOUNCE_AFTER="1", MAIL__CONNECTIONS="4")
        settings = load_settings(site)
        store = open_store(settings.database_url)
        add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=6))
        addresses = [f"{group}{n}@example.org" for group, count in GROUPS.items()
                     for n in range(count)]
        for address in addresses:
            add_subscriber(store, address, NOW)
        assert queue_digests(settings, store, NOW).queued == len(addresses)
        expected = {row["recipient"]: row["message_id"]
                    for row in store.ledger.digest_messages()}

        # Deferred messages wait hours; `now` is ours to move, so each round is a day on.
        now = NOW
        for _ in range(5):
            transport = SmtpTransport(settings)
            asyncio.run(deliver(settings, store, transport, now))
            if not store.ledger.due_count(now + timedelta(days=1)):
                break
            now += timedelta(days=1)
        counts = store.ledger.counts()
        bounced = store.subscribers.by_email("dead0@example.org").status
        store.close()

    arrived = handler.message_ids()
    deliverable = {a: m for a, m in expected.items() if not a.startswith("dead")}
    assert set(arrived) == set(deliverable.values())  # everyone but dead@, nothing else
    repeated = {m for m, n in arrived.items() if n > 1}
    # lost*: the server took the message and the connection closed before its 250 was
    # read. The client cannot know it arrived, so it must send it again: same
    # Message-ID, and the only repeats there are.
    assert repeated == {m for a, m in deliverable.items() if a.startswith("lost")}
    assert all(arrived[m] == 2 for m in repeated)
    assert counts == {"queued": 0, "sending": 0, "deferred": 0,
                      "sent": len(deliverable), "failed": 1}
    assert bounced == "bounced"
    # Each message's headers say who it is for: no mix-up after a dropped connection.
    for address, messages in handler.by_recipient().items():
        assert all(m["Message-ID"] == expected[address] for m in messages)
        assert all(m["To"].addresses[0].addr_spec == address for m in messages)


class RandomFaults(Recorder):
    """The bench's faulty server (bench/faulty_smtp.py) in small: at each of the first
    `faulty` RCPTs, 451 (15%), 421 and close (5%) or a dropped connection (5%), from a
    seeded roll; every RCPT after those is taken. Counts the 421s and drops it made."""

    def __init__(self, faulty: int):
        super().__init__(pipelining=True)
        self.rng = random.Random(20)
        self.faulty = faulty
        self.rcpts = 0
        self.made: Counter = Counter()
        self.counter_lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.counter_lock:
            self.rcpts += 1
            roll = self.rng.random() if self.rcpts <= self.faulty else 1.0
        if roll < 0.15:
            self.made["451"] += 1
            return "451 4.7.1 Temporary local problem, try later"
        if roll < 0.20:
            self.made["421"] += 1
            server.transport.write(b"421 4.7.0 Service busy, closing transmission channel\r\n")
            server.transport.close()
            return "421 4.7.0 closing"  # never arrives
        if roll < 0.25:
            self.made["drop"] += 1
            server.transport.abort()
            return "250 OK"  # never arrives
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


def test_random_faults_cost_a_pass_no_message_and_the_pace_recovers(tmp_path, monkeypatch):
    """A pass through random 451s, 421s and drops sends every message once and hands
    nothing back; once the faults stop the pool is back to full width and no rate cap
    and no sender was ever held back (the old pool paused every sender and halved at
    each 421 or drop, and grew by one connection per 50 sends)."""
    from publisher.instance import init_instance

    site = tmp_path / "site"
    init_instance(site)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    count = 240
    handler = RandomFaults(faulty=180)
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url, MAIL__CONNECTIONS="4")
        settings = load_settings(site)
        store = open_store(settings.database_url)
        add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=6))
        for n in range(count):
            add_subscriber(store, f"reader{n}@example.org", NOW)
        assert queue_digests(settings, store, NOW).queued == count
        expected = {row["message_id"] for row in store.ledger.digest_messages()}

        transport = SmtpTransport(settings)
        first = asyncio.run(deliver(settings, store, transport, NOW))
        pace = transport.pace
        # The 451s wait for their own retry; the second pass is a day later.
        second = asyncio.run(deliver(settings, store, SmtpTransport(settings),
                                     NOW + timedelta(days=1)))
        counts = store.ledger.counts()
        store.close()

    assert handler.made["421"] and handler.made["drop"] and handler.made["451"]
    assert (first.waiting, first.problem, first.failed) == (0, "", 0)
    assert first.deferred == handler.made["451"]  # only the 451s wait, each its own way
    assert first.sent + first.deferred == count
    assert second.sent == first.deferred and second.waiting == 0
    arrived = handler.message_ids()
    assert set(arrived) == expected and max(arrived.values()) == 1  # all, each once
    assert counts["sent"] == count
    # Recovered: the faults stopped 60 messages before the end of the first pass.
    assert pace.limit == 4 and pace.rate is None and pace.problem is None
    assert pace.waits == 0  # random faults never held a sender back
