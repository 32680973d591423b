"""`publisher bounces read` over the sample corpus (tests/bounce_samples: DSNs and
reports written the way Postfix, Exim, qmail, Exchange, Gmail and Yahoo write them, ARF
complaints, auto-replies and a person's reply), the VERP tag, the policy and the
suppression list."""

from __future__ import annotations

import json
import mailbox
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.bounces import event_of_message, handle
from publisher.bounces.classify import classify
from publisher.delivery.verp import Verp
from publisher.store.subscribers import SUPPRESSED
from tests.support import NOW
from tests.support.mail import add_subscriber

SAMPLES = Path(__file__).parent / "bounce_samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_is_classified(name):
    kind, address = EXPECTED[name]
    data = (SAMPLES / name).read_bytes()
    finding = classify(data)
    assert finding.kind == kind, finding
    if address:
        assert address in finding.recipients
    if kind != "none" and b"Message-ID: <digest-" in data:
        assert "<digest-" in " ".join(finding.message_ids)  # our returned message's id


def test_the_corpus_through_the_command(instance, store, run_cli):
    for _kind, address in EXPECTED.values():
        if address:
            add_subscriber(store, address, NOW)
    result = run_cli("-C", instance, "bounces", "read", *sorted(SAMPLES.glob("*.eml")))
    assert result.exit_code == 0
    lines = dict(line.split(": ", 1) for line in result.output.splitlines())
    assert len(lines) == len(EXPECTED)
    after = {s.email: s.status for s in store.subscribers.stream()}
    for name, (kind, address) in EXPECTED.items():
        line = lines[str(SAMPLES / name)]
        if kind == "none":
            assert line.startswith("not a bounce (") and line.endswith("left alone"), line
            continue
        assert line.startswith({"hard": "hard bounce", "soft": "soft bounce",
                                "complaint": "complaint"}[kind]), line
        if address:
            expected = {"hard": "bounced", "soft": "active", "complaint": "complained"}[kind]
            assert after[address] == expected, (name, line)
    # Auto-replies and people's mail are never counted.
    counted = {e.email for e in store.bounces.events()}
    assert len(store.bounces.events()) == sum(k != "none" for k, _ in EXPECTED.values())
    assert "m.jones@example.com" not in counted and "dana@example.org" not in counted


def test_maildir_mbox_and_standard_input(instance, store, run_cli, tmp_path):
    gone = add_subscriber(store, "gone.user@example.net", NOW)
    box = mailbox.Maildir(tmp_path / "Maildir")
    box.add((SAMPLES / "person-reply.eml").read_bytes())
    mbox = mailbox.mbox(tmp_path / "bounces.mbox")
    for name in ("postfix-mailbox-full.eml", "ooo-gmail-vacation.eml"):
        mbox.add((SAMPLES / name).read_bytes())
    mbox.flush()
    result = run_cli("-C", instance, "bounces", "read", tmp_path / "Maildir",
                     tmp_path / "bounces.mbox", tmp_path / "missing.eml")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].endswith("not a bounce (no bounce found); left alone")
    assert lines[1].startswith(f"{tmp_path / 'bounces.mbox'}:1: soft bounce 4.2.2")
    assert lines[2].startswith(f"{tmp_path / 'bounces.mbox'}:2: not a bounce (auto-reply")
    assert lines[3] == f"{tmp_path / 'missing.eml'}: cannot read: No such file or directory"
    piped = piped_cli(instance, (SAMPLES / "postfix-user-unknown.eml").read_bytes())
    assert piped.exit_code == 0
    assert piped.output.startswith("-: hard bounce 5.1.1 for gone.user@example.net")
    assert store.subscribers.by_id(gone.id).status == "bounced"
    garbage = piped_cli(instance, b"\xff\xfe\x00junk")
    assert garbage.exit_code == 0 and "left alone" in garbage.output


