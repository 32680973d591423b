"""`publisher subscribers add/list/show/set/remove` through click's runner."""

from __future__ import annotations

import email
import email.policy
import json
import re

from click.testing import CliRunner

from publisher import tokens
from publisher.cli import cli as cli_group
from publisher.config import load_settings
from tests.support import NOW
from tests.support.mail import unsubscribe_message


def confirm_link(data: bytes) -> str:
    message = email.message_from_bytes(data, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"https?://\S+/confirm/(\S+)", text)[1]


def test_add_list_show_set_remove(run_cli, instance, store, smtp_server, monkeypatch):
    monkeypatch.setenv("PUBLISHER_MAIL__TRANSPORT", "smtp")
    monkeypatch.setenv("PUBLISHER_MAIL__SMTP_URL", smtp_server.url)
    for section in ("world", "science"):  # inbox folders: sections that exist
        (instance / "articles" / section).mkdir()
    cli = ("-C", instance, "subscribers")
    result = run_cli(*cli, "add", "Ada@Example.org", "--name", "Ada Lovelace",
                     "--frequency", "weekly", "--sections", "World, Science",
                     "--timezone", "europe/london", "--confirmed", "--no-welcome")
    assert result.exit_code == 0 and result.stdout.strip() == "added ada@example.org (active)"
    assert smtp_server.handler.messages == []  # --confirmed: no confirmation to send
    assert run_cli(*cli, "add", "bo@example.org").stdout.splitlines() == [
        "added bo@example.org (pending)",
        "confirmation link: delivery: 1 sent, 0 deferred, 0 failed"]
    (_, recipients, data), = smtp_server.handler.messages
    assert recipients == ["bo@example.org"]
    bo = store.subscribers.by_email("bo@example.org")
    assert tokens.verify(load_settings(instance), "confirm", confirm_link(data), now=NOW) == \
        tokens.TokenData(bo.id, 0)

    listed = run_cli(*cli, "list").stdout.splitlines()
    assert listed[0].split() == ["EMAIL", "STATUS", "FREQUENCY", "TIME", "ZONE", "SECTIONS"]
    assert listed[1].split() == ["ada@example.org", "active", "weekly", "Europe/London",
                                 "world,science"]
    assert listed[2].split() == ["bo@example.org", "pending", "daily", "(default)", "(all)"]
    as_json = [json.loads(line) for line in
               run_cli(*cli, "list", "--json", "--status", "pending").stdout.splitlines()]
    assert [(s["email"], s["status"], s["sections"]) for s in as_json] == \
        [("bo@example.org", "pending", [])]

    shown = run_cli(*cli, "show", "ADA@example.org").stdout
    assert "sections:         world, science" in shown
    link = next(line.split()[-1] for line in shown.splitlines()
                if line.startswith("preferences link:"))
    settings = load_settings(instance)
    ada = store.subscribers.by_email("ada@example.org")
    assert tokens.verify(settings, "preferences", link.rsplit("/", 1)[1], now=NOW) == \
        tokens.TokenData(ada.id, 0)

    result = run_cli(*cli, "set", "ada@example.org", "--frequency", "instant",
                     "--sections", "", "--new-links")
    assert result.stdout.strip() == "changed ada@example.org (active)"
    ada = store.subscribers.by_email("ada@example.org")
    assert (ada.frequency, ada.sections, ada.timezone, ada.name, ada.token_version) == \
        ("instant", (), "Europe/London", "Ada Lovelace", 1)

    assert run_cli(*cli, "remove", "ada@example.org").stdout.strip() == \
        "unsubscribed ada@example.org"
    assert store.subscribers.by_email("ada@example.org").status == "unsubscribed"
    result = run_cli(*cli, "set", "ada@example.org", "--status", "active")
    assert store.subscribers.by_email("ada@example.org").status == "active"
    result = run_cli(*cli, "remove", "ada@example.org", "--forget")
    assert result.stdout.strip() == "forgot ada@example.org: 0 digests and 0 messages deleted"
    assert store.subscribers.by_email("ada@example.org") is None


def test_user_mistakes_are_one_line(run_cli, instance):
    cli = ("-C", instance, "subscribers")
    run_cli(*cli, "add", "ada@example.org")
    cases = [
        (("add", "ada@example.org"), "ada@example.org is already on the list (pending)"),
        (("add", "nobody"), "'nobody' is not a valid address"),
        (("add", "x@example.org", "--timezone", "Nowhere"), "time zone 'Nowhere'"),
        (("add", "x@example.org", "--name", "A\nBcc: b@c.org"), "contains a line break"),
        (("show", "zed@example.org"), "zed@example.org is not on the list"),
        (("remove", "zed@example.org"), "zed@example.org is not on the list"),
        (("set", "ada@example.org"), "nothing to change"),
    ]
    for args, message in cases:
        result = run_cli(*cli, *args)
        assert result.exit_code == 1, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("publisher: ") and message in lines[0]


def test_unsubscribe_by_mail_needs_the_signed_token(run_cli, instance, store, tmp_path):
    settings = load_settings(instance)
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    cli = ("-C", instance, "subscribers", "unsubscribe-mail")
    forged = tokens.sign(settings, "preferences", ada.id, now=NOW)  # signed, but for another link
    for subject in ("unsubscribe", f"unsubscribe {forged}", "unsubscribe abc.def.ghi"):
        result = CliRunner().invoke(cli_group, [str(a) for a in cli],
                                    input=unsubscribe_message(subject),
                                    env={"PUBLISHER_TIME": NOW.isoformat()})
        assert result.exit_code == 0
        assert "no valid unsubscribe token" in result.output
    assert store.subscribers.by_id(ada.id).status == "active"

    token = tokens.sign(settings, "unsubscribe", ada.id, now=NOW)
    # Long subjects arrive folded, sometimes encoded.
    message = tmp_path / "1.eml"
    message.write_bytes(unsubscribe_message(f"=?utf-8?q?unsubscribe?=\r\n {token}"))
    result = run_cli(*cli, message)
    assert result.stdout.strip() == f"{message}: unsubscribe mail: unsubscribed ada@example.org"
    assert store.subscribers.by_id(ada.id).status == "unsubscribed"
    store.subscribers.revoke_links(ada.id, NOW)
    assert "no longer valid" in run_cli(*cli, message).stdout
