"""`publisher run` delivering digests to a real SMTP server (aiosmtpd on 127.0.0.1):
what arrives parses, carries every header, one per subscriber, the right articles."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from publisher import tokens
from publisher.config import load_settings
from publisher.delivery.verp import Verp
from publisher.store import open_store
from tests.support import NOW
from tests.support.mail import Recorder, add_articles, add_subscriber, mail_server, smtp_env
from tests.support.tls import check_login, self_signed

WORLD, SCIENCE = ("world",), ("science",)
ARTICLES = [("Harbour Reopens", WORLD), ("Comet Seen", SCIENCE), ("Rail Strike Ends", WORLD),
            ("New Element", SCIENCE), ("Flood Warning Network", WORLD)]


def fill_site(instance, now):
    """Five articles and five subscribers, three of them due and active."""
    settings = load_settings(instance)
    store = open_store(settings.database_url)
    add_articles(store, ARTICLES, now - timedelta(hours=3))
    add_subscriber(store, "ada@example.org", now, name="Ada Lovelace")
    add_subscriber(store, "jose@example.org", now, name="José Martí", sections=["world"])
    add_subscriber(store, "grace@example.org", now, name="Grace", sections=["science"],
                   frequency="weekly", timezone="America/New_York")
    add_subscriber(store, "pending@example.org", now, status="pending")
    add_subscriber(store, "gone@example.org", now, status="unsubscribed")
    store.close()
    return settings


@pytest.mark.parametrize("pipelining", [False, True], ids=["lockstep", "pipelined"])
def test_run_delivers_each_subscriber_one_complete_digest(instance, monkeypatch, run_cli,
                                                          pipelining):
    now = NOW
    with mail_server(Recorder(pipelining=pipelining)) as server:
        smtp_env(monkeypatch, server.url, MAIL__BOUNCE="bounces@example.org",
                 MAIL__FEEDBACK_ID="digest:publisher-demo",
                 MAIL__REPLY_TO="The Desk <desk@example.org>")
        settings = fill_site(instance, now)
        result = run_cli("-C", instance, "run")
        assert result.exit_code == 0, result.output
        assert "digests: 3 queued" in result.output
        assert "delivery: 3 sent, 0 deferred, 0 failed" in result.output
        received = list(server.handler.messages)
        again = run_cli("-C", instance, "run")
        assert "delivery: 0 sent" in again.output
        assert len(server.handler.messages) == 3  # a second run sends nothing

    assert sorted(rcpt for _, rcpt, _ in received) == [
        ["ada@example.org"], ["grace@example.org"], ["jose@example.org"]]
    # Each envelope sender is the VERP return path naming that message's subscriber.
    verp = Verp(settings, "bounces@example.org")
    for sender, rcpt, _ in received:
        tag = verp.read(sender)
        assert sender.startswith("bounces+") and tag is not None
        assert store_email(settings, tag.subscriber_id) == rcpt[0]
    mine = {rcpt[0]: data for _, rcpt, data in received}
    titles = {"ada@example.org": [t for t, _ in ARTICLES][::-1],
              "jose@example.org": ["Flood Warning Network", "Rail Strike Ends",
                                   "Harbour Reopens"],
              "grace@example.org": ["New Element", "Comet Seen"]}
    for address, data in mine.items():
        check_digest(settings, address, data, titles[address])
    assert b"=?utf-8?" in mine["jose@example.org"].split(b"\r\n\r\n")[0]


def store_email(settings, subscriber_id: int) -> str:
    store = open_store(settings.database_url)
    try:
        return store.subscribers.by_id(subscriber_id).email
    finally:
        store.close()


def check_digest(settings, address: str, data: bytes, titles: list[str]) -> None:
    from tests.support.mail import parse

    message = parse(data)
    assert message["From"] == "Publisher demo <news@example.org>"
    assert message["To"].addresses[0].addr_spec == address
    assert message["Reply-To"] == "The Desk <desk@example.org>"
    n = len(titles)
    assert message["Subject"] == f"Publisher demo: {n} new article{'' if n == 1 else 's'}"
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000", message["Date"])
    assert re.fullmatch(r"<digest-\d+\.[0-9a-f]{10}@news\.example\.org>",
                        message["Message-ID"])
    assert message["List-Id"] == "Publisher demo <digest.news.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Precedence"] == "bulk"
    assert message["Feedback-ID"] == "digest:publisher-demo"
    https, mailto = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])
    token = https.rsplit("/", 1)[1]
    assert https == f"https://news.example.org/unsubscribe/{token}"
    assert mailto == f"mailto:unsubscribe@example.org?subject=unsubscribe%20{token}"
    subscriber_id = tokens.verify(settings, "unsubscribe", token, now=NOW).subscriber_id

    assert message.get_content_type() == "multipart/alternative"
    text_part, html_part = message.get_payload()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    text, html = text_part.get_content(), html_part.get_content()
    positions = [text.index(title) for title in titles]
    assert positions == sorted(positions)  # newest first
    assert all(title not in text for title, _ in ARTICLES if title not in titles)
    assert '<meta name="color-scheme" content="light dark">' in html
    assert re.search(r'<div class="preheader" style="display: none;', html)
    assert "@media (prefers-color-scheme: dark)" in html
    assert 'style="' in html.split("<body", 1)[1][:200]  # CSS is inlined
    for title in titles:
        assert re.search(r'<a class="title" href="https://news\.example\.org/articles/'
                         r'[a-z0-9-]+\.html"[^>]*>' + re.escape(title) + "</a>", html)
    assert html.count('<img src="https://images.example.org/') == \
        sum(1 for t in titles if ARTICLES.index(next(a for a in ARTICLES if a[0] == t)) % 2 == 0)
    unsubscribe = re.search(r'href="(https://news\.example\.org/unsubscribe/[^"]+)"', html)[1]
    preferences = re.search(r'href="(https://news\.example\.org/preferences/[^"]+)"', html)[1]
    assert tokens.verify(settings, "unsubscribe", unsubscribe.rsplit("/", 1)[1], now=NOW) \
        .subscriber_id == subscriber_id
    assert tokens.verify(settings, "preferences", preferences.rsplit("/", 1)[1], now=NOW) \
        .subscriber_id == subscriber_id
    assert f"Unsubscribe: {unsubscribe}" in text


# ---------------------------------------------------------------- TLS and AUTH
class SecureRecorder(Recorder):
    async def handle_DATA(self, server, session, envelope):
        self.sessions = [*getattr(self, "sessions", []),
                         (server.transport.get_extra_info("ssl_object") is not None,
                          session.authenticated)]
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def sqlite_instance(tmp_path, monkeypatch):
    """A SQLite-only instance, for the tests about transports rather than the store."""
    from publisher.instance import init_instance

    folder = tmp_path / "site"
    init_instance(folder)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    return folder


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_tls_and_login_from_smtp_url(sqlite_instance, tmp_path, monkeypatch, run_cli, mode):
    context, cert = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust our test CA
    options = ({"tls_context": context, "require_starttls": True} if mode == "starttls"
               else {"ssl_context": context})
    now = NOW
    # aiosmtpd counts only STARTTLS as TLS for AUTH; implicit TLS is TLS from the start.
    with mail_server(SecureRecorder(), authenticator=check_login,
                     auth_require_tls=mode == "starttls", **options) as server:
        url = server.url.replace("://", "://mailer:s3cret%2Fpass@")
        smtp_env(monkeypatch, url)
        fill_site(sqlite_instance, now)
        result = run_cli("-C", sqlite_instance, "send")
        assert "delivery: 3 sent" in result.output, result.output
    assert server.handler.sessions and all(tls and auth for tls, auth in
                                           server.handler.sessions)


def test_a_refused_login_is_one_line_and_nothing_is_lost(sqlite_instance, tmp_path, monkeypatch,
                                                         run_cli):
    context, cert = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with mail_server(Recorder(), authenticator=check_login, auth_require_tls=False,
                     tls_context=context) as server:
        smtp_env(monkeypatch, server.url.replace("://", "://mailer:wrong@"))
        fill_site(sqlite_instance, NOW)
        result = run_cli("-C", sqlite_instance, "send")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("publisher: the SMTP server refused the login: 535")
    assert "3 messages wait in the outbox" in result.stderr
    assert "Traceback" not in result.output
    assert not server.handler.messages
    outbox = run_cli("-C", sqlite_instance, "outbox")
    assert "queued 3" in outbox.output and "failed 0" in outbox.output


def test_an_unreachable_server_leaves_messages_queued(sqlite_instance, monkeypatch,
                                                      refused_port):
    import asyncio

    from publisher.delivery import deliver
    from publisher.delivery.smtp import SmtpTransport

    smtp_env(monkeypatch, f"smtp://127.0.0.1:{refused_port}")
    settings = fill_site(sqlite_instance, NOW)
    store = open_store(settings.database_url)
    from publisher.digests.planner import queue_digests

    now = NOW
    queue_digests(settings, store, now)
    transport = SmtpTransport(settings, give_up_after=0.3)
    report = asyncio.run(deliver(settings, store, transport, now))
    assert (report.sent, report.failed, report.deferred, report.waiting) == (0, 0, 0, 3)
    assert "cannot connect" in report.problem
    counts = store.ledger.counts()
    assert counts["queued"] == 3 and counts["failed"] == 0
    # They wait a few minutes, then the next run tries again.
    assert store.ledger.due_count(now) == 0
    assert store.ledger.due_count(now + timedelta(minutes=6)) == 3
    store.close()


def test_maildir_is_the_default_and_a_resend_does_not_duplicate(sqlite_instance, run_cli,
                                                                 monkeypatch):
    from publisher.delivery import deliver_blocking

    monkeypatch.setenv("PUBLISHER_SITE__URL", "https://news.example.org/")
    settings = fill_site(sqlite_instance, NOW)
    result = run_cli("-C", sqlite_instance, "run")
    assert "delivery: 3 sent" in result.output
    files = sorted((sqlite_instance / "outbox" / "new").iterdir())
    assert len(files) == 3
    from tests.support.mail import parse

    message = parse(files[0].read_bytes())
    assert message["Message-ID"].startswith("<digest-")
    # What a delivering MTA records: the envelope sender, our VERP return path.
    assert message["Return-Path"].startswith("<news+")
    assert Verp(settings, "news@example.org").read(message["Return-Path"]) is not None
    # A crash after writing but before recording: the row is sent again, same file.
    store = open_store(settings.database_url)
    from sqlalchemy import update

    from publisher.store.schema import outbox

    with store.writing() as conn:
        conn.execute(update(outbox).values(state="queued"))
    # A minute later by the clock (the run's own clock started at NOW and ran on).
    report = deliver_blocking(settings, store, None, NOW + timedelta(minutes=1))
    assert report.sent == 3
    assert sorted((sqlite_instance / "outbox" / "new").iterdir()) == files
    store.close()


def test_a_template_that_transforms_names_still_gets_each_name_right(sqlite_instance, monkeypatch,
                                                                    run_cli):
    (sqlite_instance / "templates" / "digest.txt").write_text(
        "Dear {{ subscriber.name|upper }}{% if subscriber.email.endswith('.org') %} (org)"
        "{% endif %},\n{% for a in articles %}{{ a.title }}\n{% endfor %}"
        "{{ unsubscribe_url }}\n")
    with mail_server(Recorder()) as server:
        smtp_env(monkeypatch, server.url)
        fill_site(sqlite_instance, NOW)
        assert "3 sent" in run_cli("-C", sqlite_instance, "run").output
    by = server.handler.by_recipient()

    def text(address):
        return by[address][0].get_payload()[0].get_content().replace("\r\n", "\n")

    assert text("ada@example.org").startswith("Dear ADA LOVELACE (org),\n")
    assert text("jose@example.org").startswith("Dear JOSÉ MARTÍ (org),\nFlood Warning Network\n")



@pytest.mark.parametrize("utf8", [True, False], ids=["smtputf8", "ascii-only-server"])
def test_an_internationalized_address_needs_smtputf8(sqlite_instance, monkeypatch, run_cli, utf8):
    import email
    import email.policy

    now = NOW
    with mail_server(Recorder(), enable_SMTPUTF8=utf8) as server:
        smtp_env(monkeypatch, server.url)
        settings = load_settings(sqlite_instance)
        store = open_store(settings.database_url)
        add_articles(store, ARTICLES[:1], now - timedelta(hours=1))
        add_subscriber(store, "josé@example.org", now, name="José")
        add_subscriber(store, "ada@example.org", now)
        result = run_cli("-C", sqlite_instance, "send")
        errors = store.ledger.latest_errors()
        store.close()
    if utf8:
        assert "delivery: 2 sent" in result.output
        (data,) = [d for _, rcpt, d in server.handler.messages if rcpt == ["josé@example.org"]]
        # RFC 6532: the header holds the address as UTF-8.
        message = email.message_from_string(data.decode("utf-8"), policy=email.policy.default)
        assert message["To"].addresses[0].addr_spec == "josé@example.org"
    else:
        assert "delivery: 1 sent, 0 deferred, 1 failed" in result.output
        assert errors[0]["recipient"] == "josé@example.org"
        assert "no SMTPUTF8" in errors[0]["last_error"]
