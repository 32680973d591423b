"""The first hour: `publisher init` asks (on a real pseudo-terminal), commands outside an
instance stop and create nothing, `publisher check` finds what only the world can tell."""

from __future__ import annotations

import os
import socket
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.message
import dns.resolver
import dns.rrset
import pexpect
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from publisher.config import load_settings
from publisher.delivery.dkim import load_signer
from publisher.instance import init_instance
from publisher.preflight import preflight
from publisher.preflight.dns import resolver_lookup
from tests.support.mail import Recorder, mail_server, smtp_env
from tests.support.tls import check_login, self_signed

PUBLISHER = str(Path(sys.executable).with_name("publisher"))


@pytest.mark.slow  # a `publisher init` process on a terminal
# ---------------------------------------------------------------- init
def test_init_asks_on_a_terminal_with_defaults_and_asks_again_on_a_bad_answer(tmp_path):
    child = pexpect.spawn(PUBLISHER, ["init", "daily-bugle"], cwd=str(tmp_path),
                          encoding="utf-8", timeout=30,
                          env={**os.environ, "TERM": "dumb"})
    child.expect_exact("Site title [Daily Bugle]: ")
    child.sendline("")  # the default
    child.expect_exact("Public URL [http://127.0.0.1:8080/]: ")
    child.sendline("bugle.example.net")
    child.expect_exact("expected an absolute http:// or https:// URL")
    child.expect_exact("Public URL [http://127.0.0.1:8080/]: ")
    child.sendline("https://bugle.example.net/news")
    child.expect_exact("Sender address [Daily Bugle <news@bugle.example.net>]: ")
    child.sendline("")
    child.expect_exact("Time zone [")
    child.sendline("Mars/Olympus")
    child.expect_exact("an IANA time zone name")
    child.expect_exact("Time zone [")
    child.sendline("America/New_York")
    child.expect_exact("Next:")
    for step in ("1. ", "2. ", "3. "):
        child.expect_exact(step)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    settings = load_settings(tmp_path / "daily-bugle", environ={})
    assert settings.site.title == "Daily Bugle"
    assert settings.site.url == "https://bugle.example.net/news/"
    assert settings.site.description == "News from Daily Bugle."
    assert settings.mail.from_ == "Daily Bugle <news@bugle.example.net>"
    assert settings.site.timezone == "America/New_York"
    assert len(settings.web.secret) >= 32


def test_init_takes_options_for_scripts_and_writes_a_fresh_secret(run_cli, tmp_path):
    args = ["--title", "The Ledger", "--url", "https://ledger.example.net/",
            "--from", "The Ledger <desk@ledger.example.net>", "--timezone", "Asia/Tokyo"]
    result = run_cli("init", tmp_path / "a", *args)
    assert result.exit_code == 0, result.output
    assert [line[:5] for line in result.stdout.splitlines()[-3:]] == \
        ["  1. ", "  2. ", "  3. "]
    run_cli("init", tmp_path / "b", *args)
    a, b = (load_settings(tmp_path / n, environ={}) for n in "ab")
    assert a.site.title == "The Ledger" and a.site.timezone == "Asia/Tokyo"
    assert a.mail.from_ == "The Ledger <desk@ledger.example.net>"
    assert a.web.secret != b.web.secret


def test_init_refuses_a_bad_option_in_one_line(run_cli, tmp_path):
    result = run_cli("init", tmp_path / "x", "--url", "ledger.example.net")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "publisher: setting --url = 'ledger.example.net' is not valid: expected an "
        "absolute http:// or https:// URL"]
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- outside an instance
@pytest.mark.parametrize("command", [["status"], ["run"], ["serve"], ["check"], ["config"],
                                     ["subscribers", "list"], ["feeds"], ["send"]])
def test_commands_outside_an_instance_stop_in_one_line_and_create_nothing(
        run_cli, tmp_path, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("-C", empty, *command)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"publisher: not a Publisher instance: no publisher.toml in {empty}; "
        "run `publisher init DIR` or pass -C DIR"]
    assert list(empty.iterdir()) == []


@pytest.mark.slow  # a `publisher status` process on a terminal
def test_no_instance_in_the_current_folder(tmp_path):
    result = pexpect.run(f"{PUBLISHER} status", cwd=str(tmp_path), withexitstatus=True,
                         encoding="utf-8")
    assert result[1] == 2 and "not a Publisher instance" in result[0]
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- check
@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    init_instance(folder)
    monkeypatch.delenv("PUBLISHER_STORE__URL", raising=False)
    return folder


