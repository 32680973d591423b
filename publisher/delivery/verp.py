"""Delivery: the VERP return path, `bounce+TAG@domain`. Delivery writes it and the
bounces stage, which comes after delivery, reads it back. Its short signed tag names the subscriber and the message, so
a bounce says whom it is about without being read.

The tag is `<subscriber>-<outbox row>-<mac>`: the two ids in base 36 and 8 characters of
an HMAC-SHA256 under [web] secret (40 bits, base 32). Everything is lower-case letters
and digits, because some mail servers lower-case local parts on the way back. A tag
whose MAC does not match is ignored: anyone can write to the bounce address, and a
forged tag must not bounce someone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from publisher.config import Settings
from publisher.errors import ConfigError

MAC_CHARS = 8
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
TAG = re.compile(r"([0-9a-z]{1,13})-([0-9a-z]{1,13})-([a-z2-7]{8})", re.IGNORECASE)


@dataclass(frozen=True)
class Tag:
    subscriber_id: int
    outbox_id: int


def base36(number: int) -> str:
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = DIGITS[digit] + text
        if not number:
            return text


class Verp:
    """Makes and reads the tags of one instance (one key)."""

    def __init__(self, settings: Settings, sender: str):
        secret = settings.web.secret
        if len(secret) < 16:
            raise ConfigError("web.secret", secret, "a random string of at least 16 "
                              "characters (it also signs the VERP return path)")
        self.key = hashlib.sha256(b"publisher.verp\0" + secret.encode()).digest()
        local, _, self.domain = sender.rpartition("@")
        # A sender that already holds a "+" (news+list@) keeps it; ours follows the last.
        self.local = local
        self.pattern = re.compile(re.escape(local) + r"\+" + TAG.pattern + "@"
                                  + re.escape(self.domain), re.IGNORECASE)

    def mac(self, text: str) -> str:
        digest = hmac.new(self.key, text.encode("ascii"), hashlib.sha256).digest()
        return base64.b32encode(digest[:5]).decode("ascii").lower()

    def tag(self, subscriber_id: int, outbox_id: int) -> str:
        ids = f"{base36(subscriber_id)}-{base36(outbox_id)}"
        return f"{ids}-{self.mac(ids)}"

    def address(self, subscriber_id: int | None, outbox_id: int) -> str:
        """The return path of one message."""
        return f"{self.local}+{self.tag(subscriber_id or 0, outbox_id)}@{self.domain}"

    def read(self, text: str) -> Tag | None:
        """The first correctly signed tag in `text` (an address, a header, a message)."""
        for match in self.pattern.finditer(text):
            found = self.check(*match.groups())
            if found:
                return found
        return None

    def check(self, subscriber: str, outbox: str, mac: str) -> Tag | None:
        ids = f"{subscriber.lower()}-{outbox.lower()}"
        if not hmac.compare_digest(self.mac(ids), mac.lower()):
            return None
        return Tag(int(subscriber, 36), int(outbox, 36))
