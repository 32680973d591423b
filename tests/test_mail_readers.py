"""Writing to readers: the welcome mail, the editor's note, the view-in-browser page of a
digest, the footer's postal address and the subject's plurals, through a real SMTP
server (aiosmtpd on 127.0.0.1) and the web app."""

from __future__ import annotations

import re
import struct
from dataclasses import replace
from datetime import timedelta

import pytest

from publisher import tokens
from publisher.clock import fixed
from publisher.config import load_settings
from publisher.delivery import deliver_blocking
from publisher.digests.planner import queue_digests
from publisher.errors import ConfigError
from publisher.web import create_app
from tests.support import NOW
from tests.support.mail import add_articles, add_subscriber, parse
from tests.support.web import SAME_SITE, TestClient, confirm_path, form_token_of, path_of

POSTAL = "Daily Bugle, 1 Harbour Street, Springfield & Co"


@pytest.fixture
def mail_settings(web_settings, smtp_server):
    """[mail] transport smtp to the real SMTP server, a postal address."""
    return replace(web_settings, mail=replace(web_settings.mail, transport="smtp",
                                              smtp_url=smtp_server.url,
                                              postal_address=POSTAL))


def app_client(settings, store, now=NOW):
    return TestClient(create_app(settings, store, clock=fixed(now)), follow_redirects=False)


def parts(data: bytes) -> tuple[object, str, str]:
    message = parse(data)
    return (message, message.get_body(preferencelist=("plain",)).get_content(),
            message.get_body(preferencelist=("html",)).get_content())


def sign_up_and_confirm(client, email="ada@example.org"):
    client.post("/subscribe", data={"email": email, "name": "Ada", "frequency": "daily"},
                headers=SAME_SITE)


def confirm_from(client, data: bytes, times: int = 1):
    url = confirm_path(data)
    token = form_token_of(client.get(url).text)
    for _ in range(times):  # the button pressed twice: the second press changes nothing
        answer = client.post(url, data={"form_token": token})
        assert answer.status_code == 200


def kinds(messages) -> list[str]:
    return [str(parse(data)["Message-ID"]).split("-")[0].lstrip("<")
            for _, _, data in messages]


# --- the welcome mail ---------------------------------------------------------------------

def test_the_welcome_mail_arrives_once_on_confirmation(mail_settings, store, smtp_server,
                                                       run_cli, instance, monkeypatch):
    add_articles(store, [("Harbour Reopens", ("world",)), ("Comet Seen", ("science",)),
                         ("Choir Returns", ("culture",)), ("Tide Tables", ("world",))],
                 NOW - timedelta(hours=3))
    mails = smtp_server.handler.messages
    with app_client(mail_settings, store) as client:
        sign_up_and_confirm(client)
        assert kinds(mails) == ["confirm"]
        confirm_from(client, mails[0][2], times=2)
        assert kinds(mails) == ["confirm", "welcome"]  # sent right after the answer
    message, text, html = parts(mails[1][2])
    ada = store.subscribers.by_email("ada@example.org")
    assert mails[1][1] == ["ada@example.org"]
    assert str(message["Subject"]) == "Welcome to Publisher demo"
    assert re.fullmatch(rf"<welcome-{ada.id}\.[0-9a-f]{{10}}@example\.org>",
                        str(message["Message-ID"]))
    assert "/unsubscribe/" in str(message["List-Unsubscribe"])
    # The latest three articles as cards, newest first; the footer's links and address.
    assert [t for t in ("Tide Tables", "Choir Returns", "Comet Seen", "Harbour Reopens")
            if t in text] == ["Tide Tables", "Choir Returns", "Comet Seen"]
    assert html.index("Tide Tables") < html.index("Comet Seen")
    assert "Harbour Reopens" not in html
    for body in (text, html):
        assert "every day at 07:00" in body
        assert "/unsubscribe/" in body and "/preferences/" in body
    assert POSTAL in text and "1 Harbour Street, Springfield &amp; Co" in html
    # Two passes later: still exactly one welcome (the ledger row is sent, not queued).
    env = {"PUBLISHER_MAIL__TRANSPORT": "smtp", "PUBLISHER_MAIL__SMTP_URL": smtp_server.url}
    for _ in range(2):
        assert run_cli("-C", instance, "run", env=env).exit_code == 0
    assert kinds(mails) == ["confirm", "welcome"]
    assert store.subscribers.by_id(ada.id).welcomed_at == NOW