def test_check_passes_on_a_fresh_instance(run_cli, site):
    result = run_cli("-C", site, "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"check: {site} is ready")


def test_check_names_each_problem_on_its_own_line_and_run_writes_nothing(
        run_cli, site, monkeypatch):
    (site / "templates" / "pages").mkdir()
    (site / "templates" / "pages" / "article.html").write_text("{% for %}\n")
    monkeypatch.setenv("PUBLISHER_MAIL__DKIM_KEY", "missing.pem")
    monkeypatch.setenv("PUBLISHER_MAIL__DKIM_SELECTOR", "s1")
    monkeypatch.setenv("PUBLISHER_WEB__SECRET", "")
    (site / "articles" / "a.txt").write_text("Title\n\nBody.\n")
    for command in ("check", "run"):
        result = run_cli("-C", site, command)
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 3, lines
        assert lines[0].startswith("publisher: [web] secret is empty")
        assert lines[1].startswith(f"publisher: template {site}/templates/pages/article.html:1:")
        assert lines[2].startswith("publisher: setting mail.dkim_key = 'missing.pem' is not "
                                   "valid: expected a readable")
        assert "Traceback" not in result.output
    assert sorted(p.name for p in site.iterdir()) == [
        "articles", "feeds", "publisher.toml", "subscribers", "templates"]
    assert list((site / "feeds").iterdir()) == []


def test_check_finds_an_unwritable_publish_folder(run_cli, site, monkeypatch):
    if os.geteuid() == 0:
        # root writes anywhere; a file where the folder should be fails for everyone,
        # and is refused as soon as the settings load, before the check runs.
        (site / "feeds").rmdir()
        (site / "feeds").write_text("")
        prefix, expected = "publisher: setting feeds.folder = 'feeds' ", "expected a folder"
    else:
        (site / "feeds").chmod(0o500)
        prefix, expected = "publisher: [feeds] folder 'feeds': ", "is not writable"
    result = run_cli("-C", site, "check")
    assert result.exit_code == 2
    assert result.stderr.startswith(prefix) and expected in result.stderr, result.stderr


def test_check_logs_in_to_the_smtp_server_over_tls(run_cli, site, tmp_path, monkeypatch):
    context, cert = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with mail_server(Recorder(), authenticator=check_login, auth_require_tls=True,
                     tls_context=context, require_starttls=True) as server:
        smtp_env(monkeypatch, server.url.replace("://", "://mailer:s3cret%2Fpass@"),
                 mail__from="News <news@news.example.net>")
        good = run_cli("-C", site, "check")
        smtp_env(monkeypatch, server.url.replace("://", "://mailer:wrong@"))
        refused = run_cli("-C", site, "check")
        run = run_cli("-C", site, "run")
    assert good.exit_code == 0, good.output
    assert refused.exit_code == 2
    assert "the SMTP server refused the login: 535" in refused.stderr
    # A refused login is a setting to fix: run stops before writing anything, too.
    assert run.exit_code == 2 and run.stdout == ""
    assert not server.handler.messages


def test_check_refuses_a_certificate_it_cannot_verify(run_cli, site, tmp_path, monkeypatch):
    context, _ = self_signed(tmp_path)  # not trusted: SSL_CERT_FILE left alone
    with mail_server(Recorder(), ssl_context=context) as server:
        smtp_env(monkeypatch, server.url)
        result = run_cli("-C", site, "check")
    assert result.exit_code == 2
    assert "certificate verify failed" in result.stderr


def test_a_server_that_is_down_stops_check_but_run_only_warns(run_cli, site, monkeypatch,
                                                              refused_port):
    smtp_env(monkeypatch, f"smtp://127.0.0.1:{refused_port}")
    (site / "articles" / "a.txt").write_text("Title\n\nBody.\n")
    check = run_cli("-C", site, "check")
    assert check.exit_code == 2 and "cannot connect to 127.0.0.1" in check.stderr
    run = run_cli("-C", site, "run")
    assert "warning: [mail] smtp_url" in run.stderr
    assert run.stdout.startswith("ingest: 1 new")  # feeds need no mail server


def test_a_reserved_sender_domain_is_a_warning(run_cli, site, monkeypatch):
    with mail_server(Recorder()) as server:
        smtp_env(monkeypatch, server.url)
        result = run_cli("-C", site, "check")
    assert result.exit_code == 0
    assert "warning: [mail] from 'Publisher demo <news@example.org>' uses example.org" \
        in result.stderr


# ---------------------------------------------------------------- DKIM against DNS
def chunked(record: str) -> str:
    """A TXT record in the zone-file form: strings of at most 255 bytes, as DNS has it."""
    return " ".join(f'"{record[i:i + 200]}"' for i in range(0, len(record), 200))


class TxtServer:
    """A DNS server on 127.0.0.1 (UDP) answering TXT questions from a dict."""

    def __init__(self, records: dict[str, list[str]]):
        self.records = records
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            name = query.question[0].name.to_text().rstrip(".")
            if name in self.records:
                response.answer.append(dns.rrset.from_text_list(
                    query.question[0].name, 300, "IN", "TXT",
                    [chunked(r) for r in self.records[name]]))
            else:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def lookup(self):
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port = ["127.0.0.1"], self.port
        return resolver_lookup(resolver, seconds=2.0)


@pytest.fixture
def dkim_site(site, monkeypatch):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (site / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    monkeypatch.setenv("PUBLISHER_MAIL__DKIM_KEY", "dkim.pem")
    monkeypatch.setenv("PUBLISHER_MAIL__DKIM_SELECTOR", "s1")
    return load_settings(site)


def test_dkim_key_compared_with_the_published_record(dkim_site):
    signer = load_signer(dkim_site)
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    wrong = signer.dns_record().split("p=")[0] + "p=" + "".join(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode().splitlines()[1:-1])
    # The record is longer than one TXT string (255 bytes); the lookup joins its strings.
    record = signer.dns_record()
    assert len(record) > 255
    server = TxtServer({"s1._domainkey.example.org": ["v=spf1 -all", record]})
    assert preflight(dkim_site, lookup=server.lookup()).problems == []
    server.records["s1._domainkey.example.org"] = [wrong]
    assert preflight(dkim_site, lookup=server.lookup()).problems == [
        f"the DKIM record at s1._domainkey.example.org does not match [mail] dkim_key: "
        f"publish {record!r}"]
    del server.records["s1._domainkey.example.org"]
    assert preflight(dkim_site, lookup=server.lookup()).problems == [
        f"no DKIM record at s1._domainkey.example.org: publish the TXT record {record!r}"]
    server.sock.close()


def test_no_dns_answer_skips_the_comparison(dkim_site):
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], silent.getsockname()[1]
    assert preflight(dkim_site, lookup=resolver_lookup(resolver, seconds=0.5)).problems == []
    silent.close()


# ---------------------------------------------------------------- messages
@pytest.mark.parametrize("toml, message", [
    ('[sitee]\npassword = "hunter2"\n',
     "publisher.toml: unknown table [sitee] (did you mean 'site'?); the tables are site, "),
    ('[mail]\nsmtp_pasword = "hunter2"\n',
     "publisher.toml: unknown setting 'smtp_pasword' in [mail]; its settings are transport,"),
    ('[site]\ntitle = "x"\n\n\n\n\nurl = \n',
     "publisher.toml line 7: Invalid value (column 7)"),
    ('[feeds]\nitems = "ten"\n',
     "setting feeds.items = 'ten' is not valid: expected an integer"),
])
def test_settings_file_errors_in_plain_words_without_values(run_cli, tmp_path, toml, message):
    (tmp_path / "publisher.toml").write_text(toml)
    result = run_cli("-C", tmp_path, "status")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"publisher: {message}"), line
    assert "hunter2" not in line
    assert list(tmp_path.iterdir()) == [tmp_path / "publisher.toml"]


