"""Editions: files in editions/ sent once per reader in their audience, through a real SMTP
server (aiosmtpd), when due in the site's zone; edits after the start refused; preview
and test commands; bad files one line each."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from publisher.config import load_settings
from publisher.delivery import deliver_blocking, make_transport
from publisher.editions import queue_editions
from publisher.editions.audience import in_audience
from publisher.editions.files import parse_edition
from publisher.errors import InputError
from publisher.store import open_store
from publisher.store.editions import Reader
from publisher.store.schema import editions
from tests.support import NOW
from tests.support.editions import LETTER, edition_rows, readers, write_edition
from tests.support.mail import Recorder, add_articles, mail_server, smtp_env


# ---------------------------------------------------------------- the rules
def test_audience_by_sections_and_frequency():
    everyone = Reader(1, "a@x.org", "daily", ())
    world = Reader(2, "b@x.org", "weekly", ("world",))
    culture = Reader(3, "c@x.org", "daily", ("culture",))
    assert all(in_audience(r, (), ()) for r in (everyone, world, culture))
    assert [in_audience(r, ("world",), ()) for r in (everyone, world, culture)] == \
        [True, True, False]
    assert [in_audience(r, (), ("weekly",)) for r in (everyone, world, culture)] == \
        [False, True, False]
    assert [in_audience(r, ("world", "culture"), ("daily",))
            for r in (everyone, world, culture)] == [True, False, True]


@pytest.mark.parametrize(("zone", "written", "utc"), [
    ("Europe/Berlin", "2026-12-01 09:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ("Europe/Berlin", "2027-07-01 09:00", datetime(2027, 7, 1, 7, tzinfo=UTC)),
    # 02:30 does not exist on 28 March 2027 in Berlin: read with the offset before the
    # change (+01:00); on 25 October 2026 it happens twice: the first one (+02:00).
    ("Europe/Berlin", "2027-03-28 02:30", datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),
    ("Europe/Berlin", "2026-10-25 02:30", datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ("America/New_York", "2027-03-14 09:00", datetime(2027, 3, 14, 13, tzinfo=UTC)),
    ("America/New_York", "2027-03-13 09:00", datetime(2027, 3, 13, 14, tzinfo=UTC)),
    ("America/New_York", "2026-12-01T09:00:00+00:00", datetime(2026, 12, 1, 9, tzinfo=UTC)),
])
def test_send_at_is_read_in_the_sites_zone(zone, written, utc):
    data = LETTER.format(subject="S", extra=f"send_at: {written}").encode()
    assert parse_edition(data, "s", "editions/s.md", ZoneInfo(zone)).send_at == utc


@pytest.mark.parametrize(("extra", "reason"), [
    ("subjct: x", "unknown front matter key 'subjct'"),
    ("frequency: hourly", "frequency 'hourly' is not one of instant, daily, weekly"),
    ("send_at: 2026-13-45", "send_at"),
    ("articles: {a: 1}", "articles must be 'latest N' or a list of article slugs"),
    ("sections: {a: 1}", "sections must be a name or a list"),
    ("send_at: [1, 2]", "date"),
])
def test_bad_front_matter_is_one_clear_line(extra, reason):
    data = LETTER.format(subject="S", extra=extra).encode()
    with pytest.raises(InputError) as caught:
        parse_edition(data, "s", "editions/s.md", ZoneInfo("UTC"))
    message = str(caught.value)
    assert message.startswith("editions/s.md: ") and "\n" not in message
    assert reason.lower() in message.lower()


def test_no_subject_and_no_body_are_refused():
    with pytest.raises(InputError, match=re.escape("no subject: add a line 'subject: ...'")):
        parse_edition(b"---\nsections: world\n---\nHi\n", "s", "editions/s.md", ZoneInfo("UTC"))
    with pytest.raises(InputError, match="no text"):
        parse_edition(b"---\nsubject: Hi\n---\n\n", "s", "editions/s.md", ZoneInfo("UTC"))


def test_body_is_sanitized_and_its_text_part_leaves_raw_html_out():
    edition = parse_edition(LETTER.format(subject="S", extra="").encode(), "s",
                            "editions/s.md", ZoneInfo("UTC"))
    assert "<script" not in edition.body_html and "onclick" not in edition.body_html
    assert "<strong>welcome</strong>" in edition.body_html
    assert "<div" not in edition.body_text and "## What comes next" in edition.body_text


# ---------------------------------------------------------------- sending, for real
def test_an_edition_reaches_its_audience_once_across_two_runs(instance, run_cli,
                                                              monkeypatch):
    settings = load_settings(instance)
    store = open_store(settings.database_url)
    readers(store)
    write_edition(instance, "spring-letter", extra="sections: [world]")
    handler = Recorder()
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url)
        first = run_cli("-C", instance, "run")
        assert first.exit_code == 0, first.output
        assert "editions: 1 started (2 messages queued)" in first.output
        second = run_cli("-C", instance, "run", env={
            "PUBLISHER_TIME": (NOW + timedelta(days=2)).isoformat()})
        assert second.exit_code == 0, second.output
        assert "editions:" not in second.output  # nothing new to say
    got = handler.by_recipient()
    assert sorted(got) == ["a@example.org", "b@example.org"]  # c reads culture only
    assert all(len(messages) == 1 for messages in got.values())
    ada = got["a@example.org"][0]
    assert ada["Subject"] == "Our spring letter"
    assert re.fullmatch(r"<edition-\d+-\d+\.[0-9a-f]{10}@news\.example\.org>",
                        ada["Message-ID"])
    assert {r["message_id"] for r in edition_rows(store)} == \
        {m[0]["Message-ID"] for m in got.values()}
    assert ada["List-Unsubscribe"].startswith("<https://news.example.org/unsubscribe/")
    assert ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = ada.get_body(("html",)).get_content()
    text = ada.get_body(("plain",)).get_content()
    web = "https://news.example.org/editions/spring-letter.html"
    for part in (html, text):
        assert web in part and "https://news.example.org/unsubscribe/" in part
        assert "https://news.example.org/preferences/" in part
    assert "<script" not in html and "<strong>welcome</strong>" in html
    store.close()


def test_frequency_chooses_the_audience(instance, run_cli, monkeypatch):
    store = open_store(load_settings(instance).database_url)
    readers(store)
    write_edition(instance, "weekly-note", extra="frequency: weekly")
    handler = Recorder()
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url)
        assert run_cli("-C", instance, "run").exit_code == 0
    assert sorted(handler.by_recipient()) == ["b@example.org"]
    store.close()


def test_a_reader_who_leaves_after_the_start_gets_nothing(settings, store, instance):
    readers(store)
    write_edition(instance, "letter")
    report = queue_editions(settings, store, NOW)
    assert (report.started, report.queued) == (1, 3)
    ada = store.subscribers.by_email("a@example.org")
    store.subscribers.unsubscribe(ada.id, NOW)
    store.subscribers.change(store.subscribers.by_email("b@example.org").id, NOW,
                             status="complained")
    handler = Recorder()
    with mail_server(handler) as server:
        settings = load_settings(instance, environ={
            "PUBLISHER_MAIL__TRANSPORT": "smtp", "PUBLISHER_MAIL__SMTP_URL": server.url,
            "PUBLISHER_STORE__URL": settings.database_url})
        deliver_blocking(settings, store, make_transport(settings), NOW)
    assert sorted(handler.by_recipient()) == ["c@example.org"]


def test_send_at_waits_for_its_time_in_the_sites_zone(instance, run_cli, monkeypatch):
    store = open_store(load_settings(instance).database_url)
    readers(store)
    # NOW is 12:00 UTC, 07:00 in New York: 08:00 there is 13:00 UTC.
    write_edition(instance, "morning", extra="send_at: 2026-11-24 08:00")
    handler = Recorder()
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url, site__timezone="America/New_York")
        early = run_cli("-C", instance, "run", env={
            "PUBLISHER_TIME": datetime(2026, 11, 24, 12, 59, tzinfo=UTC).isoformat()})
        assert "editions: 0 started (0 messages queued), 1 scheduled" in early.output
        assert handler.messages == []
        listed = run_cli("-C", instance, "edition", "list")
        assert "scheduled  2026-11-24 08:00  morning" in listed.output
        due = run_cli("-C", instance, "run", env={
            "PUBLISHER_TIME": datetime(2026, 11, 24, 13, 0, tzinfo=UTC).isoformat()})
        assert "editions: 1 started (3 messages queued)" in due.output
    assert len(handler.messages) == 3
    store.close()


def test_send_at_across_a_dst_change(settings, store, instance):
    """Berlin's 02:30 on the night clocks go forward is 01:30 UTC: not due a minute
    before, due on the minute."""
    readers(store)
    write_edition(instance, "night", extra="send_at: 2027-03-28 02:30")
    settings = load_settings(instance, environ={
        "PUBLISHER_SITE__TIMEZONE": "Europe/Berlin",
        "PUBLISHER_STORE__URL": settings.database_url})
    before = datetime(2027, 3, 28, 1, 29, tzinfo=UTC)
    assert queue_editions(settings, store, before).scheduled == 1
    assert queue_editions(settings, store, before + timedelta(minutes=1)).started == 1


def test_an_edition_edited_after_it_started_is_refused(instance, run_cli, monkeypatch):
    store = open_store(load_settings(instance).database_url)
    readers(store)
    path = write_edition(instance, "letter")
    handler = Recorder()
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url)
        assert run_cli("-C", instance, "run").exit_code == 0
        path.write_text(path.read_text() + "\nA late correction.\n")
        again = run_cli("-C", instance, "run")
        assert again.exit_code == 0
        assert ("editions/letter.md: edited after it started sending on 2026-11-24 12:00 "
                "UTC; the edit is not sent: send a correction as a new edition") in again.output
        shown = run_cli("-C", instance, "edition", "preview", path)
        assert shown.exit_code == 1
        assert shown.stderr.count("\n") == 1 and "send a correction as a new edition" \
            in shown.stderr
        listed = run_cli("-C", instance, "edition", "list")
        assert "sent" in listed.output and "edited after it started" in listed.output
    assert len(handler.messages) == 3  # the first version, once each
    with store.reading() as conn:
        assert conn.execute(select(func.count()).select_from(editions)).scalar() == 1
    store.close()


def test_bad_files_are_one_line_each_and_the_others_go(instance, run_cli, monkeypatch):
    store = open_store(load_settings(instance).database_url)
    readers(store)
    write_edition(instance, "good")
    write_edition(instance, "bad", extra="frequency: hourly")
    (instance / "editions" / "Bad Name.md").write_text("---\nsubject: x\n---\nHi\n")
    (instance / "editions" / "note.md").write_text("---\nuntil: 2026-12-01\n---\nA note\n")
    write_edition(instance, "missing", extra="articles: [no-such-article]")
    handler = Recorder()
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url)
        result = run_cli("-C", instance, "run")
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("editions:"))
    assert line.startswith("editions: 1 started (3 messages queued), 3 refused: ")
    assert "editions/bad.md: frequency 'hourly' is not one of" in line
    assert "editions/Bad Name.md: name the file in lower-case letters" in line
    assert "editions/missing.md: articles: no stored article has the slug " \
           "'no-such-article'" in line
    assert "note.md" not in line  # the editor's note is not an edition
    assert len(handler.messages) == 3
    store.close()


def test_article_cards_by_slug_and_latest(instance, settings, store, run_cli):
    seqs = add_articles(store, [("Harbour Reopens", ("world",)), ("Choir Returns", ()),
                                ("Late Train", ())], NOW - timedelta(hours=1))
    slugs = {a.seq: a.slug for a in store.articles.latest(3)}
    write_edition(instance, "cards", extra=f"articles: [{slugs[seqs[0]]}, latest 2]")
    readers(store)
    queue_editions(settings, store, NOW)
    stored = store.editions.by_slug()["cards"]
    assert stored.article_seqs == (seqs[0], seqs[2], seqs[1])
    result = run_cli("-C", instance, "edition", "preview", instance / "editions" / "cards.md",
                     "-o", instance / "out")
    html = (instance / "out" / "edition-cards.html").read_text()
    assert html.index("Harbour Reopens") < html.index("Late Train") < html.index("Choir")
    assert result.exit_code == 0


# ---------------------------------------------------------------- preview and test
def test_preview_writes_files_and_queues_nothing(instance, run_cli, store):
    readers(store)
    path = write_edition(instance, "letter", subject="Fish & <Chips>",
                         extra="sections: world")
    result = run_cli("-C", instance, "edition", "preview", path, "--to", "A@example.org",
                     "-o", instance / "out")
    assert result.exit_code == 0, result.output
    assert "'Fish & <Chips>': 0 article cards, to 2 subscribers now, sends with the next " \
           "run" in result.output
    eml = (instance / "out" / "edition-letter.eml").read_bytes()
    assert b"To: Ada <a@example.org>" in eml
    html = (instance / "out" / "edition-letter.html").read_text()
    # Escaped as text; inside a quoted attribute (aria-label) "<" needs no escaping.
    assert re.search(r'<h1 class="subject"[^>]*>Fish &amp; &lt;Chips&gt;</h1>', html)
    assert "<Chips></Chips>" not in html
    assert edition_rows(store) == [] and store.editions.by_slug() == {}


def test_test_sends_one_marked_message_and_records_nothing(instance, run_cli, monkeypatch,
                                                           store):
    readers(store)
    path = write_edition(instance, "letter")
    handler = Recorder()
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url)
        result = run_cli("-C", instance, "edition", "test", path, "editor@example.net")
        assert result.exit_code == 0, result.output
        again = run_cli("-C", instance, "edition", "test", path, "editor@example.net")
        assert again.exit_code == 0
    assert [r for _, r, _ in handler.messages] == [["editor@example.net"]] * 2
    message = handler.by_recipient()["editor@example.net"][0]
    assert message["Subject"] == "[TEST] Our spring letter"
    assert message["To"] == "editor@example.net"
    assert edition_rows(store) == [] and store.editions.by_slug() == {}


def test_test_to_a_bad_address_is_one_line(instance, run_cli):
    path = write_edition(instance, "letter")
    result = run_cli("-C", instance, "edition", "test", path, "not an address")
    assert result.exit_code != 0 and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_the_demo_instance_sends_its_edition(tmp_path, run_cli, monkeypatch):
    """The README's first command on a copy of the demo, its editions/ included: the
    letter reaches the three example subscribers once, with the three newest articles."""
    import shutil

    from tests.support import REPO
    from tests.support.mail import parse

    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copy(REPO / "publisher.toml", demo)
    for folder in ("articles", "subscribers", "editions"):
        shutil.copytree(REPO / folder, demo / folder,
                        ignore=shutil.ignore_patterns("quarantine"))
    assert run_cli("-C", demo, "subscribers", "import", "subscribers/example.csv"
                   ).exit_code == 0
    result = run_cli("-C", demo, "run")
    assert "editions: 1 started (3 messages queued)" in result.output, result.output
    letters = [parse(f.read_bytes()) for f in (demo / "outbox" / "new").iterdir()]
    letters = [m for m in letters if m["Subject"] == "A letter from the demo desk"]
    assert len(letters) == 3
    html = letters[0].get_body(("html",)).get_content()
    assert html.count('class="article"') == 3
    assert (demo / "feeds" / "editions" / "first-letter.html").is_file()
    run_cli("-C", demo, "run")
    assert len([f for f in (demo / "outbox" / "new").iterdir()
                if parse(f.read_bytes())["Subject"] == "A letter from the demo desk"]) == 3


def test_a_linked_or_oversized_file_is_refused_unread(instance, settings, store, tmp_path):
    outside = tmp_path / "outside.md"
    outside.write_text("---\nsubject: Secret\n---\nNot for the folder.\n")
    folder = instance / "editions"
    folder.mkdir()
    (folder / "linked.md").symlink_to(outside)
    (folder / "huge.md").write_bytes(b"---\nsubject: Big\n---\n" + b"x" * (
        settings.ingest.max_markdown_bytes + 1))
    readers(store)
    report = queue_editions(settings, store, NOW)
    assert report.started == 0 and len(report.problems) == 2
    assert any(p.startswith("editions/linked.md: is a symbolic link") for p in report.problems)
    assert any(p.startswith("editions/huge.md: file is over the limit") for p in report.problems)
