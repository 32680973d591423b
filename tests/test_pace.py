"""The smtp pool's pace (publisher/delivery/pace.py), driven by a fake clock: AIMD of the
connections and of the rate, a dropped connection apart from a push-back, a wait the
server names kept, a trickle only while the server keeps pushing back, recovery as soon
as mail goes through. Pure logic: no server, no sleeps."""

from __future__ import annotations

import random

import pytest

from publisher.delivery.pace import DROPS_IN_A_ROW, FREE_RATE, TRICKLE_GAP, Pace
from publisher.delivery.session import retry_after

BUSY = "421 4.7.0 Service busy, closing transmission channel"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_random_push_backs_among_answers_cost_no_pause_and_the_pool_stays_open(clock):
    pace = Pace(10, clock)
    rng = random.Random(20)
    limits = []
    for _ in range(2000):  # the bench's faulty server: 5% of messages get a 421
        if rng.random() < 0.05:
            pace.pushed_back(BUSY)
        else:
            pace.answered()
        limits.append(pace.limit)
        assert pace.delay() == 0  # nobody ever waits
    assert pace.rate is None  # never capped: 421s came with answers between
    assert sum(limits) / len(limits) >= 6  # most of the pool, most of the time
    assert pace.problem is None


def test_a_push_back_narrows_the_window_and_answers_open_it_again(clock):
    pace = Pace(8, clock)
    pace.pushed_back(BUSY)
    assert pace.limit == 5  # 8 x 0.7
    pace.pushed_back(BUSY)
    assert pace.limit == 3
    answers = 0
    while pace.limit < 8:
        pace.answered()
        answers += 1
    # Additive: about one connection more per window's worth of answers.
    assert 15 <= answers <= 30
    assert pace.delay() == 0


def test_a_server_that_keeps_pushing_back_gets_a_trickle_then_the_pace_recovers(clock):
    pace = Pace(10, clock, give_up_after=1e9)
    for _ in range(7):  # 10, 7, 4.9, 3.4, 2.4, 1.7, 1.2: the connections give way first
        pace.pushed_back(BUSY)
        assert pace.rate is None
    assert pace.limit == 1
    gaps = []
    for _ in range(20):  # then the rate is cut at each push-back in a row
        pace.pushed_back(BUSY)
        gaps.append(pace.gap)
    assert gaps == sorted(gaps) and gaps[0] < gaps[1]
    assert pace.gap == TRICKLE_GAP  # the slowest: one message every 30 s
    assert pace.delay() == 0  # this message goes now...
    assert pace.delay() == pytest.approx(TRICKLE_GAP)  # ...the next one in 30 s
    clock.now += TRICKLE_GAP
    assert pace.delay() == 0

    # The server takes mail again: the cap goes within FREE_RATE answers, the window
    # fills up soon after.
    answers = 0
    while pace.rate is not None:
        pace.answered()
        answers += 1
    assert answers <= FREE_RATE
    while pace.limit < 10:
        pace.answered()
        answers += 1
    assert answers <= FREE_RATE + 60
    clock.now += TRICKLE_GAP  # the slot taken at the trickle is long past
    assert pace.delay() == 0 and pace.delay() == 0  # no cap: back to back


def test_one_push_back_among_answers_never_caps_the_rate_even_with_one_connection(clock):
    pace = Pace(1, clock)
    for _ in range(50):
        pace.pushed_back(BUSY)
        pace.answered()
    assert pace.rate is None and pace.delay() == 0


def test_a_dropped_connection_is_not_a_push_back(clock):
    pace = Pace(10, clock)
    for _ in range(100):
        pace.dropped("connection lost")
        pace.answered()
    assert pace.limit == 10 and pace.rate is None  # reconnect, do not slow down
    for _ in range(DROPS_IN_A_ROW - 1):
        pace.dropped("connection lost")
    assert pace.limit == 10
    pace.dropped("connection lost")  # drops in a row, nothing answered: it is going away
    assert pace.limit == 7


def test_a_wait_the_server_names_is_kept(clock):
    pace = Pace(10, clock)
    reply = "421 4.7.0 Too many messages, try again in 30 seconds"
    pace.pushed_back(reply, retry_after(reply))
    assert pace.delay() == pytest.approx(30)
    clock.now += 29
    assert pace.delay() == pytest.approx(1)
    clock.now += 1
    assert pace.delay() == 0
    assert pace.problem is None


def test_a_wait_longer_than_the_run_will_wait_ends_the_run_and_says_so(clock):
    pace = Pace(10, clock, give_up_after=60)
    pace.pushed_back("421 4.7.0 rate limited, retry after 10 minutes", 600.0)
    assert pace.problem and "600" in pace.problem
    assert pace.asked == 600.0


def test_a_server_that_answers_nothing_for_long_ends_the_run(clock):
    pace = Pace(4, clock, give_up_after=60)
    pace.pushed_back("cannot connect to 127.0.0.1:25: refused")
    clock.now += 30
    pace.dropped("connection lost")
    assert pace.problem is None
    pace.answered()  # an answer clears the trouble
    clock.now += 45
    pace.pushed_back(BUSY)
    clock.now += 45
    assert pace.problem is None
    clock.now += 16
    pace.pushed_back(BUSY)
    assert pace.problem and "unavailable for 60 s" in pace.problem


@pytest.mark.parametrize("text, seconds", [
    ("421 4.7.0 Too many connections, try again in 30 seconds", 30.0),
    ("4.7.0 try again in 30s", 30.0),
    ("450 4.7.1 Rate limited. Retry after 2 minutes", 120.0),
    ("452 4.3.1 retry in 5 min", 300.0),
    ("421 4.7.28 Retry-After: 45", 45.0),
    ("451 4.7.1 Greylisted, try again later", None),
    ("451 4.7.1 Temporary local problem, try later", None),
    ("421 4.7.0 Service busy, closing transmission channel", None),
    ("450 4.2.1 30 seconds", None),  # a number, but nobody asked to wait it
    ("421 try again in 99999999 seconds", None),  # not believed
    ("421 4.7.0 try again in 90000 seconds", None),  # over a day: not believed
])
def test_what_wait_a_reply_names(text, seconds):
    assert retry_after(text) == seconds