@pytest.mark.parametrize("variable, message", [
    ("PUBLISHER_MAIL__TRANSPRT", "unknown environment variable PUBLISHER_MAIL__TRANSPRT "
     "(did you mean PUBLISHER_MAIL__TRANSPORT?)"),
    ("PUBLISHER_MAIL_TRANSPORT", "unknown environment variable PUBLISHER_MAIL_TRANSPORT "
     "(did you mean PUBLISHER_MAIL__TRANSPORT?)"),
    ("PUBLISHER_NOPE__X", "unknown environment variable PUBLISHER_NOPE__X"),
])
def test_unknown_publisher_variables_are_errors(run_cli, site, variable, message):
    result = run_cli("-C", site, "status", env={variable: "smtp"})
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"publisher: {message}: settings are "
                                                  "PUBLISHER_<SECTION>__<KEY>, such as "
                                                  "PUBLISHER_MAIL__TRANSPORT"]


def test_other_publisher_names_are_left_to_tools(run_cli, site):
    # Names without a section (tests' PUBLISHER_TEST_PG_URL, PUBLISHER_CHROMIUM) are not ours.
    assert run_cli("-C", site, "config", env={"PUBLISHER_CHROMIUM": "x"}).exit_code == 0


def test_config_masks_secrets_unless_asked(run_cli, site):
    env = {"PUBLISHER_MAIL__SMTP_URL": "smtp://mailer:s3cret%2Fpass@mail.example.net:587",
           "PUBLISHER_STORE__URL": "postgresql+psycopg://pub:pgpass@db.example.net/news"}
    secret = load_settings(site, environ={}).web.secret
    masked = run_cli("-C", site, "config", env=env).stdout
    assert 'smtp_url = "smtp://mailer:********@mail.example.net:587"' in masked
    assert 'url = "postgresql+psycopg://pub:********@db.example.net/news"' in masked
    assert 'secret = "********"' in masked
    assert "s3cret" not in masked and "pgpass" not in masked and secret not in masked
    shown = run_cli("-C", site, "config", "--show-secrets", env=env).stdout
    assert "s3cret%2Fpass" in shown and "pgpass" in shown and secret in shown


