"""Imports from other tools: each sample export (written from the tool's documented
column names, in tests/imports/) is recognised by its header (or --from), keeps names
and consent times, imports people who left as unsubscribed or bounced, reports what each
column became, and round-trips through our own export."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from publisher.config import load_settings
from publisher.store import open_store
from publisher.subscribers.csv_io import export_file, import_file
from tests.support import NOW

SAMPLES = Path(__file__).parent / "imports"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# file -> {email: (name, status, created_at, confirmed_at, timezone)}
EXPECTED = {
    "mailchimp_subscribed.csv": {
        "ada@example.org": ("Ada Lovelace", "active", at(2024, 3, 1, 9, 15),
                            at(2024, 3, 1, 9, 20, 11), "Europe/London"),
        "jose@example.org": ("José Martí", "active", at(2024, 5, 10, 18),
                             at(2024, 5, 10, 18), "America/Havana")},
    "mailchimp_unsubscribed.csv": {
        "grace@example.org": ("Grace Hopper", "unsubscribed", at(2023, 11, 2, 8),
                              at(2023, 11, 2, 8, 5), "")},
    "mailchimp_cleaned.csv": {
        "gone@example.org": ("Old Address", "bounced", at(2022, 1, 15, 12),
                             at(2022, 1, 15, 12, 1), "")},
    "substack.csv": {
        "mara@example.org": ("Mara Okafor", "active", at(2024, 2, 14, 7, 30),
                             at(2024, 2, 14, 7, 30), ""),
        "ken@example.org": ("Ken Thompson", "active", at(2023, 8, 1, 12),
                            at(2023, 8, 1, 12), ""),
        "left@example.org": ("", "unsubscribed", at(2023, 1, 1), at(2023, 1, 1), "")},
    "buttondown.csv": {
        "lin@example.org": ("Lin Chen", "active", at(2024, 4, 4, 4, 4, 4, 404404),
                            at(2024, 4, 4, 4, 4, 4, 404404), ""),
        "sam@example.org": ("Sam Rivers", "active", at(2023, 12, 12, 12, 12, 12),
                            at(2023, 12, 12, 12, 12, 12), ""),
        "unsub@example.org": ("", "unsubscribed", at(2022, 6, 6, 6, 6, 6),
                              at(2022, 6, 6, 6, 6, 6), ""),
        "dead@example.org": ("", "bounced", at(2022, 7, 7, 7, 7, 7), at(2022, 7, 7, 7, 7, 7),
                             "")},
    "listmonk.csv": {
        "ola@example.org": ("Ola Nordmann", "active", at(2024, 1, 20, 9, 0, 0, 123456),
                            at(2024, 1, 20, 9, 0, 0, 123456), ""),
        "blocked@example.org": ("Bo Blocked", "unsubscribed", at(2023, 3, 3, 3, 3, 3),
                                at(2023, 3, 3, 3, 3, 3), "")},
}
LABELS = {"mailchimp": "Mailchimp members export", "substack": "Substack email list export",
          "buttondown": "Buttondown subscribers export",
          "listmonk": "listmonk subscribers export"}


def stored(store, emails) -> dict:
    found = {}
    for email in emails:
        sub = store.subscribers.by_email(email)
        found[email] = (sub.name, sub.status, sub.created_at, sub.confirmed_at, sub.timezone)
    return found


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_export_keeps_names_consent_times_and_who_left(name, run_cli, instance, store,
                                                             tmp_path):
    tool = name.split("_")[0].removesuffix(".csv")
    result = run_cli("-C", instance, "subscribers", "import", SAMPLES / name)
    assert result.exit_code == 0, result.stderr
    expected = EXPECTED[name]
    assert f"{len(expected)} added" in result.stdout
    assert f"read as {LABELS[tool]}" in result.stderr
    assert stored(store, expected) == expected
    # Round trip: our export, imported into another instance, holds the same.
    out = tmp_path / "ours.csv"
    export_file(store, out)
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        report = import_file(load_settings(instance), other, out, NOW)
        assert report.added == len(expected) and not report.bad
        assert stored(other, expected) == expected
    finally:
        other.close()


def test_the_report_says_what_each_column_became(run_cli, instance):
    result = run_cli("-C", instance, "subscribers", "import",
                     SAMPLES / "mailchimp_unsubscribed.csv")
    report = result.stderr
    for column, role in [("Email Address", "email"), ("First Name", "name (first part)"),
                         ("OPTIN_TIME", "created (the opt-in: consent time)"),
                         ("CONFIRM_TIME", "confirmed"), ("UNSUB_TIME", "status unsubscribed"),
                         ("MEMBER_RATING", "ignored"), ("TAGS", "ignored")]:
        assert f"{column} -> {role}" in report


def test_named_format_and_a_mismatch(run_cli, instance, store):
    ok = run_cli("-C", instance, "subscribers", "import", "--from", "listmonk",
                 SAMPLES / "listmonk.csv")
    assert ok.exit_code == 0 and "2 added" in ok.stdout
    wrong = run_cli("-C", instance, "subscribers", "import", "--from", "mailchimp",
                    SAMPLES / "substack.csv")
    assert wrong.exit_code == 1
    assert "does not look like a Mailchimp members export" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_people_who_left_are_not_made_active_by_a_later_subscribed_export(run_cli, instance,
                                                                          store, tmp_path):
    run_cli("-C", instance, "subscribers", "import", SAMPLES / "mailchimp_unsubscribed.csv")
    again = tmp_path / "subscribed.csv"
    header = (SAMPLES / "mailchimp_subscribed.csv").read_text().splitlines()[0]
    again.write_text(header + '\ngrace@example.org,Grace,Hopper,,,3,"2023-11-02 08:00:00",'
                     + ",,,,,,,,,,,,,,\n")
    result = run_cli("-C", instance, "subscribers", "import", again)
    assert "1 left unsubscribed or bounced" in result.stdout
    assert store.subscribers.by_email("grace@example.org").status == "unsubscribed"
