"""Subscriber CSV import and export, through the command line and on a real store."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis.strategies import from_regex, one_of, sampled_from, text
from sqlalchemy import update

from publisher.addresses import normalize_address
from publisher.errors import AddressError, InputError
from publisher.ingest.inbox import ingest
from publisher.store.schema import subscribers
from publisher.subscribers import csv_io as subscriber_csv
from publisher.subscribers.csv_io import import_text, normalize_listed_address
from tests.support import NOW, REPO
from tests.support.mail import write_articles

EXAMPLE = REPO / "subscribers" / "example.csv"
HEADER = "email,name,frequency,sections,timezone,status,created\n"


def snapshot(store) -> list:
    """Everything import may touch, updated_at included: 'changes nothing' means this."""
    return list(store.subscribers.stream())


def test_import_example_then_again_changes_nothing(run_cli, instance, store):
    result = run_cli("-C", instance, "subscribers", "import", EXAMPLE)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ("import: 3 added, 0 updated, 0 unchanged, "
                                     "0 left unsubscribed or bounced, 0 bad rows")
    before = snapshot(store)
    jose = store.subscribers.by_email("jose@example.org")
    assert (jose.name, jose.frequency, jose.sections, jose.timezone, jose.status) == \
        ("José Martí", "instant", ("world", "culture"), "America/Havana", "active")
    assert jose.created_at.isoformat() == "2026-11-03T10:00:00+00:00"
    assert store.subscribers.by_email("ada@example.org").sections == ()

    again = run_cli("-C", instance, "subscribers", "import", EXAMPLE)
    assert "0 added, 0 updated, 3 unchanged" in again.stdout
    assert snapshot(store) == before


def test_bad_rows_are_reported_with_line_numbers_and_the_rest_imported(run_cli, instance,
                                                                       store, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text(
        HEADER
        + "ok1@example.org,One,daily,,,,\n"                       # 2
        + "not-an-address,Two,daily,,,,\n"                        # 3
        + "ok2@example.org,Two,hourly,,,,\n"                      # 4
        + "ok3@example.org,Three,,,Mars/Base,,\n"                 # 5
        + '"ok4@example.org","Multi\nLine",daily,,,,\n'          # 6-7
        + "ok5@example.org,Five,,,,gone,\n"                       # 8
        + "\n"                                                    # 9 (blank: skipped)
        + "OK1@example.org,Dup,,,,,\n"                            # 10
        + "ok6@example.org,Six,,,,,yesterday\n"                   # 11
        + "ok7@example.org,Seven,,,,,,extra\n"                    # 12
        + ",NoAddress,,,,,\n"                                     # 13
        + "ok8@example.org,Eight,weekly,World;Science,europe/berlin,pending,2026-10-01\n"
    )
    result = run_cli("-C", instance, "subscribers", "import", path)
    assert result.exit_code == 1
    assert result.stdout.strip() == ("import: 2 added, 0 updated, 0 unchanged, "
                                     "0 left unsubscribed or bounced, 9 bad rows")
    expected = {
        3: "not a valid address", 4: "frequency 'hourly'", 5: "time zone 'Mars/Base'",
        6: "contains a line break", 8: "status 'gone'", 10: "already on line 2",
        11: "created 'yesterday'", 12: "has 8 fields; the header has 7",
        13: "email is empty",
    }
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith(f"{path}:") for line in lines)
    reported = {int(line[len(str(path)) + 1:].split(":")[0]): line for line in lines}
    assert sorted(reported) == sorted(expected)
    for number, reason in expected.items():
        assert reason in reported[number], reported[number]
    eight = store.subscribers.by_email("ok8@example.org")
    assert (eight.frequency, eight.sections, eight.timezone, eight.status) == \
        ("weekly", ("world", "science"), "Europe/Berlin", "pending")
    assert eight.created_at.isoformat() == "2026-10-01T00:00:00+00:00"
    assert eight.confirmed_at is None
    assert {s.email for s in store.subscribers.stream()} == {"ok1@example.org",
                                                            "ok8@example.org"}


def test_unsubscribed_and_bounced_stay_out_unless_resubscribe(settings, store):
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    store.subscribers.unsubscribe(ada.id, NOW)
    bo = store.subscribers.add("bo@example.org", NOW, status="active")
    store.subscribers.change(bo.id, NOW, status="bounced")
    cy = store.subscribers.add("cy@example.org", NOW, status="active")
    text = (HEADER + "ada@example.org,Ada,weekly,,,active,\n"
            "bo@example.org,,,,,,\nCY@example.org,,,,,unsubscribed,\n")
    report = import_text(settings, store, text, "list.csv", NOW + timedelta(hours=1))
    assert (report.added, report.updated, report.unchanged, report.kept) == (0, 2, 1, 1)
    after = {s.email: s for s in store.subscribers.stream()}
    # Their other choices are taken, never the re-subscription.
    assert (after["ada@example.org"].status, after["ada@example.org"].frequency) == \
        ("unsubscribed", "weekly")
    assert after["bo@example.org"].status == "bounced"
    # Honouring an unsubscribe from another system is always allowed.
    assert after["cy@example.org"].status == "unsubscribed"
    assert after["cy@example.org"].token_version == cy.token_version

    later = NOW + timedelta(hours=2)
    report = import_text(settings, store, text, "list.csv", later, resubscribe=True)
    assert report.updated == 1 and report.kept == 0
    back = store.subscribers.by_email("ada@example.org")
    assert back.status == "active" and back.confirmed_at == NOW  # confirmed before


def test_activation_by_import_restarts_the_cursor(settings, store):
    pending = store.subscribers.add("ada@example.org", NOW, status="pending", cursor=0)
    with store.writing() as conn:
        conn.execute(update(subscribers).values(bounce_count=2))
    write_articles(settings, ("world", "One"), ("world", "Two"))
    ingest(settings, store, NOW)
    import_text(settings, store, HEADER + "ada@example.org,,,,,active,\n", "x.csv", NOW)
    active = store.subscribers.by_id(pending.id)
    assert (active.status, active.cursor, active.bounce_count) == ("active", 2, 0)
    assert active.confirmed_at == NOW


def test_export_round_trip(run_cli, instance, store, tmp_path):
    run_cli("-C", instance, "subscribers", "import", EXAMPLE)
    run_cli("-C", instance, "subscribers", "remove", "grace@example.org")
    out = tmp_path / "out" / "all.csv"
    result = run_cli("-C", instance, "subscribers", "export", out)
    assert result.exit_code == 0 and result.stdout.strip() == \
        f"exported 3 subscribers to {out}"
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == list(subscriber_csv.COLUMNS)
    assert rows[2] == {"email": "jose@example.org", "name": "José Martí",
                       "frequency": "instant", "sections": "world;culture",
                       "timezone": "America/Havana", "status": "active",
                       "created": "2026-11-03T10:00:00+00:00",
                       "confirmed": "2026-11-03T10:00:00+00:00"}
    assert rows[1]["status"] == "unsubscribed"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    before = snapshot(store)
    again = run_cli("-C", instance, "subscribers", "import", out)
    assert "0 added, 0 updated, 3 unchanged" in again.stdout
    assert snapshot(store) == before

    to_stdout = run_cli("-C", instance, "subscribers", "export", "--status", "active")
    assert to_stdout.stdout.splitlines()[1:] == [
        line for line in out.read_text(encoding="utf-8").splitlines()[1:]
        if line.split(",")[5] == "active"]


def test_encodings_headers_and_batches(settings, store, tmp_path, monkeypatch):
    monkeypatch.setattr(subscriber_csv, "BATCH", 3)
    rows = "".join(f"p{n}@example.org,Person {n}\n" for n in range(10))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + f"Email Address,Name,Favourite colour\n{rows}".encode())
    report = subscriber_csv.import_file(settings, store, bom, NOW)
    assert (report.added, report.encoding, report.ignored_columns) == \
        (10, "utf-8", ["favourite colour"])
    latin = tmp_path / "excel.csv"
    latin.write_bytes("email,name\np0@example.org,Zoë\n".encode("cp1252"))
    report = subscriber_csv.import_file(settings, store, latin, NOW)
    assert (report.updated, report.encoding) == (1, "windows-1252")
    assert store.subscribers.by_email("p0@example.org").name == "Zoë"
    # Columns the file does not have are left alone.
    assert store.subscribers.by_email("p0@example.org").frequency == "daily"


@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty"),
    ("name,frequency\nAda,daily\n", "has no email column"),
])
def test_unusable_files_are_refused_before_anything_is_stored(settings, store, text,
                                                              message):
    with pytest.raises(InputError, match=message):
        import_text(settings, store, text, "list.csv", NOW)


def test_import_of_a_missing_file_is_one_line(run_cli, instance, tmp_path):
    result = run_cli("-C", instance, "subscribers", "import", tmp_path / "nope.csv")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"publisher: {tmp_path / 'nope.csv'}: cannot read")
    assert "Traceback" not in result.output


def test_export_empty_list_has_the_header(run_cli, instance):
    result = run_cli("-C", instance, "subscribers", "export")
    assert list(csv.reader(io.StringIO(result.stdout))) == [list(subscriber_csv.COLUMNS)]


DOMAINS = ["example.org", "EXAMPLE.org", "例え.jp", "xn--r8jz45g.jp", "mail.example.co.uk",
           "localhost", "-bad.org", "under_score.org", "x.123", "a" * 63 + ".org",
           ".".join(["b" * 60] * 4), "example.org.", "[127.0.0.1]", "exa mple.org", ""]


@pytest.mark.slow  # 400 generated addresses through two validators, several seconds
@hypothesis_settings(max_examples=400, deadline=None)
@given(local=one_of(text(alphabet="aZz09._+-!#'\"@ ßé<>\\", max_size=70),
                    from_regex(r"[A-Za-z0-9+_-]{1,40}(\.[A-Za-z0-9]{1,30}){0,2}",
                               fullmatch=True)),
       domain=sampled_from(DOMAINS))
def test_listed_address_check_agrees_with_email_validator(local, domain):
    address = f"{local}@{domain}"
    try:
        expected = normalize_address(address)
    except AddressError:
        with pytest.raises(AddressError):
            normalize_listed_address(address)
    else:
        assert normalize_listed_address(address) == expected