def test_a_stage_that_fails_leaves_the_earlier_summaries(run_cli, site):
    # Compiles (so the check passes) but fails when rendered: the feeds stage fails.
    (site / "templates" / "pages").mkdir()
    (site / "templates" / "pages" / "index.html").write_text("{{ no_such_thing.x }}\n")
    (site / "articles" / "a.txt").write_text("Title\n\nBody.\n")
    result = run_cli("-C", site, "run")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "ingest: 1 new, 0 updated, 0 unchanged, 0 quarantined",
        "sources: 0 fetched, 0 not modified, 0 failed; 0 new, 0 updated"]
    assert "index.html" in result.stderr and "Traceback" not in result.output


# ---------------------------------------------------------------- sections
def test_cli_accepts_only_sections_that_exist(run_cli, site):
    cli = ("-C", site, "subscribers")
    none_yet = run_cli(*cli, "add", "ada@example.org", "--sections", "World News",
                       "--confirmed")
    assert none_yet.exit_code == 1
    assert none_yet.stderr.strip() == ("publisher: no section 'world-news': there are no "
                                       "sections yet (or choose none for every section)")
    (site / "articles" / "world").mkdir()  # an inbox folder names a section
    (site / "articles" / "world" / "a.txt").write_text("Title\n\nBody.\n")
    (site / "articles" / "science").mkdir()
    run_cli("-C", site, "ingest")
    bad = run_cli(*cli, "add", "ada@example.org", "--sections", "World News", "--confirmed")
    assert bad.stderr.strip() == ("publisher: no section 'world-news': the sections are "
                                  "science, world (or choose none for every section)")
    assert run_cli(*cli, "add", "ada@example.org", "--sections", "World",
                   "--confirmed").exit_code == 0
    assert run_cli(*cli, "set", "ada@example.org", "--sections", "sports").exit_code == 1
    assert run_cli(*cli, "set", "ada@example.org", "--sections", "science").exit_code == 0


def test_sections_of_sources_exist_before_their_first_article(site, monkeypatch):
    from publisher.store import open_store
    from publisher.subscribers.rules import existing_sections

    with (site / "publisher.toml").open("a") as toml:
        toml.write('\n[[sources]]\nurl = "http://127.0.0.1:9/feed.xml"\n'
                   'sections = ["sports"]\n')
    settings = load_settings(site)
    store = open_store(settings.database_url)
    assert existing_sections(settings, store) == {"sports"}
    store.close()