def piped_cli(instance, data: bytes):
    """`publisher bounces read -` with `data` on standard input, as an MTA alias runs it."""
    from click.testing import CliRunner

    from publisher.cli import cli

    return CliRunner().invoke(cli, ["-C", str(instance), "bounces", "read", "-"], input=data,
                              catch_exceptions=False)


def test_verp_tags_are_signed_short_and_case_proof(settings):
    verp = Verp(settings, "bounces@example.org")
    address = verp.address(12345, 987654)
    local = address.split("@")[0]
    assert local.startswith("bounces+") and len(local) <= 30
    assert verp.read(f"To: <{address.upper()}>").subscriber_id == 12345
    forged = address.replace(address.split("-")[0].split("+")[1], "2")
    assert verp.read(forged) is None  # another subscriber's id under the same MAC
    assert Verp(settings, "other@example.org").read(address) is None

def test_the_tag_names_the_subscriber_even_when_the_report_names_another(settings, store):
    ada = add_subscriber(store, "ada@example.net", NOW)
    add_subscriber(store, "gone.user@example.net", NOW)
    tag = Verp(settings, "news@example.org").address(ada.id, 5)
    data = (SAMPLES / "postfix-user-unknown.eml").read_bytes().replace(
        b"Delivered-To: bounces@news.example.org", f"Delivered-To: {tag}".encode())
    outcome = handle(settings, store, event_of_message(data, "mail"), NOW)
    assert outcome.email == "ada@example.net" and "by VERP tag" in outcome.line


def soft(n: int) -> bytes:
    return (SAMPLES / "postfix-mailbox-full.eml").read_bytes() + f"\n{n}\n".encode()


def test_soft_bounces_count_within_the_window(settings, store):
    ada = add_subscriber(store, "full.box@example.com", NOW)
    days = settings.bounces.soft_days
    # Two long ago (outside the window), then two recent: still active; a third: bounced.
    for n, when in enumerate([NOW - timedelta(days=days + 5), NOW - timedelta(days=days + 4),
                              NOW - timedelta(days=2), NOW - timedelta(days=1)]):
        handle(settings, store, event_of_message(soft(n), "mail"), when)
        assert store.subscribers.by_id(ada.id).status == "active"
    outcome = handle(settings, store, event_of_message(soft(9), "mail"), NOW)
    assert outcome.action == f"marked bounced (3 soft bounces in {days} days)"
    assert store.subscribers.by_id(ada.id).status == "bounced"


def test_a_complaint_outranks_a_bounce_and_holds_until_a_new_opt_in(settings, store,
                                                                    run_cli, instance):
    from publisher.errors import AddressError
    from publisher.subscribers.rules import Preferences, request_subscription, resubscribe

    sub = add_subscriber(store, "annoyed.reader@yahoo.com", NOW)
    store.subscribers.change(sub.id, NOW, status="bounced")
    handle(settings, store, event_of_message((SAMPLES / "arf-yahoo-abuse.eml").read_bytes(),
                                             "mail"), NOW)
    sub = store.subscribers.by_id(sub.id)
    assert sub.status == "complained" and sub.status in SUPPRESSED
    with pytest.raises(AddressError, match="reported our mail as spam"):
        resubscribe(settings, store, sub, NOW)
    refused = run_cli("-C", instance, "subscribers", "set", sub.email, "--status", "active")
    assert refused.exit_code == 1 and "only a new opt-in" in refused.stderr
    # The subscribe form makes them pending: only the link they confirm brings them back.
    again = request_subscription(settings, store, sub.email, Preferences(), NOW)
    assert again.status == "pending"


def test_add_refuses_suppressed_addresses_without_force(instance, store, run_cli):
    sub = add_subscriber(store, "gone.user@example.net", NOW)
    store.subscribers.change(sub.id, NOW, status="bounced")
    refused = run_cli("-C", instance, "subscribers", "add", "gone.user@example.net")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == ("publisher: gone.user@example.net is on the suppression "
                                      "list (bounced); add it anyway with --force")
    forced = run_cli("-C", instance, "subscribers", "add", "gone.user@example.net",
                     "--force", "--confirmed")
    assert forced.exit_code == 0 and "added gone.user@example.net (active)" in forced.output


