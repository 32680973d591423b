"""Who is due, as pure functions of `now`; the retry schedule."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from publisher.addresses import message_domain
from publisher.config import load_settings
from publisher.delivery.drain import retry_delay
from publisher.digests.planner import due, latest_send_time, schedule, zone
from publisher.store.queueing import Candidate

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path):
    return load_settings(tmp_path, environ={})


def candidate(frequency="daily", timezone="", last=None, joined=None) -> Candidate:
    return Candidate(1, "a@example.org", frequency, (), timezone, 0, last,
                     joined or TUESDAY_NOON - timedelta(days=30))


def test_daily_send_time_is_today_once_it_has_passed(settings):
    send, label = latest_send_time("daily", zone("", "UTC"), TUESDAY_NOON, settings.digest)
    assert send == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    assert label == "daily:2026-11-24"
    before = TUESDAY_NOON.replace(hour=6, minute=59)
    send, label = latest_send_time("daily", zone("", "UTC"), before, settings.digest)
    assert (send, label) == (datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "daily:2026-11-23")


def test_the_subscribers_time_zone_wins(settings):
    # 12:00 UTC is 07:00 in New York on this date (EST, UTC-5): just due there ...
    send, label = latest_send_time("daily", zone("America/New_York", "UTC"), TUESDAY_NOON,
                                   settings.digest)
    assert send == TUESDAY_NOON and label == "daily:2026-11-24"
    # ... and not yet in Los Angeles (04:00 local): yesterday's slot.
    send, label = latest_send_time("daily", zone("America/Los_Angeles", "UTC"),
                                   TUESDAY_NOON, settings.digest)
    assert label == "daily:2026-11-23"
    assert send == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def test_daylight_saving_moves_the_utc_time_not_the_local_one(settings):
    berlin = zone("Europe/Berlin", "UTC")
    summer = datetime(2026, 7, 1, 12, tzinfo=UTC)
    assert latest_send_time("daily", berlin, summer, settings.digest)[0].hour == 5  # CEST
    assert latest_send_time("daily", berlin, TUESDAY_NOON, settings.digest)[0].hour == 6  # CET


def test_weekly_send_time_is_the_last_weekly_on(settings):
    send, label = latest_send_time("weekly", zone("", "UTC"), TUESDAY_NOON, settings.digest)
    assert send == datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # Monday
    assert label == "weekly:2026-W48"
    monday_early = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    send, label = latest_send_time("weekly", zone("", "UTC"), monday_early, settings.digest)
    assert send == datetime(2026, 11, 16, 7, 0, tzinfo=UTC) and label == "weekly:2026-W47"


def due_at(settings, now, subscriber, everyone=False):
    return due(subscriber, schedule(settings, now), everyone)


def test_a_subscriber_is_due_when_the_send_time_passed_since_their_last_digest(settings):
    assert due_at(settings, TUESDAY_NOON, candidate(last=TUESDAY_NOON - timedelta(days=1))) \
        == "daily:2026-11-24"
    assert due_at(settings, TUESDAY_NOON, candidate(last=TUESDAY_NOON.replace(hour=7, minute=5))) \
        is None
    # Never had one: counted from when they joined.
    assert due_at(settings, TUESDAY_NOON, candidate(joined=TUESDAY_NOON.replace(hour=8))) is None
    assert due_at(settings, TUESDAY_NOON, candidate(joined=TUESDAY_NOON.replace(hour=6))) \
        == "daily:2026-11-24"


def test_instant_is_always_due_and_now_treats_everyone_as_due(settings):
    just_sent = TUESDAY_NOON - timedelta(minutes=1)
    assert due_at(settings, TUESDAY_NOON, candidate("instant", last=just_sent)) == "instant"
    assert due_at(settings, TUESDAY_NOON, candidate("weekly", last=just_sent)) is None
    assert due_at(settings, TUESDAY_NOON, candidate("weekly", last=just_sent), everyone=True) \
        == "now"


def test_configured_send_time_and_default_zone(settings):
    later = replace(settings, digest=replace(settings.digest, daily_at="13:30",
                                             timezone="Asia/Tokyo"))
    # 12:00 UTC is 21:00 in Tokyo: today's 13:30 Tokyo slot (04:30 UTC) has passed.
    send, label = latest_send_time("daily", zone("", later.digest_timezone), TUESDAY_NOON,
                                   later.digest)
    assert send == datetime(2026, 11, 24, 4, 30, tzinfo=UTC) and label == "daily:2026-11-24"


def test_an_unknown_zone_falls_back_to_the_default():
    assert zone("Mars/Olympus", "Europe/Paris").key == "Europe/Paris"


@pytest.mark.parametrize("max_attempts", [2, 3, 5, 10, 16, 40])
def test_retries_spread_over_at_least_a_day_and_grow(max_attempts):
    low = random.Random(1)
    low.uniform = lambda a, b: a  # the smallest jitter there is
    delays = [retry_delay(n, max_attempts, low) for n in range(1, max_attempts)]
    assert sum(delays, timedelta()) >= timedelta(hours=24)
    assert delays == sorted(delays)
    assert delays[0] >= timedelta(minutes=1)


def test_retry_jitter_only_adds():
    rng = random.Random(7)
    plain = retry_delay(3, 10, type("R", (), {"uniform": staticmethod(lambda a, b: a)})())
    jittered = {retry_delay(3, 10, rng) for _ in range(50)}
    assert len(jittered) > 40
    assert all(plain <= d <= plain * 1.25 for d in jittered)


def test_message_domain_prefers_the_site_and_falls_back_to_from(settings):
    assert message_domain(settings) == "example.org"  # the site is http://127.0.0.1:8080/
    named = replace(settings, site=replace(settings.site, url="https://news.example.com/x/"))
    assert message_domain(named) == "news.example.com"
