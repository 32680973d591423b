"""Feeds stage, WebSub: tell the hub which feeds changed, so subscribers hear at once.

The publish ping (hub.mode=publish, hub.url=TOPIC) is the convention hubs accept; WebSub
itself leaves it to the hub. A hub that is down or refuses never fails the run: readers
still find the change on their next poll, so a warning is enough.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx

from publisher import __version__

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0


def ping_hub(hub: str, topics: Sequence[str], timeout: float = TIMEOUT_SECONDS) -> int:
    """POST a publish ping for each topic; returns how many the hub accepted."""
    accepted = 0
    headers = {"User-Agent": f"Publisher/{__version__} (WebSub publish)"}
    try:
        with httpx.Client(timeout=timeout, headers=headers) as client:
            for topic in topics:
                response = client.post(hub, data={"hub.mode": "publish", "hub.url": topic})
                if response.is_success:
                    accepted += 1
                else:
                    log.warning("WebSub hub %s answered %s %s to the ping for %s",
                                hub, response.status_code, response.reason_phrase, topic)
    except httpx.HTTPError as exc:
        # Unreachable: the remaining pings would fail the same way, so stop here.
        log.warning("WebSub hub %s could not be reached (%s: %s); %d of %d feeds pinged",
                    hub, type(exc).__name__, exc, accepted, len(topics))
    return accepted