def test_import_keeps_and_reports_suppressed_addresses(instance, store, run_cli, tmp_path):
    bounced = add_subscriber(store, "gone.user@example.net", NOW)
    store.subscribers.change(bounced.id, NOW, status="bounced")
    complained = add_subscriber(store, "annoyed.reader@yahoo.com", NOW)
    store.subscribers.change(complained.id, NOW, status="complained")
    csv = tmp_path / "list.csv"
    csv.write_text("email,status\ngone.user@example.net,active\n"
                   "annoyed.reader@yahoo.com,active\nnew@example.net,\n")
    result = run_cli("-C", instance, "subscribers", "import", csv)
    assert result.exit_code == 0
    assert f"{csv}:2: gone.user@example.net is on the suppression list (bounced); not made " \
           "active" in result.stderr
    assert f"{csv}:3: annoyed.reader@yahoo.com is on the suppression list (complained)" \
        in result.stderr
    again = run_cli("-C", instance, "subscribers", "import", csv, "--resubscribe")
    assert "annoyed.reader@yahoo.com is on the suppression list (complained)" in again.stderr
    statuses = {s.email: s.status for s in store.subscribers.stream()}
    assert statuses == {"gone.user@example.net": "active",  # --resubscribe lifts a bounce
                        "annoyed.reader@yahoo.com": "complained", "new@example.net": "active"}


def test_history_list_show_prune_and_forget(instance, settings, store, run_cli):
    sub = add_subscriber(store, "gone.user@example.net", NOW)
    data = (SAMPLES / "postfix-user-unknown.eml").read_bytes()
    handle(settings, store, event_of_message(data, "mail"), NOW - timedelta(days=1))
    listed = run_cli("-C", instance, "bounces", "list", "--json")
    (event,) = [json.loads(line) for line in listed.output.splitlines()]
    assert (event["kind"], event["email"], event["status"], event["action"]) == \
        ("hard", "gone.user@example.net", "5.1.1", "marked bounced")
    shown = run_cli("-C", instance, "subscribers", "show", "gone.user@example.net").output
    assert "bounce history:   1" in shown and "marked bounced" in shown
    assert store.bounces.prune(NOW - timedelta(days=2)) == 0
    store.subscribers.forget(sub.id)
    assert store.bounces.events() == []
    handle(settings, store, event_of_message(data, "mail"), NOW - timedelta(days=100))
    assert store.bounces.prune(NOW - timedelta(days=settings.bounces.keep_days)) == 1


def test_status_warns_above_a_tenth_of_a_percent(instance, settings, store, run_cli):
    add_subscriber(store, "annoyed.reader@yahoo.com", NOW)
    handle(settings, store, event_of_message((SAMPLES / "arf-yahoo-abuse.eml").read_bytes(),
                                             "mail"), NOW)
    from publisher.schedule.status import collect_status, status_lines

    status = collect_status(settings, store, NOW + timedelta(hours=1))
    lines = status_lines(status)
    assert f"  {NOW.date().isoformat()}  0 hard, 0 soft, 1 complaint" in lines
    assert status.warnings == ["complaint rate 100.00% over the last 7 days (1 complaints, "
                               "0 messages sent) is above 0.1%; Gmail and Yahoo block "
                               "senders above 0.3%"]
    assert collect_status(settings, store, NOW + timedelta(days=8)).warnings == []


def test_metrics_count_bounces_by_kind(settings, store):
    from publisher.ops.metrics import BOUNCES

    before = BOUNCES.labels(kind="complaint")._value.get()
    add_subscriber(store, "annoyed.reader@yahoo.com", NOW)
    data = (SAMPLES / "arf-yahoo-abuse.eml").read_bytes()
    handle(settings, store, event_of_message(data, "mail"), NOW)
    handle(settings, store, event_of_message(data, "mail"), NOW)  # the same report again
    assert BOUNCES.labels(kind="complaint")._value.get() == before + 1
