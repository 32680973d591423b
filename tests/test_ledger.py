"""The digest and outbox ledger on SQLite and PostgreSQL: each digest queued once (also
from concurrent runs), leases, outcomes, bounces, retries."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from publisher.config import load_settings
from publisher.digests.planner import digest_message_id, queue_digests, starting_cursor
from publisher.store import open_store
from publisher.store.ledger import Outcome
from tests.support import NOW
from tests.support.mail import add_articles, add_subscriber

WORLD = ("world",)
SCIENCE = ("science",)


@pytest.fixture
def filled(settings, store):
    """Five articles (3 world, 2 science) and three subscribers due at NOW."""
    seqs = add_articles(store, [("W1", WORLD), ("S1", SCIENCE), ("W2", WORLD),
                                ("S2", SCIENCE), ("W3", WORLD)], NOW - timedelta(days=1))
    subs = [add_subscriber(store, "all@example.org", NOW),
            add_subscriber(store, "world@example.org", NOW, sections=["world"]),
            add_subscriber(store, "none@example.org", NOW, sections=["sports"])]
    return seqs, subs


def test_queue_holds_matching_articles_newest_first_and_advances_cursor(settings, store,
                                                                        filled):
    seqs, (everything, world, nothing) = filled
    report = queue_digests(settings, store, NOW)
    assert (report.queued, report.checked) == (2, 3)
    rows = {r["subscriber_id"]: r for r in store.ledger.digest_messages()}
    assert rows[everything.id]["article_seqs"] == seqs[::-1]
    assert rows[world.id]["article_seqs"] == [seqs[4], seqs[2], seqs[0]]
    assert rows[everything.id]["period"] == "daily:2026-11-24"
    assert rows[everything.id]["state"] == "queued"
    assert rows[everything.id]["message_id"] == digest_message_id(
        settings, rows[everything.id]["id"])
    assert nothing.id not in rows
    assert store.subscribers.by_id(everything.id).cursor == seqs[4]
    assert store.subscribers.by_id(world.id).cursor == seqs[4]
    assert store.subscribers.by_id(nothing.id).cursor == 0  # nothing new: it stays


def test_a_second_pass_queues_nothing(settings, store, filled):
    assert queue_digests(settings, store, NOW).queued == 2
    assert queue_digests(settings, store, NOW).queued == 0
    assert queue_digests(settings, store, NOW + timedelta(hours=2)).queued == 0
    assert len(store.ledger.digest_messages()) == 2
    # Tomorrow, with nothing new: still nothing.
    assert queue_digests(settings, store, NOW + timedelta(days=1)).queued == 0


def test_only_what_is_new_next_time(settings, store, filled):
    _, (everything, _, _) = filled
    queue_digests(settings, store, NOW)
    newer = add_articles(store, [("S3", SCIENCE)], NOW + timedelta(hours=1))
    tomorrow = NOW + timedelta(days=1)
    assert queue_digests(settings, store, tomorrow).queued == 1
    latest = store.ledger.digest_messages()[-1]
    assert latest["subscriber_id"] == everything.id
    assert latest["article_seqs"] == newer and latest["period"] == "daily:2026-11-25"


def test_max_articles_and_the_rest_counted(settings, store):
    add_articles(store, [(f"A{n}", WORLD) for n in range(7)], NOW - timedelta(hours=5))
    add_subscriber(store, "a@example.org", NOW)
    few = replace(settings, digest=replace(settings.digest, max_articles=3))
    queue_digests(few, store, NOW)
    (row,) = store.ledger.digest_messages()
    assert len(row["article_seqs"]) == 3 and row["more"] == 4


def test_instant_and_now_periods_and_once(settings, store, filled):
    seqs, (everything, _, _) = filled
    store.subscribers.change(everything.id, NOW, frequency="instant")
    assert queue_digests(settings, store, NOW).queued == 2
    periods = {r["period"] for r in store.ledger.digest_messages()}
    assert f"instant:{seqs[4]}" in periods
    # send --now: every active subscriber is due, but only for what is new to them.
    assert queue_digests(settings, store, NOW, everyone=True).queued == 0
    newer = add_articles(store, [("W4", WORLD)], NOW)
    assert queue_digests(settings, store, NOW + timedelta(minutes=5), everyone=True).queued \
        == 2
    assert {r["period"] for r in store.ledger.digest_messages()} >= {f"now:{newer[0]}"}


def test_inactive_subscribers_get_nothing(settings, store, filled):
    _, (everything, world, _) = filled
    store.subscribers.change(everything.id, NOW, status="unsubscribed")
    store.subscribers.change(world.id, NOW, status="bounced")
    assert queue_digests(settings, store, NOW, everyone=True).queued == 0


def test_new_subscribers_start_at_the_newest_article(settings, store, filled):
    seqs, _ = filled
    assert starting_cursor(settings, store) == seqs[-1]
    recent = replace(settings, digest=replace(settings.digest, first_digest_recent=2))
    assert starting_cursor(recent, store) == seqs[3] - 1
    assert starting_cursor(recent, store, ("science",)) == seqs[1] - 1
    assert starting_cursor(recent, store, ("sports",)) == seqs[-1]
    joined = add_subscriber(store, "new@example.org", NOW,
                            cursor=starting_cursor(recent, store))
    queue_digests(recent, store, NOW)
    mine = [r for r in store.ledger.digest_messages() if r["subscriber_id"] == joined.id]
    assert mine[0]["article_seqs"] == [seqs[4], seqs[3]]


def test_concurrent_runs_queue_each_digest_once(settings, store, monkeypatch):
    add_articles(store, [(f"A{n}", WORLD) for n in range(3)], NOW - timedelta(hours=5))
    for n in range(60):
        add_subscriber(store, f"r{n}@example.org", NOW, sections=["world"] if n % 2 else [])
    small = replace(settings, digest=replace(settings.digest))
    import publisher.digests.planner as digests

    errors = []

    def one_run():
        other = open_store(settings.database_url)  # a process of its own, as far as the
        try:                                       # database can tell
            digests.queue_digests(small, other, NOW)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            other.close()

    monkeypatch.setattr(digests, "BATCH", 7)  # many small transactions interleave
    threads = [threading.Thread(target=one_run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    rows = store.ledger.digest_messages()
    assert len(rows) == 60
    assert len({r["subscriber_id"] for r in rows}) == 60
    assert store.ledger.counts()["queued"] == 60


def claim_all(store, now, lease=timedelta(minutes=10), node="node-a"):
    return store.ledger.claim(now, 100, now + lease, node)


def test_claim_leases_rows_and_expired_leases_come_back(settings, store, filled):
    queue_digests(settings, store, NOW)
    claimed = claim_all(store, NOW)
    assert len(claimed) == 2 and all(c.status == "active" for c in claimed)
    assert claimed[0].article_seqs and claimed[0].kind == "digest"
    assert claim_all(store, NOW, node="node-b") == []  # leased to node-a
    assert store.ledger.counts()["sending"] == 2
    assert store.ledger.release_expired(NOW + timedelta(minutes=5)) == 0
    assert store.ledger.release_expired(NOW + timedelta(minutes=11)) == 2
    again = claim_all(store, NOW + timedelta(minutes=11), node="node-b")
    assert [c.message_id for c in again] == [c.message_id for c in claimed]


def test_outcomes_sent_deferred_failed_and_stale_owner(settings, store, filled):
    queue_digests(settings, store, NOW)
    first, second = claim_all(store, NOW)
    store.ledger.record([
        Outcome(first.id, first.subscriber_id, "sent", 250, attempts=1),
        Outcome(second.id, second.subscriber_id, "deferred", 451, "try later",
                NOW + timedelta(minutes=3), 1),
    ], NOW, "node-a", bounce_after=3)
    assert store.ledger.counts() | {} == {"queued": 0, "sending": 0, "deferred": 1, "sent": 1,
                                          "failed": 0}
    assert claim_all(store, NOW + timedelta(minutes=1)) == []  # not due yet
    (retry,) = claim_all(store, NOW + timedelta(minutes=4), node="node-b")
    assert retry.id == second.id and retry.attempts == 1
    # node-a's lease is gone: what it says about the row no longer counts.
    store.ledger.record([Outcome(second.id, second.subscriber_id, "failed", 550, "no")],
                        NOW, "node-a", bounce_after=3)
    assert store.ledger.counts()["sending"] == 1
    errors = store.ledger.latest_errors()
    assert errors and errors[0]["last_error"] == "try later"


def test_consecutive_bounces_mark_the_subscriber_and_a_delivery_resets(settings, store,
                                                                       filled):
    _, (everything, _, _) = filled
    queue_digests(settings, store, NOW)

    def bounce(when):
        rows = [r for r in claim_all(store, when) if r.subscriber_id == everything.id]
        store.ledger.record([Outcome(r.id, r.subscriber_id, "failed", 550, "unknown user",
                                     attempts=1, bounce=True) for r in rows],
                            when, "node-a", bounce_after=2)

    bounce(NOW)
    assert store.subscribers.by_id(everything.id).bounce_count == 1
    assert store.subscribers.by_id(everything.id).status == "active"
    assert store.ledger.retry_failed(NOW) == 1
    rows = [r for r in claim_all(store, NOW) if r.subscriber_id == everything.id]
    store.ledger.record([Outcome(rows[0].id, everything.id, "sent", 250)], NOW, "node-a", 2)
    assert store.subscribers.by_id(everything.id).bounce_count == 0
    for day in (1, 2):
        add_articles(store, [(f"N{day}", WORLD)], NOW + timedelta(days=day - 1, hours=1))
        queue_digests(settings, store, NOW + timedelta(days=day))
        bounce(NOW + timedelta(days=day))
    bounced = store.subscribers.by_id(everything.id)
    assert (bounced.status, bounced.bounce_count) == ("bounced", 2)


def test_prune_keeps_recent_and_unsent_and_never_requeues(settings, store, filled):
    queue_digests(settings, store, NOW)
    first, _ = claim_all(store, NOW)
    store.ledger.record([Outcome(first.id, first.subscriber_id, "sent", 250)], NOW, "node-a", 3)
    assert store.ledger.prune(NOW) == 0
    assert store.ledger.prune(NOW + timedelta(seconds=1)) == 1
    assert sum(store.ledger.counts().values()) == 1
    (left,) = store.ledger.digest_messages()
    assert left["subscriber_id"] != first.subscriber_id
    # The forgotten digest's period is over: the same pass again queues nothing.
    assert queue_digests(settings, store, NOW + timedelta(hours=1)).queued == 0


def test_settings_fixture_reads_the_backend(settings, instance):
    assert load_settings(instance).database_url == settings.database_url


def test_a_sender_still_working_keeps_its_lease(settings, store, filled):
    queue_digests(settings, store, NOW)
    rows = claim_all(store, NOW, lease=timedelta(seconds=30))
    later = NOW + timedelta(seconds=20)
    store.ledger.extend_leases([r.id for r in rows], later + timedelta(seconds=30), "node-a")
    store.ledger.extend_leases([r.id for r in rows], NOW, "node-b")  # not node-b's rows
    assert store.ledger.release_expired(NOW + timedelta(seconds=40)) == 0
    assert store.ledger.release_expired(NOW + timedelta(seconds=51)) == 2
