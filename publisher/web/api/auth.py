"""Web API: bearer tokens and their rate limits.

A token is 32 random bytes (URL-safe base64) after a `pub_` prefix, shown once when it
is made; the store keeps only its SHA-256, so a copy of the database gives no one API
access. Random tokens need no slow password hash: there is nothing to guess from.
Each token has its own request budget ([web] api_per_minute); a client sending bad
tokens is limited too, since each attempt costs a lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import datetime, timedelta

from publisher.config import Settings
from publisher.errors import InputError
from publisher.store import Store
from publisher.store.api_tokens import ApiToken
from publisher.web.api.problems import Problem
from publisher.web.guard import RateLimiter

PREFIX = "pub_"
BAD_TOKENS_PER_MINUTE = 30
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hint, not a log: few writes


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(store: Store, name: str, read_only: bool,
                 now: datetime) -> tuple[ApiToken, str]:
    """A new token: (its stored record, the secret to show once)."""
    name = name.strip()
    if not name or len(name) > 100 or any(ch.isspace() and ch != " " for ch in name):
        raise InputError(repr(name), "a token name is one line of 1 to 100 characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    return store.api_tokens.add(name, hash_token(secret), read_only, now), secret


class ApiGuard:
    """Who is calling, and whether they may: one per app (in memory, like the form's
    limits: one `publisher serve` process's view)."""

    def __init__(self, settings: Settings, store: Store):
        self.store = store
        self.per_token = RateLimiter(settings.web.api_per_minute, 60.0)
        self.bad_tokens = RateLimiter(BAD_TOKENS_PER_MINUTE, 60.0)
        self.touched: dict[int, datetime] = {}
        self.lock = threading.Lock()

    def authenticate(self, authorization: str | None, client: str, write: bool,
                     now: datetime) -> ApiToken:
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise unauthorized("send an API token: Authorization: Bearer <token> "
                               "(`publisher api-token create NAME` makes one)")
        token = self.store.api_tokens.by_hash(hash_token(secret.strip()))
        if token is None or token.revoked_at is not None:
            allowed, retry = self.bad_tokens.allow(client)
            if not allowed:
                raise Problem(429, f"too many requests with bad tokens; wait {retry} "
                              "seconds", headers={"Retry-After": str(retry)})
            raise unauthorized("this API token was revoked" if token
                               else "this API token is not known")
        allowed, retry = self.per_token.allow(str(token.id))
        if not allowed:
            raise Problem(429, f"token {token.name!r} is over its limit of requests a "
                          f"minute ([web] api_per_minute); retry in {retry} seconds",
                          headers={"Retry-After": str(retry)})
        if write and token.read_only:
            raise Problem(403, f"token {token.name!r} is read-only; this request changes "
                          "data")
        self.touch(token, now)
        return token

    def touch(self, token: ApiToken, now: datetime) -> None:
        with self.lock:
            last = self.touched.get(token.id)
            if last is not None and now - last < TOUCH_EVERY:
                return
            self.touched[token.id] = now
        self.store.api_tokens.used(token.id, now)


def unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="publisher"'})
