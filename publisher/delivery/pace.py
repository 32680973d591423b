"""Delivery: how hard the smtp transport pushes a server: additive increase,
multiplicative decrease (AIMD) of the connections in use, and pauses only for a server
that keeps pushing back.

Faults on a busy server are mostly random: a 421 here, a dropped connection there, in a
stream of messages that go through. Halving the pool and doubling a pause on each of
them (as we used to) slowed a run 200 times under 5% of 421s. So:

- every message the server answers opens the window a little (by 1/window: about one
  connection more per window's worth of answers), up to [mail] connections;
- a push-back (421, or a 4xx saying "too many" or "slow down") closes it to 70%, and
  pauses every sender only when push-backs come in a row with nothing answered between
  (0.5 s, then doubling up to 30 s): one stray 421 costs no pause at all;
- a reply that names its own wait ("try again in 30 seconds") is a pause of that long;
- a dropped connection is not a push-back: its messages go out on another connection,
  and only drops in a row (the server is going away) count as one;
- a server that answers nothing for `give_up_after` seconds (or asks for a longer
  wait) ends the run's sending; what is left waits in the outbox for the next run.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable

log = logging.getLogger(__name__)

DECREASE = 0.7  # the window after a push-back, as a share of what it was
FIRST_PAUSE, MAX_PAUSE = 0.5, 30.0
DROPS_IN_A_ROW = 3  # dropped connections, nothing answered between: the server is going
RETRY_AFTER = re.compile(
    r"(?:retry|try(?: again)?)\b\D{0,24}?(\d{1,6})\s*(s|secs?|seconds?|m|mins?|minutes?)\b",
    re.I)


def retry_after(text: str) -> float | None:
    """The wait a reply asks for ("try again in 30 seconds", "retry after 2 min"), if any."""
    match = RETRY_AFTER.search(text)
    if match is None:
        return None
    seconds = float(match[1])
    return seconds * 60 if match[2].lower().startswith("m") else seconds


class Pace:
    def __init__(self, ceiling: int, clock: Callable[[], float], give_up_after: float = 60.0,
                 pauses: tuple[float, float] = (FIRST_PAUSE, MAX_PAUSE),
                 rng: random.Random | None = None):
        self.ceiling = max(1, ceiling)
        self.clock = clock
        self.give_up_after = give_up_after
        self.first_pause, self.max_pause = pauses
        self.rng = rng or random.Random()
        self.window = float(self.ceiling)
        self.pause_until = 0.0
        self.paused = 0.0  # seconds of pause decided in all (for reports and tests)
        self.streak = 0  # push-backs in a row with nothing answered between
        self.drops = 0  # dropped connections in a row
        self.troubled_since: float | None = None
        self.problem: str | None = None

    @property
    def limit(self) -> int:
        """Connections that may be open now."""
        return max(1, int(self.window))

    def answered(self, count: int = 1) -> None:
        """`count` messages got a reply of their own: the server is working."""
        for _ in range(count):
            self.window = min(float(self.ceiling), self.window + 1 / self.window)
        self.streak = self.drops = 0
        self.troubled_since = None

    def pushed_back(self, detail: str) -> None:
        """A 421, a rate-limit reply or a refused connection."""
        now = self.clock()
        self.window = max(1.0, self.window * DECREASE)
        self.streak += 1
        asked = retry_after(detail)
        if asked is not None:
            pause = asked
        elif self.streak == 1:
            pause = 0.0
        else:
            pause = min(self.max_pause, self.first_pause * 2 ** (self.streak - 2))
            pause *= self.rng.uniform(1.0, 1.25)
        if pause:
            self.pause(now, pause)
        self.troubled_since = self.troubled_since if self.troubled_since is not None else now
        log.log(logging.WARNING if pause else logging.INFO,
                "SMTP server pushed back (%s); %d connections%s", detail, self.limit,
                f", pausing {pause:.1f} s" if pause else "")
        if asked is not None and asked > self.give_up_after:
            self.problem = f"the server asks to wait {asked:g} s: {detail}"
        elif now - self.troubled_since > self.give_up_after:
            self.problem = f"server unavailable for {self.give_up_after:g} s: {detail}"

    def dropped(self, detail: str) -> None:
        """A connection ended with no 421: its messages are simply sent elsewhere."""
        self.drops += 1
        if self.drops >= DROPS_IN_A_ROW:
            self.pushed_back(detail)
            self.drops = 0

    def pause(self, now: float, seconds: float) -> None:
        until = now + seconds
        if until > self.pause_until:
            self.paused += until - max(now, self.pause_until)
            self.pause_until = until

    def wait(self) -> float:
        """Seconds every sender waits before its next message (0: go)."""
        return max(0.0, self.pause_until - self.clock())
