"""Delivery: the signed links of many messages (unsubscribe, preferences, confirm), fast.

The tokens are exactly those of publisher.tokens (itsdangerous, URL-safe, timed), so
tokens.verify accepts them. itsdangerous derives its key and tries zlib on every call,
about 30 µs a token; here the key is derived once per purpose and the tiny payload is
never worth compressing, about 5 µs. A self-check at start compares with tokens.verify
and falls back to tokens.sign if a future itsdangerous ever changes its format.
"""

from __future__ import annotations

import base64
import hmac
import logging
import struct
import time

from publisher import tokens
from publisher.config import Settings

log = logging.getLogger(__name__)


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class LinkSigner:
    def __init__(self, settings: Settings):
        self.settings = settings
        base = settings.site.url
        self.base = base if base.endswith("/") else base + "/"
        self._stamp: tuple[int, bytes] = (0, b"")
        self.keys = {purpose: tokens.serializer(settings, purpose).make_signer().derive_key()
                     for purpose in tokens.ROUTES}
        self.fast = self.self_check()

    def token(self, purpose: str, subscriber_id: int, version: int) -> str:
        if not self.fast:
            return tokens.sign(self.settings, purpose, subscriber_id, version)
        payload = b64(f"[{subscriber_id},{version}]".encode("ascii"))
        value = payload + self.stamp()
        signature = b64(hmac.digest(self.keys[purpose], value, "sha1"))
        return (value + b"." + signature).decode("ascii")

    def stamp(self) -> bytes:
        """"." and the token's timestamp, made once a second."""
        second = int(time.time())
        if second != self._stamp[0]:
            self._stamp = (second, b"." + b64(struct.pack(">Q", second).lstrip(b"\x00")))
        return self._stamp[1]

    def link(self, purpose: str, subscriber_id: int, version: int) -> str:
        return self.url(purpose, self.token(purpose, subscriber_id, version))

    def url(self, purpose: str, token: str) -> str:
        return self.base + tokens.ROUTES[purpose].format(token=token)

    def self_check(self) -> bool:
        self.fast = True
        try:
            data = tokens.verify(self.settings, "unsubscribe", self.token("unsubscribe", 7, 3))
            if data == tokens.TokenData(7, 3):
                return True
        except tokens.TokenError:
            pass
        log.warning("fast link signing does not match itsdangerous; using tokens.sign")
        return False