def test_the_welcome_goes_out_once_through_serves_own_transport(web_settings, store, smtp_server,
                                                             run_cli, instance):
    # serve's transport is the maildir here: the welcome is delivered there at once...
    with app_client(web_settings, store) as client:
        sign_up_and_confirm(client)
        maildir = web_settings.path(web_settings.mail.maildir) / "new"
        (confirmation,) = maildir.iterdir()
        confirm_from(client, confirmation.read_bytes())
    assert len(list(maildir.iterdir())) == 2
    # ...and a later pass through SMTP finds nothing left to send.
    env = {"PUBLISHER_MAIL__TRANSPORT": "smtp", "PUBLISHER_MAIL__SMTP_URL": smtp_server.url}
    assert run_cli("-C", instance, "run", env=env).exit_code == 0
    assert smtp_server.handler.messages == []


def test_welcome_false_sends_none(mail_settings, store, smtp_server):
    settings = replace(mail_settings, digest=replace(mail_settings.digest, welcome=False))
    mails = smtp_server.handler.messages
    with app_client(settings, store) as client:
        sign_up_and_confirm(client)
        confirm_from(client, mails[0][2])
    assert store.subscribers.by_email("ada@example.org").status == "active"
    assert kinds(mails) == ["confirm"]
    assert store.ledger.counts()["queued"] == 0


def test_imported_and_returning_subscribers_get_no_welcome(instance, store, run_cli, tmp_path):
    listing = tmp_path / "list.csv"
    listing.write_text("email,name\nada@example.org,Ada\ngrace@example.org,Grace\n")
    assert run_cli("-C", instance, "subscribers", "import", listing).exit_code == 0
    ada = store.subscribers.by_email("ada@example.org")
    assert ada.status == "active" and ada.welcomed_at is None
    assert store.ledger.counts()["queued"] == 0
    # Added by hand, confirmed: welcomed once; unsubscribed and back: not again.
    assert run_cli("-C", instance, "subscribers", "add", "ida@example.org",
                   "--confirmed").exit_code == 0
    assert run_cli("-C", instance, "subscribers", "remove", "ida@example.org").exit_code == 0
    assert run_cli("-C", instance, "subscribers", "set", "ida@example.org", "--status",
                   "active").exit_code == 0
    maildir = load_settings(instance).path("outbox") / "new"
    assert [parse(f.read_bytes())["Subject"] for f in maildir.iterdir()] == \
        ["Welcome to Publisher demo"]


# --- the editor's note --------------------------------------------------------------------

NOTE = """---
until: 2026-11-24 14:00
---
We are off on **Friday**; see [the schedule](https://news.example.org/schedule).
<script>alert(1)</script>
"""


def send_digests(settings, store, now):
    queue_digests(settings, store, now, everyone=True)
    deliver_blocking(settings, store, None, now)


def test_the_note_shows_while_in_force_and_not_after(mail_settings, store, smtp_server):
    # 14:00 in Berlin is 13:00 UTC: in force at NOW (12:00 UTC), not at 13:30 UTC.
    settings = replace(mail_settings, site=replace(mail_settings.site,
                                                   timezone="Europe/Berlin"))
    (settings.instance / "editions").mkdir()
    (settings.instance / "editions" / "note.md").write_text(NOTE)
    add_subscriber(store, "ada@example.org", NOW)
    add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=1))
    send_digests(settings, store, NOW)
    add_articles(store, [("Comet Seen", ("science",))], NOW + timedelta(minutes=80))
    send_digests(settings, store, NOW + timedelta(minutes=90))
    (_, _, first), (_, _, second) = smtp_server.handler.messages
    _, text, html = parts(first)
    assert "We are off on Friday; see the schedule." in text
    assert text.index("We are off") < text.index("Harbour Reopens")
    assert "<strong>Friday</strong>" in html and 'href="https://news.example.org/schedule"' \
        in html and "<script" not in html
    assert html.index("We are off") < html.index("Harbour Reopens</a>")
    _, text, html = parts(second)
    assert "Comet Seen" in text and "We are off" not in text and "We are off" not in html


@pytest.mark.parametrize("content, problem", [
    ("no front matter\n", "no front matter"),
    ("---\nuntil: next friday\n---\nHello.\n", "until 'next friday' is not a date"),
    ("---\ntitle: Hi\nuntil: 2026-12-01\n---\nHello.\n", "unknown front matter key 'title'"),
    ("---\nuntil: 2026-12-01\n---\n", "the note has no text"),
])
def test_a_bad_note_is_one_line_and_the_digest_goes_out(settings, store, content, problem):
    (settings.instance / "editions").mkdir()
    (settings.instance / "editions" / "note.md").write_text(content)
    add_subscriber(store, "ada@example.org", NOW)
    add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=1))
    report = queue_digests(settings, store, NOW, everyone=True)
    assert report.queued == 1
    assert report.line().startswith("digests: 1 queued")
    assert f"note not used: editions/note.md: {problem}" in report.line()
    assert "\n" not in report.line()


