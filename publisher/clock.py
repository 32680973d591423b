"""The clock: the one source of `now` for the CLI, the daemon and the web app.

Every decision that depends on the time (who is due, what expires, what a token's stamp
says) takes `now` as a parameter; the entry points read it from one `Clock`, a callable
returning aware UTC. The program runs on the system clock unless it is given a start
instant (`publisher --time 2026-11-30T07:00:00Z`, or PUBLISHER_TIME): then its clock starts
there and runs on at the real pace, so a daemon still sees minutes pass. Tests hand the
instance a `fixed` clock, so their data never depends on the day they run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from publisher.errors import ConfigError

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def fixed(at: datetime) -> Clock:
    """A clock that always reads `at`: for tests, where one instant must hold throughout."""
    at = aware_utc(at)
    return lambda: at


def starting_at(at: datetime) -> Clock:
    """A clock that reads `at` now and advances with the real (monotonic) time."""
    at = aware_utc(at)
    started = time.monotonic()
    return lambda: at + timedelta(seconds=time.monotonic() - started)


def parse_instant(text: str, name: str = "--time") -> datetime:
    """An ISO 8601 instant with its offset ("Z" or "+01:00"), as aware UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ConfigError(name, text, "an ISO 8601 time with its offset, "
                          "such as 2026-11-30T07:00:00Z")
    return value.astimezone(UTC)


def aware_utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: a clock reads aware UTC")
    return at.astimezone(UTC)
