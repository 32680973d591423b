"""How hard the smtp transport pushes a server (AIMD): stray faults cost little, a server
that keeps pushing back gets a trickle, a wait the server names is kept, and a dropped
connection is not a push-back."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import timedelta

import pytest

from publisher.config import load_settings
from publisher.delivery import deliver
from publisher.delivery.pace import Pace, retry_after
from publisher.delivery.smtp import SmtpTransport
from publisher.digests import queue_digests
from publisher.store import open_store
from tests.conftest import NOW
from tests.mailtest import Recorder, add_articles, add_subscriber, mail_server, smtp_env


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pace(ceiling: int = 10, give_up_after: float = 60.0) -> tuple[Pace, Clock]:
    clock = Clock()
    return Pace(ceiling, clock, give_up_after, rng=random.Random(1)), clock


def test_a_stray_push_back_costs_no_pause_and_the_window_grows_back():
    p, _ = pace()
    p.pushed_back("421 4.7.0 closing connection")
    assert p.limit == 7 and p.wait() == 0 and p.problem is None
    p.answered(30)  # thirty messages answered: about three windows' worth
    assert p.limit == 10


def test_push_backs_in_a_row_slow_to_a_trickle_then_give_up():
    p, clock = pace(give_up_after=60)
    waits = []
    for _ in range(9):  # pauses of 0, 0.5, 1, ... 16, 30 s: over a minute with no answer
        p.pushed_back("421 4.7.0 busy")
        waits.append(p.wait())
        clock.now += p.wait()
    assert waits[0] == 0 and all(b > a for a, b in itertools.pairwise(waits[:-1]))
    assert p.limit == 1 and 30 <= waits[-1] <= 37.5
    assert p.problem and p.problem.startswith("server unavailable for 60 s")


def test_an_answer_ends_the_trouble():
    p, clock = pace()
    for _ in range(3):
        p.pushed_back("421 busy")
        clock.now += p.wait()
    p.answered()
    p.pushed_back("421 busy")
    assert p.wait() == 0  # the first in a new row again


def test_a_wait_the_server_names_is_kept():
    p, _ = pace()
    p.pushed_back("421 4.7.0 Too many messages, try again in 45 seconds")
    assert p.wait() == 45 and p.problem is None
    p.pushed_back("450 4.7.1 rate limited; retry after 5 minutes")
    assert p.wait() == 300
    assert p.problem == ("the server asks to wait 300 s: 450 4.7.1 rate limited; "
                         "retry after 5 minutes")


def test_a_dropped_connection_is_not_a_push_back_unless_they_come_in_a_row():
    p, _ = pace()
    p.dropped("connection lost")
    p.dropped("connection lost")
    assert p.limit == 10 and p.wait() == 0
    p.dropped("connection lost")  # the third in a row, nothing answered between
    assert p.limit == 7


@pytest.mark.parametrize(("text", "seconds"), [
    ("421 4.7.0 Try again in 30 seconds", 30),
    ("451 4.7.1 Please retry after 2 min", 120),
    ("421 4.3.2 try later, retry in 10s", 10),
    ("421 4.7.0 Too many connections", None),
    ("451 4.7.1 Greylisted for 300 seconds", None),  # no "retry": not a named wait
])
def test_retry_after_reads_the_wait_a_reply_names(text, seconds):
    assert retry_after(text) == seconds


class Scattered(Recorder):
    """A busy server's random faults, on first tries only: 421 and close for 10% of
    messages, a dropped connection for 10%, 451 for 10%."""

    def __init__(self):
        super().__init__(pipelining=True)
        self.tries: dict[str, int] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        first = address not in self.tries
        self.tries[address] = self.tries.get(address, 0) + 1
        kind = int(address.split("@")[0].removeprefix("r")) % 10
        if first and kind == 1:
            server.transport.write(b"421 4.7.0 Service busy, closing\r\n")
            server.transport.close()
            return "421 4.7.0 Service busy"
        if first and kind == 2:
            server.transport.close()
            return "250 OK"  # never arrives
        if kind == 3 and self.tries[address] == 1:
            return "451 4.7.1 Try later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


def test_random_faults_neither_stall_nor_hand_back(tmp_path, monkeypatch):
    from publisher.instance import init_instance

    site = tmp_path / "site"
    init_instance(site)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    handler = Scattered()
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url, MAIL__CONNECTIONS="4")
        settings = load_settings(site)
        store = open_store(settings.database_url)
        add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=6))
        for n in range(100):
            add_subscriber(store, f"r{n}@example.org", NOW)
        assert queue_digests(settings, store, NOW).queued == 100
        transport = SmtpTransport(settings)
        report = asyncio.run(deliver(settings, store, transport, NOW))
        store.close()
    # One pass: all but the 451s sent (those wait for their retry), nothing handed back.
    assert (report.sent, report.deferred, report.waiting) == (90, 10, 0)
    # A few push-backs may come in a row on four connections; never a long pause.
    assert transport.pace.paused < 5
