"""The bounce mailbox over IMAP, against a real Dovecot (a private instance on a
127.0.0.1 high port): `publisher run` handles the bounces and complaints and moves them
to the done folder; auto-replies and people's mail stay in the inbox, unread."""

from __future__ import annotations

import imaplib
import os
import uuid
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote, urlsplit

import pytest

from publisher.bounces import fetch_imap
from publisher.config import load_settings
from publisher.store import open_store
from tests.support import NOW
from tests.support.mail import add_subscriber
from tests.support.mailservers import PrivateDovecot

pytestmark = pytest.mark.slow
SAMPLES = Path(__file__).parent / "bounce_samples"
BOUNCES = ("postfix-user-unknown.eml", "arf-yahoo-abuse.eml")
OTHERS = ("ooo-exchange-automatic-reply.eml", "person-reply.eml")


@pytest.fixture(scope="module")
def dovecot():
    """A private Dovecot of our own (mailservers.PrivateDovecot), or a server of yours
    named by PUBLISHER_TEST_IMAP_URL (imap://USER:PASSWORD@HOST:PORT/)."""
    url = os.environ.get("PUBLISHER_TEST_IMAP_URL", "")
    if url:
        parts = urlsplit(url)
        yield SimpleNamespace(port=parts.port, user=unquote(parts.username),
                              password=unquote(parts.password),
                              url=lambda folder: f"{url.rstrip('/')}/{folder}")
        return
    server = PrivateDovecot().start()
    yield server
    server.stop()


@pytest.fixture
def folder(dovecot) -> str:
    """A folder of this test's own, so a shared server's earlier runs do not matter."""
    name = f"t{uuid.uuid4().hex[:12]}"
    conn = imap(dovecot)
    conn.create(name)
    conn.logout()
    return name


def imap(server) -> imaplib.IMAP4:
    conn = imaplib.IMAP4("127.0.0.1", server.port)
    conn.login(server.user, server.password)
    return conn


def folder_state(server, folder: str) -> dict[str, bool]:
    """{Subject: seen?} of every message in the folder."""
    conn = imap(server)
    if conn.select(f'"{folder}"', readonly=True)[0] != "OK":
        conn.logout()
        return {}  # not made yet
    _, data = conn.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    found = {}
    for item in data:
        if isinstance(item, tuple):
            subject = item[1].decode().strip().removeprefix("Subject: ")
            found[subject] = b"\\Seen" in item[0]
    conn.logout()
    return found


def test_bounces_are_moved_and_the_rest_left_unread(tmp_path, monkeypatch, run_cli,
                                                     dovecot, folder):
    from publisher.instance import init_instance

    conn = imap(dovecot)
    for name in BOUNCES + OTHERS:
        conn.append(folder, None, None, (SAMPLES / name).read_bytes().replace(b"\n", b"\r\n"))
    conn.logout()
    site = tmp_path / "site"
    init_instance(site)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    monkeypatch.setenv("PUBLISHER_BOUNCES__IMAP_URL", dovecot.url(folder))
    monkeypatch.setenv("PUBLISHER_BOUNCES__DONE_FOLDER", f"{folder}-done")
    store = open_store(load_settings(site).database_url)
    gone = add_subscriber(store, "gone.user@example.net", NOW)
    annoyed = add_subscriber(store, "annoyed.reader@yahoo.com", NOW)

    result = run_cli("-C", site, "run")
    assert result.exit_code == 0
    assert "bounces: 2 handled, 2 left alone" in result.output.splitlines()
    assert store.subscribers.by_id(gone.id).status == "bounced"
    assert store.subscribers.by_id(annoyed.id).status == "complained"
    assert folder_state(dovecot, folder) == {
        "Automatic reply: Publisher demo: 4 new articles": False,
        "Re: Publisher demo: 4 new articles": False}
    assert folder_state(dovecot, f"{folder}-done") == {
        "Undelivered Mail Returned to Sender": True,
        "Yahoo! - Abuse Message Report": True}
    # The next pass skips what it has seen: nothing handled, nothing read.
    again = run_cli("-C", site, "run")
    assert "bounces: 0 handled, 0 left alone" in again.output.splitlines()
    assert set(folder_state(dovecot, folder).values()) == {False}
    store.close()


def test_a_wrong_password_is_the_reports_error_not_a_crash(settings, store, dovecot):
    from dataclasses import replace

    url = dovecot.url("INBOX").replace(f":{dovecot.password}@", ":wrong@")
    bad = replace(settings, bounces=replace(settings.bounces, imap_url=url))
    report = fetch_imap(bad, store, NOW)
    assert report.line() == "bounces: mailbox not read (login as bounces: " \
                            "[AUTHENTICATIONFAILED] Authentication failed.)"
    assert store.bounces.events() == []


def test_the_daemon_reads_the_mailbox(instance, store, daemons, dovecot, folder):
    from tests.support.daemon import wait_until

    gone = add_subscriber(store, "gone.user@example.net", NOW)
    conn = imap(dovecot)
    conn.append(folder, None, None, (SAMPLES / "postfix-user-unknown.eml").read_bytes())
    conn.logout()
    daemon = daemons(instance, env={"PUBLISHER_BOUNCES__IMAP_URL": dovecot.url(folder),
                                    "PUBLISHER_BOUNCES__DONE_FOLDER": f"{folder}-done"})
    daemon.wait_started()
    wait_until(lambda: store.subscribers.by_id(gone.id).status == "bounced",
               "the daemon's first pass over the bounce mailbox")
    wait_until(lambda: folder_state(dovecot, f"{folder}-done") ==
               {"Undelivered Mail Returned to Sender": True}, "the bounce moved")
    assert daemon.stop() == 0
