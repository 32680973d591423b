"""Web: what stands between a form and a stranger: same-origin checks, signed per-form
tokens, and per-client rate limits.

The subscribe form on the static index.html cannot carry a per-visitor token, so
POST /subscribe accepts only requests whose Origin (or, failing that, Referer) is this
site; browsers always send Origin on a cross-site POST, so a forged form elsewhere gets
403, while clients that send neither (curl, scripts: not a CSRF vector) are let through.
The site's other origins listed in [web] allowed_origins are accepted like its own (and
get CORS headers, so their pages can post with fetch).
Double opt-in does the rest. Forms the app renders itself also carry a token signed with
[web] secret, bound to the link it was served for and valid for FORM_HOURS.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import Request

from publisher import tokens
from publisher.config import Settings
from publisher.web.pages import origin

FORM_HOURS = 24


class FormTokenError(Exception):
    """A form sent without its token, with a forged one, or too late."""


def form_serializer(settings: Settings, now: datetime) -> URLSafeTimedSerializer:
    return tokens.clocked_serializer(settings.web.secret, "publisher.form", now)


def binding(purpose: str, link_token: str) -> str:
    return purpose + ":" + hashlib.sha256(link_token.encode()).hexdigest()[:24]


def form_token(settings: Settings, purpose: str, link_token: str, now: datetime) -> str:
    return form_serializer(settings, now).dumps(binding(purpose, link_token))


def check_form_token(settings: Settings, purpose: str, link_token: str, sent: str,
                     now: datetime) -> None:
    try:
        value = form_serializer(settings, now).loads(sent or "", max_age=FORM_HOURS * 3600)
    except SignatureExpired as exc:
        raise FormTokenError("this form was open too long; reload the page and try again") \
            from exc
    except BadSignature as exc:
        raise FormTokenError("this form could not be checked; reload the page and try "
                             "again") from exc
    if value != binding(purpose, link_token):
        raise FormTokenError("this form belongs to another page; reload the page and try "
                             "again")


def same_site(request: Request, settings: Settings) -> bool:
    """True unless the browser says the form came from another site."""
    allowed = {origin(settings.site.url), origin(str(request.base_url)),
               *allowed_origins(settings)}
    sent = request.headers.get("origin")
    if sent is not None:
        return sent.lower() in allowed  # "null" (sandboxed, file:) is refused too
    referer = request.headers.get("referer")
    if referer is not None:
        return origin(referer) in allowed
    return True


def allowed_origins(settings: Settings) -> list[str]:
    """[web] allowed_origins as browsers send them in Origin (no trailing slash)."""
    return [origin(value) for value in settings.web.allowed_origins]


class RateLimiter:
    """At most `limit` events per key in any `window` seconds (a sliding log), in memory:
    one process's view, which is what one `publisher serve` needs."""

    def __init__(self, limit: int, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self.events: dict[str, deque[float]] = {}
        self.lock = threading.Lock()
        self.calls = 0

    def allow(self, key: str) -> tuple[bool, int]:
        """(allowed, seconds until the next event would be allowed)."""
        now = self.clock()
        with self.lock:
            self.calls += 1
            if self.calls % 1000 == 0:
                self.forget_idle(now)
            log = self.events.setdefault(key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= self.limit:
                return False, max(1, int(log[0] + self.window - now + 0.999))
            log.append(now)
            return True, 0

    def full(self, key: str) -> bool:
        """Whether the next event for `key` would be refused (recording nothing)."""
        now = self.clock()
        with self.lock:
            log = self.events.get(key)
            return bool(log) and sum(1 for t in log if t > now - self.window) >= self.limit

    def forget_idle(self, now: float) -> None:
        """Keeps memory bounded: drop clients not seen for a whole window."""
        for key in [k for k, log in self.events.items() if not log or log[-1] <= now - self.window]:
            del self.events[key]