def test_a_date_alone_means_through_that_day(settings, store):
    from publisher.digests.note import current_note

    (settings.instance / "editions").mkdir()
    (settings.instance / "editions" / "note.md").write_text("---\nuntil: 2026-11-24\n---\nHi\n")
    assert current_note(settings, NOW.replace(hour=23, minute=59)) is not None
    assert current_note(settings, NOW.replace(hour=0) + timedelta(days=1)) is None


# --- view in your browser -----------------------------------------------------------------

def test_the_view_page_shows_that_persons_digest_only(mail_settings, store, smtp_server):
    ada = add_subscriber(store, "ada@example.org", NOW, name="Ada", sections=["world"])
    add_subscriber(store, "grace@example.org", NOW, name="Grace", sections=["science"])
    add_articles(store, [("Harbour Reopens", ("world",)), ("Comet Seen", ("science",))],
                 NOW - timedelta(hours=1))
    send_digests(mail_settings, store, NOW)
    by_recipient = {rcpt[0]: data for _, rcpt, data in smtp_server.handler.messages}
    _, text, html = parts(by_recipient["ada@example.org"])
    url = re.search(r"View in your browser: (\S+)", text)[1]
    assert f'href="{url}"' in html
    grace_url = re.search(r"View in your browser: (\S+)",
                          parts(by_recipient["grace@example.org"])[1])[1]
    with app_client(mail_settings, store) as client:
        page = client.get(path_of(url))
        assert page.status_code == 200
        assert "Harbour Reopens" in page.text and "ada@example.org" in page.text
        assert "Comet Seen" not in page.text and "grace" not in page.text.lower()
        assert "View in your browser" not in page.text  # not on the page itself
        assert POSTAL.replace("&", "&amp;") in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "script-src" not in page.headers["content-security-policy"]
        assert client.get(path_of(grace_url)).status_code == 200
        # A forged token, an altered one, Grace's digest under a token not made for it:
        token = url.rsplit("/", 1)[1]
        grace_digest = tokens.verify(mail_settings, "view", grace_url.rsplit("/", 1)[1],
                                     now=NOW).subscriber_id
        payload, stamp, signature = token.split(".")
        graces = tokens.sign(mail_settings, "view", grace_digest, 0, now=NOW).split(".")[0]
        forged = [
            "not-a-token",
            f"{payload}.{stamp}.{signature[:-2]}AA",
            f"{graces}.{stamp}.{signature}",  # Grace's digest id under Ada's signature
            tokens.sign(mail_settings, "feed", grace_digest, 0, now=NOW),
            tokens.sign(replace(mail_settings, web=replace(mail_settings.web,
                                                           secret="another-secret-" * 2)),
                        "view", grace_digest, 0, now=NOW),
            tokens.sign(mail_settings, "view", grace_digest + 100, 0, now=NOW),
        ]
        for bad in forged:
            refused = client.get(f"/view/{bad}")
            assert refused.status_code == 404, bad
            assert "No digest here" in refused.text and "Traceback" not in refused.text
            assert "grace" not in refused.text.lower()
        # New links for Ada: her old page link stops working.
        store.subscribers.revoke_links(ada.id, NOW)
        assert client.get(path_of(url)).status_code == 404


def test_bad_view_links_are_rate_limited(web_settings, store):
    with app_client(web_settings, store) as client:
        answers = [client.get(f"/view/forged{n}").status_code for n in range(21)]
    assert answers == [404] * 20 + [429]


# --- the footer and the subject -----------------------------------------------------------

def test_subject_plurals_and_the_postal_address(mail_settings, store, smtp_server):
    add_subscriber(store, "ada@example.org", NOW, sections=["world"])
    add_subscriber(store, "grace@example.org", NOW)
    add_articles(store, [("Harbour Reopens", ("world",)), ("Comet Seen", ("science",)),
                         ("Choir Returns", ("culture",))], NOW - timedelta(hours=1))
    send_digests(mail_settings, store, NOW)
    subjects = {}
    for _, (rcpt,), data in smtp_server.handler.messages:
        message, text, html = parts(data)
        subjects[rcpt] = str(message["Subject"])
        assert POSTAL in text and POSTAL.replace("&", "&amp;") in html
        assert re.search(r"Unsubscribe: https?://\S+/unsubscribe/", text)
        assert "/preferences/" in text and "/preferences/" in html
    assert subjects == {"ada@example.org": "Publisher demo: 1 new article",
                        "grace@example.org": "Publisher demo: 3 new articles"}


