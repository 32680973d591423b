"""The daemon sends editions: one written before it starts goes at once, one whose send_at
comes while it runs goes at its first minutely check after that; each reader once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from tests.support import NOW
from tests.support.daemon import wait_until
from tests.support.editions import write_edition
from tests.support.mail import add_subscriber, parse

pytestmark = pytest.mark.slow


def test_the_daemon_sends_editions_when_due(instance, store, smtp_server, daemons):
    for n in range(3):
        add_subscriber(store, f"r{n}@example.org", NOW)
    write_edition(instance, "now", subject="At once")
    # The daemon's clock starts at NOW and runs on: due a few seconds after it starts.
    soon = (NOW + timedelta(seconds=5)).isoformat()
    write_edition(instance, "soon", subject="In a moment", extra=f"send_at: {soon}")
    daemon = daemons(instance, env={"PUBLISHER_MAIL__TRANSPORT": "smtp",
                                    "PUBLISHER_MAIL__SMTP_URL": smtp_server.url})
    daemon.wait_started()
    messages = smtp_server.handler.messages

    def subjects() -> Counter:
        return Counter((parse(data)["Subject"], tuple(rcpts)) for _, rcpts, data in messages)

    wait_until(lambda: sum(1 for s, _ in subjects() if s == "At once") == 3, "the first")
    # The minutely check comes within 60 s of the daemon's start (plus the send).
    wait_until(lambda: sum(1 for s, _ in subjects() if s == "In a moment") == 3,
               "the scheduled one")
    assert daemon.stop() == 0
    assert all(count == 1 for count in subjects().values())
    assert len(messages) == 6
    assert (instance / "feeds" / "editions" / "soon.html").is_file()
