"""Signed tokens and the links that carry them (unsubscribe, preferences, confirm, feed).

Every token is signed with [web] secret and salted with its purpose, so a token made for
one link never works in another. A token carries the subscriber id and their
token_version; bumping the version (on erasure) revokes every older link. Its timestamp
is the caller's `now` (publisher.clock), and so is the age it is checked against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from publisher.config import Settings
from publisher.errors import ConfigError, PublisherError

# The URL path each purpose's link points at, under [site] url.
ROUTES = {
    "unsubscribe": "unsubscribe/{token}",
    "preferences": "preferences/{token}",
    "confirm": "confirm/{token}",
    "feed": "s/{token}/feed.atom",
}


# The signed part of each route's path: /confirm/<t>, /unsubscribe/<t>, /s/<t>/feed.atom.
FIRST_PARTS = "|".join(re.escape(route.split("/", 1)[0]) for route in ROUTES.values())
IN_PATH = re.compile(rf"(/(?:{FIRST_PARTS})/)[^/?#\s]+")
MAX_ID = 2**63 - 1       # BIGINT
MAX_VERSION = 2**31 - 1  # INTEGER


class TokenError(PublisherError):
    """A link token that is forged, altered, expired or meant for another link."""


@dataclass(frozen=True)
class TokenData:
    subscriber_id: int
    version: int


def serializer(settings: Settings, purpose: str, now: datetime) -> URLSafeTimedSerializer:
    if purpose not in ROUTES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if len(settings.web.secret) < 16:
        raise ConfigError("web.secret", settings.web.secret,
                          "a random string of at least 16 characters "
                          "(publisher init writes one)")
    return clocked_serializer(settings.web.secret, f"publisher.{purpose}", now)


def clocked_serializer(secret: str, salt: str, now: datetime) -> URLSafeTimedSerializer:
    """itsdangerous's serializer, stamping and checking ages by `now`, not the system
    clock (its signer reads time.time() by default)."""
    stamp = int(now.timestamp())

    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return URLSafeTimedSerializer(secret, salt=salt, signer=ClockedSigner)


def sign(settings: Settings, purpose: str, subscriber_id: int, version: int = 0, *,
         now: datetime) -> str:
    return serializer(settings, purpose, now).dumps([subscriber_id, version])


def verify(settings: Settings, purpose: str, token: str, *, now: datetime,
           max_age_seconds: int | None = None) -> TokenData:
    """The token's subscriber and version; TokenError says what is wrong with it."""
    try:
        data = serializer(settings, purpose, now).loads(token, max_age=max_age_seconds)
    except SignatureExpired as exc:
        raise TokenError("this link has expired; ask for a new one") from exc
    except BadSignature as exc:
        raise TokenError("this link is not valid: it was altered or is incomplete") from exc
    if (not isinstance(data, list) or len(data) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in data)
            or not (0 < data[0] <= MAX_ID and 0 <= data[1] <= MAX_VERSION)):
        # Signed, yet nothing we would sign: ids and versions a column can hold only.
        raise TokenError("this link is not valid")
    return TokenData(subscriber_id=data[0], version=data[1])


def link(settings: Settings, purpose: str, subscriber_id: int, version: int = 0, *,
         now: datetime) -> str:
    """The absolute URL of a signed link, under [site] url."""
    token = sign(settings, purpose, subscriber_id, version, now=now)
    return urljoin(settings.site.base_url, ROUTES[purpose].format(token=token))


def redact(path: str) -> str:
    """The path with every link token cut out, for logs: whoever reads a log must not be
    able to unsubscribe people or read their private feeds."""
    return IN_PATH.sub(r"\1…", path)