def mo_file(entries: dict[str, str]) -> bytes:
    """A GNU gettext catalog (the .mo format msgfmt writes) of `entries`."""
    keys = sorted(entries)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(entries[k].encode() + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)
    offsets, position = [], 0
    for k in keys:
        offsets += [len(k.encode()), start + position]
        position += len(k.encode()) + 1
    values, position = [], 0
    for k in keys:
        values += [len(entries[k].encode()), start + len(ids) + position]
        position += len(entries[k].encode()) + 1
    header = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys),
                         0, 0)
    return header + struct.pack(f"{len(offsets)}i", *offsets) + \
        struct.pack(f"{len(values)}i", *values) + ids + strs


def test_a_translation_brings_its_own_plural_rules(settings, store):
    from publisher.delivery.templates import digest_subject

    folder = settings.instance / "locale" / "pl" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "publisher.mo").write_bytes(mo_file({
        "": "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=3; "
            "plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);\n",
        "%(count)s new article\0%(count)s new articles":
            "%(count)s nowy artykuł\0%(count)s nowe artykuły\0%(count)s nowych artykułów",
    }))
    polish = replace(settings, site=replace(settings.site, language="pl"))
    assert [digest_subject(polish, n).split(": ")[1] for n in (1, 3, 5, 22)] == [
        "1 nowy artykuł", "3 nowe artykuły", "5 nowych artykułów", "22 nowe artykuły"]
    assert digest_subject(settings, 1) == "Publisher demo: 1 new article"
    # An instance that kept the old default subject gets the plurals too.
    old = replace(settings, digest=replace(settings.digest,
                                           subject="{site_title}: {n} new articles"))
    assert digest_subject(old, 1) == "Publisher demo: 1 new article"
    fixed_subject = replace(settings, digest=replace(settings.digest, subject="{n} x"))
    assert digest_subject(fixed_subject, 1) == "1 x"


@pytest.mark.parametrize("key, value, words", [
    ("MAIL__POSTAL_ADDRESS", "x" * 301, "at most 300 characters"),
    ("MAIL__POSTAL_ADDRESS", "1 Harbour St\nSpringfield", "text on one line"),
    ("DIGEST__WELCOME_ARTICLES", "50", "a number from 0 to 20"),
    ("DIGEST__WELCOME", "maybe", "true or false"),
])
def test_new_settings_are_checked_at_load(instance, monkeypatch, key, value, words):
    monkeypatch.setenv(f"PUBLISHER_{key}", value)
    with pytest.raises(ConfigError) as caught:
        load_settings(instance)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_version_8_upgrades_a_version_6_store(database_url):
    from sqlalchemy import MetaData, Table, create_engine, insert, inspect

    from publisher.store import open_store
    from publisher.store.schema import metadata, schema_version

    # A store as version 6 left it: no digest_notes, no welcomed_at, no note_id.
    old = MetaData()
    for table in metadata.sorted_tables:
        if table.name != "digest_notes":
            Table(table.name, old, *[column._copy() for column in table.columns
                                     if column.name not in ("welcomed_at", "note_id")])
    engine = create_engine(database_url)
    with engine.begin() as conn:
        old.create_all(conn)
        conn.execute(insert(old.tables["schema_version"]),
                     [{"version": n, "applied_at": NOW} for n in range(1, 7)])
    engine.dispose()
    store = open_store(database_url, announce=lambda line: None)
    try:
        names = inspect(store.engine)
        assert "digest_notes" in names.get_table_names()
        assert "welcomed_at" in {c["name"] for c in names.get_columns("subscribers")}
        assert "note_id" in {c["name"] for c in names.get_columns("digests")}
        note = store.notes.save("a" * 64, "<p>Hi</p>", "Hi", NOW + timedelta(days=1), NOW)
        assert store.notes.save("a" * 64, "<p>Hi</p>", "Hi", NOW, NOW) == note
        with store.reading() as conn:
            assert 8 in {row.version for row in conn.execute(schema_version.select())}
    finally:
        store.close()


@pytest.mark.slow
def test_the_daemon_sends_a_welcome_queued_by_another_process(instance, settings, store,
                                                              smtp_server, daemons):
    from publisher.subscribers.rules import confirm
    from tests.support.daemon import wait_until

    env = {"PUBLISHER_MAIL__TRANSPORT": "smtp", "PUBLISHER_MAIL__SMTP_URL": smtp_server.url}
    daemon = daemons(instance, env=env)
    daemon.wait_started()
    pending = store.subscribers.add("ada@example.org", NOW, status="pending")
    confirm(settings, store, pending, NOW)  # as `publisher serve` does, in its own process
    wait_until(lambda: len(smtp_server.handler.messages) == 1, "the welcome mail")
    assert kinds(smtp_server.handler.messages) == ["welcome"]
    assert daemon.stop() == 0
    assert kinds(smtp_server.handler.messages) == ["welcome"]
