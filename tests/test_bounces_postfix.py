"""The whole loop through a real Postfix (a private instance in a temp folder on a
127.0.0.1 high port, never the system's): Publisher sends a digest to an address
Postfix does not know; Postfix writes the DSN to the VERP return path, which it
delivers into a Maildir; `publisher bounces read` that Maildir bounces the right
subscriber, and leaves the other message there (a digest, not a bounce) alone."""

from __future__ import annotations

import pytest

from publisher.config import load_settings
from publisher.delivery.verp import Verp
from publisher.store import open_store
from tests.support import NOW
from tests.support.mail import add_articles, add_subscriber
from tests.support.mailservers import PrivatePostfix

pytestmark = pytest.mark.slow


@pytest.fixture
def postfix():
    server = PrivatePostfix().start()
    yield server
    server.stop()


def test_a_dsn_from_postfix_bounces_the_right_subscriber(tmp_path, monkeypatch, run_cli,
                                                         postfix):
    from publisher.instance import init_instance

    site = tmp_path / "site"
    init_instance(site)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    monkeypatch.setenv("PUBLISHER_MAIL__TRANSPORT", "smtp")
    monkeypatch.setenv("PUBLISHER_MAIL__SMTP_URL", f"smtp://127.0.0.1:{postfix.port}")
    monkeypatch.setenv("PUBLISHER_MAIL__FROM", "Publisher test <news@publisher.test>")
    monkeypatch.setenv("PUBLISHER_MAIL__BOUNCE", "bounces@publisher.test")
    store = open_store(load_settings(site).database_url)
    add_articles(store, [("Harbour Reopens", ("world",))], NOW)
    gone = add_subscriber(store, "no.such.user@example.test", NOW)
    reader = add_subscriber(store, "reader@publisher.test", NOW)

    sent = run_cli("-C", site, "send", "--now")
    assert "delivery: 2 sent, 0 deferred, 0 failed" in sent.output, sent.output
    # The digest to reader@ and the DSN for no.such.user@ land in the same Maildir.
    files = postfix.delivered(2)
    dsn = next(f for f in files if b"Undelivered Mail Returned" in f.read_bytes())
    head = dsn.read_bytes().split(b"\n\n", 1)[0].decode()
    delivered_to = next(line for line in head.splitlines() if line.startswith("Delivered-To:"))
    tag = Verp(load_settings(site), "bounces@publisher.test").read(delivered_to)
    assert tag is not None and tag.subscriber_id == gone.id  # the envelope named them

    result = run_cli("-C", site, "bounces", "read", postfix.maildir)
    assert result.exit_code == 0
    lines = sorted(result.output.splitlines())
    assert len(lines) == 2, result.output
    assert any(line.endswith("not a bounce (no bounce found); left alone")
               for line in lines), lines
    (bounce,) = [line for line in lines if "hard bounce" in line]
    assert "hard bounce 5.1.1 for no.such.user@example.test (DSN 5.1.1, by VERP tag): " \
           "marked bounced" in bounce
    assert store.subscribers.by_id(gone.id).status == "bounced"
    assert store.subscribers.by_id(reader.id).status == "active"
    (event,) = store.bounces.events()
    assert event.kind == "hard" and event.subscriber_id == gone.id
    assert b"unknown user" in store.bounces.raw(event.id)
    # Read again (cron over the same Maildir): nothing counted twice.
    again = run_cli("-C", site, "bounces", "read", postfix.maildir)
    assert "already recorded; nothing done" in again.output
    assert len(store.bounces.events()) == 1
    store.close()
