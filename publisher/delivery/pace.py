"""Delivery: how hard the smtp transport pushes a server: additive increase,
multiplicative decrease (AIMD) of the connections in use and of the message rate.

Faults on a busy server are mostly random: a 421 here, a dropped connection there, in a
stream of messages that go through. Halving the pool and doubling a pause at each of
them (as we once did) slowed a run 200 times under 5% of 421s. So the pace reacts to
what a reply means, and forgets a fault as soon as mail goes through again:

- every message the server answers (taken, or refused for its own sake: a 451, a 550)
  opens the window by 1/window, about one connection more per window's worth of
  answers, up to [mail] connections; and, when the rate is capped, raises the cap by
  RATE_STEP messages/s;
- a push-back (a 421, a 4xx saying "too many" or "slow down", a refused connection)
  takes 30% off the window; a third push-back in a row (nothing answered between) with the
  window already at one connection cuts the rate as much: the pool trickles (one message
  every TRICKLE_GAP seconds at worst) only while the server keeps pushing back;
- a reply that names its wait ("try again in 30 seconds", "Retry-After: 30") is kept:
  nobody starts a message before then;
- a dropped connection is not a push-back: its messages go out on another connection at
  once, and only DROPS_IN_A_ROW drops with nothing answered between (a server going
  away) count as one;
- troubled (pushed back or dropped, nothing answered) for `give_up_after` seconds, or
  asked to wait longer than that, the run stops sending: `problem` says why and
  `asked` the wait the server named, if it did.

Pure logic: time comes from the `clock` given (seconds, monotonic), so tests drive it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

DECREASE = 0.7  # what a push-back leaves of the window, and of a capped rate
FIRST_GAP, TRICKLE_GAP = 0.25, 30.0  # seconds between messages: first cap, the slowest
RATE_STEP = 1.0  # messages/s a capped rate gains per message answered
FREE_RATE = 50.0  # messages/s: a cap this high is lifted
STREAK = 2  # push-backs in a row before this one, at one connection: the rate is cut
DROPS_IN_A_ROW = 3  # dropped connections, nothing answered between: the server is going


class Pace:
    def __init__(self, ceiling: int, clock: Callable[[], float],
                 give_up_after: float = 60.0):
        self.ceiling = max(1, ceiling)
        self.clock = clock
        self.give_up_after = give_up_after
        self.window = float(self.ceiling)
        self.gap = 0.0  # seconds between message starts over the pool; 0: no cap
        self.next_slot = 0.0
        self.pause_until = 0.0
        self.streak = 0  # push-backs with nothing answered between
        self.drops = 0  # dropped connections with nothing answered between
        self.troubled_since: float | None = None
        self.problem: str | None = None  # why the run stops sending
        self.asked: float | None = None  # the wait (s) that made the run stop, if named
        self.waits = 0  # times a sender was told to wait (for tests and logs)

    @property
    def limit(self) -> int:
        """Connections that may be open now."""
        return max(1, int(self.window))

    @property
    def rate(self) -> float | None:
        """Messages per second at most over the pool; None: no cap."""
        return 1 / self.gap if self.gap else None

    def answered(self, count: int = 1) -> None:
        """`count` messages got a reply of their own: the server is working."""
        for _ in range(count):
            self.window = min(float(self.ceiling), self.window + 1 / self.window)
            if self.gap:
                rate = 1 / self.gap + RATE_STEP
                self.gap = 0.0 if rate >= FREE_RATE else 1 / rate
        self.streak = self.drops = 0
        self.troubled_since = None

    def pushed_back(self, detail: str, wait: float | None = None) -> None:
        """A 421, a rate-limit reply or a refused connection; `wait`: the seconds the
        reply asked for, if it named any."""
        now = self.clock()
        # Nothing left to give but rate: one connection, and the third push-back in a
        # row with nothing answered between (random faults seldom come three in a row).
        cornered = self.window <= 1.0 and self.streak >= STREAK
        self.streak += 1
        self.window = max(1.0, self.window * DECREASE)
        if cornered:
            self.gap = min(TRICKLE_GAP, self.gap / DECREASE if self.gap else FIRST_GAP)
        if wait is not None:
            self.pause_until = max(self.pause_until, now + wait)
        self.trouble(now, detail, wait)
        log.log(logging.WARNING if cornered or wait else logging.INFO,
                "SMTP server pushed back (%s); %d connections%s%s", detail, self.limit,
                f", {self.rate:.2g} messages/s" if self.gap else "",
                f", waiting {wait:g} s as asked" if wait else "")

    def dropped(self, detail: str) -> None:
        """A connection ended with no 421: its messages simply go out on another."""
        self.drops += 1
        if self.drops >= DROPS_IN_A_ROW:
            self.drops = 0
            self.pushed_back(f"{DROPS_IN_A_ROW} connections dropped in a row: {detail}")
        else:
            self.trouble(self.clock(), detail, None)

    def trouble(self, now: float, detail: str, wait: float | None) -> None:
        if self.troubled_since is None:
            self.troubled_since = now
        if wait is not None and wait > self.give_up_after:
            self.problem = f"the server asks to wait {wait:g} s: {detail}"
            self.asked = wait
        elif now - self.troubled_since > self.give_up_after:
            self.problem = f"server unavailable for {self.give_up_after:g} s: {detail}"

    def delay(self) -> float:
        """Seconds to wait before the next message may start. 0: start it now; with the
        rate capped, that takes the slot (call again after waiting: others may have
        taken it, or the server asked for a wait meanwhile)."""
        now = self.clock()
        start = max(now, self.pause_until, self.next_slot if self.gap else now)
        if start > now:
            self.waits += 1
            return start - now
        self.next_slot = now + self.gap
        return 0.0
