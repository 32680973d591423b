"""The mail commands: send, outbox, outbox retry, digest check, digest preview; and
`publisher run` refusing to send with a broken template."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from publisher.config import load_settings
from publisher.store import open_store
from tests.support import NOW, REPO
from tests.support.mail import Recorder, add_articles, add_subscriber, mail_server, parse, smtp_env


@pytest.fixture
def sqlite_instance(tmp_path, monkeypatch):
    from publisher.instance import init_instance

    folder = tmp_path / "site"
    init_instance(folder)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    monkeypatch.setenv("PUBLISHER_SITE__URL", "https://news.example.org/")
    return folder


def fill(folder, now=None):
    now = now or NOW
    store = open_store(load_settings(folder).database_url)
    add_articles(store, [("Harbour Reopens", ("world",)), ("Comet Seen", ("science",))],
                 now - timedelta(hours=2))
    add_subscriber(store, "ada@example.org", now, name="Ada Lovelace")
    add_subscriber(store, "grace@example.org", now, frequency="weekly",
                   sections=["science"])
    return store


def test_digest_check_passes_on_the_shipped_templates(sqlite_instance, run_cli):
    result = run_cli("-C", sqlite_instance, "digest", "check")
    assert result.exit_code == 0
    assert result.output.startswith("templates ok: digest.txt, digest.html")


@pytest.mark.parametrize("name, text, problem", [
    ("digest.html", "<p>\n{% for a in articles %}{{ a.title }}\n", "digest.html:2:"),
    ("digest.txt", "Hello\n{{ subscriber.nmae }}\n", "digest.txt:2: UndefinedError"),
    ("confirm.txt", "{{ confirm_url|nosuchfilter }}", "confirm.txt:1:"),
])
def test_digest_check_names_file_and_line(sqlite_instance, run_cli, name, text, problem):
    (sqlite_instance / "templates" / name).write_text(text)
    result = run_cli("-C", sqlite_instance, "digest", "check")
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(str(sqlite_instance / "templates" / problem)), line


def test_run_refuses_to_send_with_a_broken_template(sqlite_instance, run_cli):
    (sqlite_instance / "templates" / "digest.html").write_text("{% if %}\n")
    store = fill(sqlite_instance)
    result = run_cli("-C", sqlite_instance, "run")
    # The check before the pass finds it: nothing is ingested, built or sent.
    assert result.exit_code == 2 and result.stdout == ""
    broken = sqlite_instance / 'templates' / 'digest.html'
    assert f"publisher: template {broken}:1:" in result.stderr
    assert "Traceback" not in result.output
    assert store.ledger.counts()["queued"] == 0  # nothing written
    (sqlite_instance / "templates" / "digest.html").unlink()
    assert "delivery: 2 sent" in run_cli("-C", sqlite_instance, "run").output
    store.close()


def test_send_now_and_outbox_and_retry(sqlite_instance, run_cli, monkeypatch):
    store = fill(sqlite_instance)

    class Refuses(Recorder):
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address == "ada@example.org" and self.refuse:
                return "550 5.1.1 mailbox unavailable"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    handler = Refuses()
    handler.refuse = True
    with mail_server(handler) as server:
        smtp_env(monkeypatch, server.url)
        result = run_cli("-C", sqlite_instance, "send", "--now")
        assert result.exit_code == 0
        assert result.output.splitlines() == [
            "digests: 2 queued (2 subscribers checked)",
            "delivery: 1 sent, 0 deferred, 1 failed"]
        status = run_cli("-C", sqlite_instance, "outbox").output
        assert status.splitlines()[0] == "queued 0  sending 0  deferred 0  sent 1  failed 1"
        assert "failed    ada@example.org  attempts 1: RCPT TO: 550 5.1.1 mailbox " \
               "unavailable" in status
        handler.refuse = False
        assert run_cli("-C", sqlite_instance, "outbox", "retry").output.strip() == \
            "1 failed messages queued again"
        assert "delivery: 1 sent" in run_cli("-C", sqlite_instance, "send").output
        assert "digests: 0 queued" in run_cli("-C", sqlite_instance, "send", "--now").output
    assert sorted(r[1][0] for r in handler.messages) == ["ada@example.org",
                                                         "grace@example.org"]
    store.close()


def test_preview_writes_the_next_digest_and_changes_nothing(sqlite_instance, run_cli, tmp_path):
    store = fill(sqlite_instance)
    before = store.subscribers.by_email("ada@example.org")
    result = run_cli("-C", sqlite_instance, "digest", "preview", "ADA@example.org",
                     "-o", tmp_path / "p")
    assert result.exit_code == 0, result.output
    eml = tmp_path / "p" / f"digest-{before.id}.eml"
    html = (tmp_path / "p" / f"digest-{before.id}.html").read_text()
    message = parse(eml.read_bytes())
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    assert message["Subject"] == "Publisher demo: 2 new articles"
    assert "Comet Seen" in html and html.startswith("<!DOCTYPE html>")
    assert store.subscribers.by_email("ada@example.org").cursor == before.cursor
    assert sum(store.ledger.counts().values()) == 0
    missing = run_cli("-C", sqlite_instance, "digest", "preview", "nobody@example.org")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == \
        "publisher: nobody@example.org is not on the subscriber list"
    run_cli("-C", sqlite_instance, "send", "--now")
    nothing = run_cli("-C", sqlite_instance, "digest", "preview", "ada@example.org")
    assert "nothing new for ada@example.org" in nothing.output
    store.close()


def test_the_demo_instance_runs_with_mail_in_its_maildir(tmp_path, run_cli, monkeypatch):
    """The README's first command, on a copy of the repository's demo instance: import
    the example subscribers, then one pass that writes feeds and delivers digests."""
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copy(REPO / "publisher.toml", demo)
    for folder in ("articles", "subscribers"):
        shutil.copytree(REPO / folder, demo / folder,
                        ignore=shutil.ignore_patterns("quarantine"))
    imported = run_cli("-C", demo, "subscribers", "import", "subscribers/example.csv")
    assert imported.exit_code == 0, imported.output
    result = run_cli("-C", demo, "run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [
        "digests: 3 queued (3 subscribers checked)", "delivery: 3 sent, 0 deferred, 0 failed"]
    assert (demo / "feeds" / "rss.xml").is_file()
    files = list((demo / "outbox" / "new").iterdir())
    assert {parse(f.read_bytes())["To"] for f in files} == {
        "Ada Lovelace <ada@example.org>", "Grace Hopper <grace@example.org>",
        "José Martí <jose@example.org>"}
    again = run_cli("-C", demo, "run")
    assert again.output.splitlines()[-1] == "delivery: 0 sent, 0 deferred, 0 failed"
    assert len(list((demo / "outbox" / "new").iterdir())) == 3
