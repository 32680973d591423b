"""`publisher admin ...`, `publisher digest preview --sample`, and schema version 3."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import create_engine, inspect

from publisher.cli import cli
from publisher.store import open_store
from publisher.store.migrate import MIGRATIONS, upgrade
from tests.support import NOW
from tests.support.mail import add_articles, add_subscriber


def with_input(*args, input: str):
    """The CLI in-process, with text on standard input (for the password)."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=input,
                              catch_exceptions=False)


def test_admin_accounts_from_the_command_line(run_cli, instance):
    added = with_input("-C", instance, "admin", "add", "Owner@Example.org",
                    "--password-stdin", input="a long enough password\n")
    assert added.exit_code == 0, added.output
    assert "added owner@example.org (owner)" in added.stdout
    editor = with_input("-C", instance, "admin", "add", "ed@example.org", "--role", "editor",
                     "--password-stdin", input="another long password\n")
    assert editor.exit_code == 0
    listed = run_cli("-C", instance, "admin", "list")
    assert "owner@example.org" in listed.stdout and "editor" in listed.stdout
    assert "never" in listed.stdout

    short = with_input("-C", instance, "admin", "add", "x@example.org", "--password-stdin",
                    input="short\n")
    assert short.exit_code == 1
    assert short.stderr.strip() == ("publisher: the password is too short: use at least 12 "
                                    "characters")
    twice = with_input("-C", instance, "admin", "add", "ed@example.org", "--password-stdin",
                    input="another long password\n")
    assert twice.exit_code == 1 and "already has a console account" in twice.stderr

    changed = with_input("-C", instance, "admin", "password", "ed@example.org",
                      "--password-stdin", input="a changed password!\n")
    assert changed.exit_code == 0 and "0 sessions ended" in changed.stdout
    last = run_cli("-C", instance, "admin", "remove", "owner@example.org")
    assert last.exit_code == 1 and "last owner" in last.stderr
    removed = run_cli("-C", instance, "admin", "remove", "ed@example.org")
    assert removed.exit_code == 0
    unknown = run_cli("-C", instance, "admin", "remove", "ed@example.org")
    assert unknown.exit_code == 1 and "has no console account" in unknown.stderr


def test_admin_add_prompts_for_the_password_twice(run_cli, instance, store):
    prompted = with_input("-C", instance, "admin", "add", "me@example.org",
                       input="typed carefully 1\ntyped carefully 1\n")
    assert prompted.exit_code == 0, prompted.output
    assert "Password" in prompted.output and "Repeat" in prompted.output
    assert store.accounts.by_email("me@example.org").password_hash.startswith("$argon2id$")


def test_digest_preview_sample(run_cli, instance, store, tmp_path):
    empty = run_cli("-C", instance, "digest", "preview", "--sample", "-o", tmp_path)
    assert "no articles are stored" in empty.stdout
    add_articles(store, [("Harbour Reopens", ("world",)), ("Comet Seen", ("science",))],
                 NOW - timedelta(hours=1))
    cursor = store.articles.max_seq()
    add_subscriber(store, "ada@example.org", NOW, cursor=cursor, sections=("science",))
    nothing = run_cli("-C", instance, "digest", "preview", "ada@example.org", "-o", tmp_path)
    assert "nothing new for ada@example.org" in nothing.stdout and "--sample" in nothing.stdout
    theirs = run_cli("-C", instance, "digest", "preview", "ada@example.org", "--sample",
                     "-o", tmp_path)
    assert theirs.exit_code == 0 and "sample, newest articles: 1 article (+" in theirs.stdout
    html = next(tmp_path.glob("digest-*.html")).read_text()
    assert "Comet Seen" in html and "Harbour Reopens" not in html
    anyone = run_cli("-C", instance, "digest", "preview", "--sample", "-o", tmp_path)
    assert "2 articles" in anyone.stdout and (tmp_path / "digest-sample.eml").exists()
    usage = run_cli("-C", instance, "digest", "preview", "-o", tmp_path)
    assert usage.exit_code == 2 and "--sample" in usage.stderr
    assert store.ledger.counts()["queued"] == 0


def test_version_3_upgrades_a_version_2_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        # A store as version 2 left it: no console tables, no console indexes.
        upgrade(conn, MIGRATIONS[:2])
        for table in ("admin_accounts", "admin_sessions", "admin_login_failures",
                      "admin_audit"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        for index in ("ix_subscribers_name", "ix_subscribers_filter",
                      "ix_subscribers_frequency", "ix_subscribers_created"):
            conn.exec_driver_sql(f"DROP INDEX {index}")
    engine.dispose()
    store = open_store(url)
    try:
        names = inspect(store.engine)
        assert {"admin_accounts", "admin_sessions", "admin_audit"} <= \
            set(names.get_table_names())
        with store.reading() as conn:
            indexes = set(conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
        assert {"ix_subscribers_name", "ix_subscribers_filter"} <= indexes
    finally:
        store.close()
