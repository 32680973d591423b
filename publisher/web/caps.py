"""Web: caps on the confirmation mails strangers can make us send.

A per-client rate limit (guard.py) stops one client; it does not stop many clients, or
one that rotates addresses, from making the site mail thousands of strangers. So the
subscribe form also stops, for the rest of the hour, once confirmation mails reach
[web] confirmations_per_hour in all or [web] confirmations_per_domain_hour to one
recipient domain. A refused sign-up is not stored and gets a page saying to try later;
each refusal is counted in metrics (publisher_confirmations_refused_total), and the
first refusal of each cap in a window is logged (an operator wants to hear of an attack
once, not once per request).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from publisher.config import Settings
from publisher.ops.metrics import CONFIRMATIONS_REFUSED
from publisher.web.guard import RateLimiter

log = logging.getLogger(__name__)

HOUR = 3600.0


class ConfirmationCaps:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        web = settings.web
        self.all = RateLimiter(web.confirmations_per_hour, HOUR, clock)
        self.domains = RateLimiter(web.confirmations_per_domain_hour, HOUR, clock)
        self.clock = clock
        self.quiet_until: dict[str, float] = {}  # cap: no more log lines before then
        self.lock = threading.Lock()

    def refusal(self, email: str) -> str | None:
        """Why a confirmation to `email` may not be sent now, or None. Checked before
        the sign-up is stored; `record` counts the mail once it is queued."""
        domain = email.rpartition("@")[2].lower()
        if self.domains.wait(domain):
            self.refused("domain", f"confirmation mails to {domain} reached [web] "
                         "confirmations_per_domain_hour")
            return (f"Too many confirmation messages to {domain} addresses this hour. "
                    "Please send the form again in an hour.")
        if self.all.wait("all"):
            self.refused("all", "confirmation mails reached [web] confirmations_per_hour")
            return "Too many sign-ups this hour. Please send the form again in an hour."
        return None

    def record(self, email: str) -> None:
        self.domains.allow(email.rpartition("@")[2].lower())
        self.all.allow("all")

    def refused(self, cap: str, why: str) -> None:
        CONFIRMATIONS_REFUSED.labels(cap=cap).inc()
        now = self.clock()
        with self.lock:
            if now < self.quiet_until.get(cap, float("-inf")):
                return
            self.quiet_until[cap] = now + HOUR
        log.warning("sign-ups refused: %s; further refusals this hour are only counted "
                    "(metric publisher_confirmations_refused_total)", why)
