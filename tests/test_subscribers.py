"""Subscribers: the rules for joining, confirming and leaving, on a real store."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from publisher.errors import AddressError
from publisher.ingest.inbox import ingest
from publisher.store.schema import digests, outbox
from publisher.subscribers.rules import (
    Preferences,
    add_subscriber,
    clean_preferences,
    clean_sections,
    confirm,
    request_subscription,
    resubscribe,
)
from tests.support import NOW
from tests.support.mail import add_digest, write_articles

LATER = NOW + timedelta(hours=1)


def test_preferences_are_checked_and_normalized():
    prefs = clean_preferences(" Ada   Lovelace ", "Weekly", "World; science, Pop Culture",
                              "europe/london")
    assert prefs == Preferences("Ada Lovelace", "weekly", ("world", "science", "pop-culture"),
                                "Europe/London")
    assert clean_preferences() == Preferences()
    assert clean_sections(["World", "world", "a,b"]) == ("world", "a", "b")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("frequency", "hourly", "frequency 'hourly' is not one of instant, daily, weekly"),
    ("timezone", "Mars/Olympus", "time zone 'Mars/Olympus' is not an IANA name"),
    ("name", "Eve\r\nBcc: x@example.org", "contains a line break"),
    ("name", "=?UTF-8?Q?=0A?=Bcc: x@y.org", "hides a line break"),
    ("name", "x" * 201, "longer than 200"),
])
def test_bad_preferences_are_refused_with_the_reason(field, value, message):
    with pytest.raises(AddressError, match=message):
        clean_preferences(**{field: value})


def test_add_normalizes_and_refuses_duplicates(settings, store):
    write_articles(settings, ("world", "One"), ("science", "Two"))
    ingest(settings, store, NOW)
    added = add_subscriber(settings, store, " Ada@Example.ORG ", Preferences(name="Ada"),
                           NOW, confirmed=False)
    assert (added.email, added.status, added.cursor) == ("ada@example.org", "pending", 2)
    with pytest.raises(AddressError, match=r"already on the list \(pending\)"):
        add_subscriber(settings, store, "ada@example.org", Preferences(), NOW, confirmed=True)
    with pytest.raises(AddressError, match="not a valid address"):
        add_subscriber(settings, store, "ada@", Preferences(), NOW, confirmed=True)
    confirmed = add_subscriber(settings, store, "bo@example.org", Preferences(), NOW, True)
    assert confirmed.status == "active" and confirmed.confirmed_at == NOW


def test_subscribe_form_rules(settings, store):
    wants = Preferences("Ada", "weekly", ("world",), "Europe/Paris")
    pending = request_subscription(settings, store, "ada@example.org", wants, NOW)
    assert pending.status == "pending" and Preferences.of(pending) == wants
    # Asking again while pending: another link, with the newer choices.
    again = request_subscription(settings, store, "ADA@example.org", Preferences(), NOW)
    assert again.id == pending.id and Preferences.of(again) == Preferences()

    write_articles(settings, ("world", "One"))
    ingest(settings, store, NOW)
    active, changed = confirm(settings, store, again, LATER)
    assert changed and active.status == "active" and active.cursor == 1
    assert active.confirmed_at == LATER
    assert confirm(settings, store, active, LATER) == (active, False)

    # Someone else filling in an active subscriber's address changes nothing at all.
    assert request_subscription(settings, store, "ada@example.org", wants, LATER) is None
    assert store.subscribers.by_id(active.id) == active

    # After unsubscribing, the form sends a new link; they stay out until they follow it.
    store.subscribers.unsubscribe(active.id, LATER)
    back = request_subscription(settings, store, "ada@example.org", wants, LATER)
    assert back.status == "pending" and back.frequency == "weekly"


def test_resubscribe_needs_an_earlier_confirmation(settings, store):
    never = store.subscribers.add("new@example.org", NOW)
    with pytest.raises(AddressError, match="never confirmed"):
        resubscribe(settings, store, never, NOW)
    gone = store.subscribers.unsubscribe(
        store.subscribers.add("ada@example.org", NOW, status="active").id, NOW)
    assert gone.status == "unsubscribed"
    assert resubscribe(settings, store, gone, LATER).status == "active"


def test_unsubscribe_is_idempotent_and_keeps_links_valid(store):
    sub = store.subscribers.add("ada@example.org", NOW, status="active")
    once = store.subscribers.unsubscribe(sub.id, LATER)
    twice = store.subscribers.unsubscribe(sub.id, LATER + timedelta(hours=1))
    assert once == twice and once.status == "unsubscribed" and once.updated_at == LATER
    assert once.token_version == sub.token_version
    assert store.subscribers.revoke_links(sub.id, LATER).token_version == sub.token_version + 1


def add_message(store, subscriber_id: int | None, recipient: str, digest_id=None) -> None:
    with store.writing() as conn:
        conn.execute(insert(outbox).values(
            kind="digest" if digest_id else "confirm", digest_id=digest_id,
            subscriber_id=subscriber_id, recipient=recipient,
            message_id=f"<{recipient}.{digest_id}@example.org>", payload={},
            state="sent", attempts=1, next_attempt_at=NOW, created_at=NOW))


def test_forget_deletes_every_trace_and_ids_are_never_reused(store):
    keep = store.subscribers.add("keep@example.org", NOW, status="active")
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    add_message(store, ada.id, ada.email, add_digest(store, ada.id, "daily:2026-11-24", [1]))
    add_message(store, None, ada.email)  # a confirmation not tied to the row
    add_message(store, keep.id, keep.email, add_digest(store, keep.id, "daily:2026-11-24", [1]))

    gone = store.subscribers.forget(ada.id)
    assert (gone.subscribers, gone.digests, gone.messages) == (1, 1, 2)
    assert store.subscribers.by_email("ada@example.org") is None
    with store.reading() as conn:
        assert conn.execute(select(outbox.c.recipient)).scalars().all() == [keep.email]
        assert conn.execute(select(digests.c.subscriber_id)).scalars().all() == [keep.id]
    # Old links carry the old id: a new subscriber must never get it.
    again = store.subscribers.add("ada@example.org", NOW)
    assert again.id > ada.id
    assert store.subscribers.forget(ada.id).subscribers == 0


def test_stream_pages_through_everyone(store):
    for n in range(7):
        store.subscribers.add(f"p{n}@example.org", NOW,
                              status="active" if n % 2 else "pending")
    assert [s.email for s in store.subscribers.stream(batch=3)] == \
        [f"p{n}@example.org" for n in range(7)]
    assert [s.email for s in store.subscribers.stream(status="active", batch=2)] == \
        ["p1@example.org", "p3@example.org", "p5@example.org"]


def test_digested_seqs_and_known_sections(settings, store):
    write_articles(settings, ("world", "One"), ("science", "Two"), ("world", "Three"),
                   ("culture", "Four"))
    ingest(settings, store, NOW)
    assert store.subscribers.known_sections() == ["culture", "science", "world"]
    by_title = {a.title: a.seq for a in store.articles.latest(10)}
    ada = store.subscribers.add("ada@example.org", NOW, status="active")
    other = store.subscribers.add("bo@example.org", NOW, status="active")
    add_digest(store, ada.id, "daily:2026-11-23", [by_title["Two"], by_title["One"]])
    add_digest(store, ada.id, "daily:2026-11-24", [by_title["Three"], by_title["Two"]])
    add_digest(store, other.id, "daily:2026-11-24", [by_title["Four"]])
    assert store.subscribers.digested_seqs(ada.id, limit=10) == \
        [by_title["Three"], by_title["Two"], by_title["One"]]
    assert store.subscribers.digested_seqs(ada.id, limit=2) == \
        [by_title["Three"], by_title["Two"]]
    assert store.subscribers.digested_seqs(other.id + 1, limit=10) == []
    assert store.subscribers.digest_count(ada.id) == 2