def test_status_names_subscribers_whose_sections_all_disappeared(run_cli, site):
    from publisher.store import open_store

    (site / "articles" / "world").mkdir()
    run_cli("-C", site, "subscribers", "add", "ada@example.org", "--sections", "world",
            "--confirmed")
    run_cli("-C", site, "subscribers", "add", "bob@example.org", "--confirmed")
    assert "get nothing" not in run_cli("-C", site, "status").stdout
    (site / "articles" / "world").rmdir()
    lines = run_cli("-C", site, "status").stdout.splitlines()
    assert ("  1 active subscriber(s) get nothing: none of their sections exists any more "
            "(ada@example.org); change them with `publisher subscribers set EMAIL "
            "--sections ...`") in lines
    store = open_store(load_settings(site).database_url)
    assert store.subscribers.by_email("ada@example.org").sections == ("world",)
    store.close()


# ---------------------------------------------------------------- delivery time
def test_the_due_rule_uses_the_subscribers_delivery_time_in_their_zone(tmp_path):
    from publisher.digests.planner import due, schedule
    from publisher.store.queueing import Candidate

    settings = load_settings(tmp_path, environ={})  # [digest] daily_at 07:00
    tuesday = datetime(2026, 11, 24, tzinfo=UTC)
    joined = tuesday - timedelta(days=30)
    last = datetime(2026, 11, 23, 23, 5, tzinfo=UTC)  # Monday 18:05 in New York
    ny = Candidate(1, "a@example.org", "daily", (), "America/New_York", 0, last, joined,
                   deliver_at="18:00")
    plain = Candidate(2, "b@example.org", "daily", (), "America/New_York", 0, last, joined)

    def label(who, hour, minute=0):
        return due(who, schedule(settings, tuesday.replace(hour=hour, minute=minute)))

    assert label(ny, 12) is None            # 07:00 in New York: not their time
    assert label(plain, 12) == "daily:2026-11-24"  # ...but the site's
    assert label(ny, 22, 59) is None        # 17:59 in New York
    assert label(ny, 23) == "daily:2026-11-24"  # 18:00 in New York
    # A weekly one on [digest] weekly_on (Monday) at their time.
    weekly = Candidate(3, "c@example.org", "weekly", (), "Asia/Tokyo", 0, None, joined,
                       deliver_at="06:30")
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    assert due(weekly, schedule(settings, monday - timedelta(hours=2, minutes=31))) == \
        "weekly:2026-W47"                   # Sunday 21:29 UTC: last Monday's
    assert due(weekly, schedule(settings, monday - timedelta(hours=2, minutes=30))) == \
        "weekly:2026-W48"                   # Monday 06:30 in Tokyo


def test_deliver_at_from_the_command_line(run_cli, site):
    from publisher.store import open_store

    cli = ("-C", site, "subscribers")
    assert run_cli(*cli, "add", "ada@example.org", "--deliver-at", "7:30",
                   "--timezone", "Europe/Paris", "--confirmed").exit_code == 0
    bad = run_cli(*cli, "set", "ada@example.org", "--deliver-at", "25:00")
    assert bad.exit_code == 1 and bad.stderr.strip() == (
        "publisher: delivery time '25:00' is not a 24-hour time such as 18:00")
    shown = run_cli(*cli, "show", "ada@example.org").stdout
    assert "deliver_at:       07:30" in shown
    assert run_cli(*cli, "set", "ada@example.org", "--deliver-at", "").exit_code == 0
    store = open_store(load_settings(site).database_url)
    assert store.subscribers.by_email("ada@example.org").deliver_at == ""
    store.close()


@pytest.mark.parametrize("command", [["daemon"], ["serve", "--port", "1"], ["run"]])
def test_daemon_serve_and_run_check_first_and_create_nothing(run_cli, site, monkeypatch,
                                                              command):
    monkeypatch.setenv("PUBLISHER_WEB__SECRET", "")
    result = run_cli("-C", site, *command)
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("publisher: [web] secret is empty")
    assert not (site / "publisher.db").exists()


@pytest.mark.slow  # a `publisher init` process on a terminal
def test_init_in_an_instance_refuses_before_asking(tmp_path):
    init_instance(tmp_path / "site")
    output, status = pexpect.run(f"{PUBLISHER} init site", cwd=str(tmp_path), timeout=30,
                                 withexitstatus=True, encoding="utf-8")
    assert status == 2 and "Site title" not in output
    assert output.strip() == ("publisher: site/publisher.toml already exists: "
                              "edit the existing file instead")
