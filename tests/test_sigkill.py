"""A `publisher send` killed with SIGKILL mid-way, then started again, delivers every
message; only messages in flight at the kill may arrive twice, with the same Message-ID."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from publisher.config import load_settings
from publisher.store import open_store
from publisher.store.schema import outbox
from tests.support import NOW
from tests.support.daemon import wait_until
from tests.support.mail import (
    Recorder,
    add_articles,
    add_subscriber,
    mail_server,
    sending_env,
)

pytestmark = pytest.mark.slow  # two `publisher send` processes

SUBSCRIBERS = 200
LEASE_SECONDS = 2


def last_lease(store) -> datetime:
    """When the last lease on a message still being sent runs out (NOW if none)."""
    with store.reading() as conn:
        last = conn.execute(select(func.max(outbox.c.lease_until))
                            .where(outbox.c.state == "sending")).scalar()
    return max(last or NOW, NOW)


def test_killed_send_restarts_and_delivers_everything(tmp_path, monkeypatch):
    from publisher.instance import init_instance

    site = tmp_path / "site"
    init_instance(site)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    handler = Recorder(pipelining=True, delay=0.02)  # slow enough to be caught mid-way
    with mail_server(handler) as server:
        env = sending_env(server.url, LEASE_SECONDS)
        settings = load_settings(site, environ=env)
        store = open_store(settings.database_url)
        now = NOW
        add_articles(store, [("Harbour Reopens", ("world",))], now - timedelta(hours=1))
        for n in range(SUBSCRIBERS):
            add_subscriber(store, f"r{n}@example.org", now)

        command = [sys.executable, "-m", "publisher", "-C", str(site), "send"]
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        wait_until(lambda: len(handler.messages) >= SUBSCRIBERS // 4, "a quarter sent")
        first.send_signal(signal.SIGKILL)
        first.wait()
        with store.reading() as conn:
            in_flight = set(conn.execute(select(outbox.c.message_id)
                                         .where(outbox.c.state == "sending")).scalars())
            recorded = set(conn.execute(select(outbox.c.message_id)
                                        .where(outbox.c.state == "sent")).scalars())
        arrived_before = len(handler.messages)
        assert 0 < arrived_before < SUBSCRIBERS, "the kill came too late to test anything"

        # The next run comes after the dead sender's leases have run out, by its clock
        # (the first run's clock started at NOW and ran on for as long as it took).
        later = last_lease(store) + timedelta(seconds=1)
        handler.delay = 0.0
        second = subprocess.run(command, env={**env, "PUBLISHER_TIME": later.isoformat()},
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "digests: 0 queued" in second.stdout  # queued once, by the first run
        counts = store.ledger.counts()
        expected = {row["recipient"]: row["message_id"]
                    for row in store.ledger.digest_messages()}
        store.close()

    assert counts["sent"] == SUBSCRIBERS and counts["sending"] == counts["queued"] == 0
    arrived = handler.message_ids()
    assert set(arrived) == set(expected.values())  # every subscriber got theirs
    repeated = {m for m, n in arrived.items() if n > 1}
    # A repeat is a message the server took after its row was claimed and before the
    # kill let its outcome be recorded: still 'sending' at the kill, never 'sent'.
    assert repeated <= in_flight
    assert not repeated & recorded
    assert all(n <= 2 for n in arrived.values())
    for address, messages in handler.by_recipient().items():
        assert {m["Message-ID"] for m in messages} == {expected[address]}
