"""An edition whose `publisher run` is killed with SIGKILL mid-send, then run again, reaches
every reader in its audience; only messages in flight at the kill may arrive twice, with
the same Message-ID, and the edition is queued once."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import select

from publisher.config import load_settings
from publisher.store import open_store
from publisher.store.schema import outbox
from tests.support import NOW
from tests.support.daemon import wait_until
from tests.support.editions import write_edition
from tests.support.mail import Recorder, add_subscriber, mail_server, sending_env

pytestmark = pytest.mark.slow  # three `publisher run` processes, about a minute

READERS = 200
LEASE_SECONDS = 2


def test_killed_run_sends_an_edition_to_everyone_once(tmp_path, monkeypatch):
    from publisher.instance import init_instance

    site = tmp_path / "site"
    init_instance(site)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    handler = Recorder(pipelining=True, delay=0.02)  # slow enough to be caught mid-way
    with mail_server(handler) as server:
        env = sending_env(server.url, LEASE_SECONDS, PUBLISHER_TIME=NOW.isoformat())
        store = open_store(load_settings(site, environ=env).database_url)
        for n in range(READERS):
            add_subscriber(store, f"r{n}@example.org", NOW)
        add_subscriber(store, "gone@example.org", NOW, status="unsubscribed")
        write_edition(site, "letter")

        command = [sys.executable, "-m", "publisher", "-C", str(site), "run"]
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        wait_until(lambda: len(handler.messages) >= READERS // 4, "a quarter sent")
        first.send_signal(signal.SIGKILL)
        first.wait()
        with store.reading() as conn:
            in_flight = set(conn.execute(select(outbox.c.message_id)
                                         .where(outbox.c.state == "sending")).scalars())
            recorded = set(conn.execute(select(outbox.c.message_id)
                                        .where(outbox.c.state == "sent")).scalars())
        assert 0 < len(handler.messages) < READERS, "the kill came too late to test anything"

        later = NOW + timedelta(seconds=LEASE_SECONDS + 1)
        handler.delay = 0.0
        second = subprocess.run(command, env={**env, "PUBLISHER_TIME": later.isoformat()},
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "editions:" not in second.stdout  # started once, by the first run
        third = subprocess.run(command, env={**env, "PUBLISHER_TIME": (
            later + timedelta(days=1)).isoformat()}, capture_output=True, text=True,
            timeout=120)
        assert third.returncode == 0, third.stderr
        with store.reading() as conn:
            expected = dict(conn.execute(select(outbox.c.recipient, outbox.c.message_id)
                                         .where(outbox.c.kind == "edition")).all())
        counts = store.ledger.counts()
        store.close()

    assert len(expected) == READERS and "gone@example.org" not in expected
    assert counts["sent"] == READERS and counts["sending"] == counts["queued"] == 0
    arrived = handler.message_ids()
    assert set(arrived) == set(expected.values())  # every reader got it
    repeated = {m for m, n in arrived.items() if n > 1}
    assert repeated <= in_flight and not repeated & recorded
    assert all(n <= 2 for n in arrived.values())
    for address, messages in handler.by_recipient().items():
        assert {m["Message-ID"] for m in messages} == {expected[address]}
