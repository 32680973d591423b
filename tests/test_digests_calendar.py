"""The due rule at the edges of the calendar, each with a fixed `now`: around the send
time on a Monday, Sunday night in New York (Monday in UTC), the daylight-saving changes
in New York and London (the missing and the repeated hour), New Year, and Feb 29."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from publisher.config import load_settings
from publisher.digests.planner import due, schedule
from publisher.store.queueing import Candidate

MONDAY_SEND = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # Monday, the default daily_at
SECOND = timedelta(seconds=1)


@pytest.fixture
def settings(tmp_path):
    return load_settings(tmp_path, environ={})


def at(settings, **digest):
    return replace(settings, digest=replace(settings.digest, **digest))


def subscriber(frequency="daily", timezone="", last=None, joined=None) -> Candidate:
    joined = joined or datetime(2020, 1, 1, tzinfo=UTC)
    return Candidate(1, "a@example.org", frequency, (), timezone, 0, last, joined)


def label(settings, now, who) -> str | None:
    return due(who, schedule(settings, now))


def digests_in(settings, who: Candidate, start: datetime, end: datetime,
               step: timedelta = timedelta(minutes=5)) -> list[tuple[datetime, str]]:
    """Walk the clock from start to end as the daemon's minute job does; each time the
    subscriber is due, they get their digest then. Returns (when, label) of each."""
    sent = []
    now = start
    while now <= end:
        found = label(settings, now, who)
        if found:
            sent.append((now, found))
            who = replace(who, last_digest_at=now)
        now += step
    return sent


# --------------------------------------------------------------- Monday at daily_at
def test_monday_just_before_and_at_the_send_time(settings):
    yesterday = subscriber(last=MONDAY_SEND - timedelta(days=1) + SECOND)
    assert label(settings, MONDAY_SEND - SECOND, yesterday) is None
    assert label(settings, MONDAY_SEND, yesterday) == "daily:2026-11-30"
    last_week = subscriber("weekly", last=MONDAY_SEND - timedelta(days=7) + SECOND)
    assert label(settings, MONDAY_SEND - SECOND, last_week) is None
    assert label(settings, MONDAY_SEND, last_week) == "weekly:2026-W49"


def test_a_subscriber_who_joined_after_the_send_time_waits_for_the_next(settings):
    joined_late = subscriber("weekly", joined=MONDAY_SEND + SECOND)
    assert label(settings, MONDAY_SEND + timedelta(days=6, hours=23), joined_late) is None
    assert label(settings, MONDAY_SEND + timedelta(days=7), joined_late) == "weekly:2026-W50"


def test_sunday_night_in_new_york_is_monday_in_utc(settings):
    sunday_night_ny = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # Sunday 22:00 EST
    last_monday = datetime(2026, 11, 23, 12, 0, 5, tzinfo=UTC)  # just after 07:00 EST
    ny = subscriber("weekly", "America/New_York", last=last_monday)
    utc = subscriber("weekly", "UTC", last=last_monday - timedelta(hours=5))
    assert label(settings, sunday_night_ny, ny) is None
    assert label(settings, sunday_night_ny, utc) is None  # 07:00 UTC has not come either
    monday_8_utc = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 03:00 in New York
    assert label(settings, monday_8_utc, utc) == "weekly:2026-W49"
    assert label(settings, monday_8_utc, ny) is None
    assert label(settings, datetime(2026, 11, 30, 12, 0, tzinfo=UTC), ny) == "weekly:2026-W49"
    # A daily New Yorker's period is named by the local date: still Sunday there.
    daily_ny = subscriber("daily", "America/New_York",
                          last=datetime(2026, 11, 28, 12, 0, 5, tzinfo=UTC))
    assert label(settings, sunday_night_ny, daily_ny) == "daily:2026-11-29"


# --------------------------------------------------------------- daylight saving
@pytest.mark.parametrize("zone_name, change_day, send_at", [
    # The US springs forward on 2026-03-08 (02:00 EST -> 03:00 EDT): 02:30 never happens.
    ("America/New_York", datetime(2026, 3, 8, tzinfo=UTC), "02:30"),
    # The UK on 2026-03-29 (01:00 GMT -> 02:00 BST): 01:30 never happens.
    ("Europe/London", datetime(2026, 3, 29, tzinfo=UTC), "01:30"),
])
def test_a_send_time_in_the_missing_hour_still_sends_once_that_day(settings, zone_name,
                                                                      change_day, send_at):
    local = at(settings, daily_at=send_at)
    who = subscriber("daily", zone_name, last=change_day)
    sent = digests_in(local, who, change_day, change_day + timedelta(days=1))
    assert [found for _, found in sent] == [f"daily:{change_day.date().isoformat()}"]


@pytest.mark.parametrize("zone_name, change_day, send_at", [
    # The US falls back on 2026-11-01 (02:00 EDT -> 01:00 EST): 01:30 happens twice.
    ("America/New_York", datetime(2026, 11, 1, tzinfo=UTC), "01:30"),
    # The UK on 2026-10-25 (02:00 BST -> 01:00 GMT): 01:30 happens twice.
    ("Europe/London", datetime(2026, 10, 25, tzinfo=UTC), "01:30"),
])
def test_a_send_time_in_the_repeated_hour_sends_once_not_twice(settings, zone_name, change_day,
                                                               send_at):
    local = at(settings, daily_at=send_at)
    start = change_day - timedelta(hours=4)  # the evening before, in either zone
    who = subscriber("daily", zone_name, last=start)
    sent = digests_in(local, who, start, change_day + timedelta(days=1, hours=-4))
    assert [found for _, found in sent] == [f"daily:{change_day.date().isoformat()}"]


@pytest.mark.parametrize("zone_name, start", [
    ("America/New_York", datetime(2026, 3, 5, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 10, 29, tzinfo=UTC)),
    ("Europe/London", datetime(2026, 3, 26, tzinfo=UTC)),
    ("Europe/London", datetime(2026, 10, 22, tzinfo=UTC)),
])
def test_across_a_change_the_local_send_time_holds_and_every_day_gets_one(settings, zone_name,
                                                                          start):
    who = subscriber("daily", zone_name, last=start)
    sent = digests_in(settings, who, start, start + timedelta(days=7))
    assert len(sent) == 7
    assert len({found for _, found in sent}) == 7
    from zoneinfo import ZoneInfo

    for when, _ in sent:  # found within one step (5 minutes) of 07:00 local
        local = when.astimezone(ZoneInfo(zone_name))
        assert (local.hour, local.minute // 5) == (7, 0), local


# --------------------------------------------------------------- New Year, Feb 29
def test_new_years_eve_and_day(settings):
    eve = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    who = subscriber(last=datetime(2026, 12, 31, 7, 0, 5, tzinfo=UTC))
    assert label(settings, eve, who) is None
    assert label(settings, eve + timedelta(minutes=1), who) is None  # 00:00, before 07:00
    assert label(settings, datetime(2027, 1, 1, 7, 0, tzinfo=UTC), who) == "daily:2027-01-01"
    # Weekly: the Monday of 2026's ISO week 53, then week 1 of 2027.
    weekly = subscriber("weekly", last=datetime(2026, 12, 21, 7, 0, 5, tzinfo=UTC))
    assert label(settings, eve, weekly) == "weekly:2026-W53"
    weekly = replace(weekly, last_digest_at=datetime(2026, 12, 28, 7, 0, 5, tzinfo=UTC))
    assert label(settings, datetime(2027, 1, 4, 6, 59, tzinfo=UTC), weekly) is None
    assert label(settings, datetime(2027, 1, 4, 7, 0, tzinfo=UTC), weekly) == "weekly:2027-W01"


def test_new_year_in_a_zone_ahead_of_utc(settings):
    # 2026-12-31 18:00 UTC is 07:00 on Jan 1 in Auckland (NZDT, UTC+13).
    who = subscriber("daily", "Pacific/Auckland",
                     last=datetime(2026, 12, 30, 18, 0, 5, tzinfo=UTC))
    assert label(settings, datetime(2026, 12, 31, 17, 59, tzinfo=UTC), who) is None
    assert label(settings, datetime(2026, 12, 31, 18, 0, tzinfo=UTC), who) == "daily:2027-01-01"


def test_february_29(settings):
    leap_day = datetime(2028, 2, 29, 7, 0, tzinfo=UTC)  # a Tuesday
    who = subscriber(last=leap_day - timedelta(days=1))
    assert label(settings, leap_day, who) == "daily:2028-02-29"
    tuesdays = at(settings, weekly_on="tuesday")
    weekly = subscriber("weekly", last=leap_day - timedelta(days=7))
    assert label(tuesdays, leap_day - SECOND, weekly) is None
    assert label(tuesdays, leap_day, weekly) == "weekly:2028-W09"
    # The day after is March 1, and the days of a leap February are all there.
    sent = digests_in(settings, subscriber(last=datetime(2028, 2, 27, 8, tzinfo=UTC)),
                      datetime(2028, 2, 28, tzinfo=UTC), datetime(2028, 3, 1, 23, tzinfo=UTC))
    assert [found for _, found in sent] == ["daily:2028-02-28", "daily:2028-02-29",
                                            "daily:2028-03-01"]
