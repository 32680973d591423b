"""Bounces stage: Amazon SNS message signatures (SES reports bounces and complaints
through SNS), checked against the signing certificate, as AWS documents it.

The certificate is fetched from the message's SigningCertURL, which must be an https
URL on an SNS host (sns.<region>.amazonaws.com); anything else is refused before any
request is made, so a forged message cannot point us at a certificate of its own. A
valid signature only proves that some SNS topic sent the message, so the topic must
also be one of [bounces] sns_topics.

How certificates and confirmation URLs are fetched is a constructor argument: tests
pass their own fetcher (returning a certificate they made); the URL rules above apply
to it just the same, and nothing in the settings can change them.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

log = logging.getLogger(__name__)

SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
MAX_CERT_BYTES = 16 * 1024
NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_KEYS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                     "TopicArn", "Type")
Fetch = Callable[[str], bytes]


class SnsError(Exception):
    """A message that is not a genuine SNS message for us; its text says why."""


def https_get(url: str) -> bytes:
    """GET an SNS URL (certificate, subscription confirmation): no redirects, bounded."""
    with httpx.Client(timeout=10.0, follow_redirects=False) as client, \
            client.stream("GET", url) as response:
        response.raise_for_status()
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_CERT_BYTES * 4:
                raise SnsError(f"{url} answered more than expected")
        return body


def check_sns_url(url: str, what: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme != "https" or not SNS_HOST.match(parts.hostname or "") or \
            parts.port not in (None, 443) or parts.username or parts.password:
        raise SnsError(f"{what} {url!r} is not an https URL on an SNS host")
    return url


class SnsVerifier:
    def __init__(self, topics: tuple[str, ...], fetch: Fetch = https_get):
        self.topics = set(topics)
        self.fetch = fetch
        self.certificates: dict[str, x509.Certificate] = {}
        self.lock = threading.Lock()

    def verify(self, message: dict, now: datetime) -> None:
        """Raise SnsError unless `message` is signed by SNS (checked against its signing
        certificate) and comes from one of our topics."""
        kind = message.get("Type")
        keys = {"Notification": NOTIFICATION_KEYS, "SubscriptionConfirmation":
                CONFIRMATION_KEYS, "UnsubscribeConfirmation": CONFIRMATION_KEYS}.get(kind)
        if keys is None:
            raise SnsError(f"unknown SNS message type {kind!r}")
        version = str(message.get("SignatureVersion", ""))
        algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(version)
        if algorithm is None:
            raise SnsError(f"unknown SignatureVersion {version!r}")
        certificate = self.certificate(message.get("SigningCertURL", ""), now)
        try:
            signature = base64.b64decode(message.get("Signature", ""), validate=True)
            key = certificate.public_key()
            if not isinstance(key, rsa.RSAPublicKey):
                raise SnsError("the signing certificate's key is not RSA")
            key.verify(signature, string_to_sign(message, keys), padding.PKCS1v15(),
                       algorithm)
        except (InvalidSignature, ValueError) as exc:
            raise SnsError("the signature does not match the message") from exc
        if message.get("TopicArn") not in self.topics:
            raise SnsError(f"topic {message.get('TopicArn')!r} is not in [bounces] "
                           "sns_topics")

    def certificate(self, url: str, now: datetime) -> x509.Certificate:
        check_sns_url(url, "SigningCertURL")
        if not urlsplit(url).path.endswith(".pem"):
            raise SnsError(f"SigningCertURL {url!r} is not a .pem file")
        with self.lock:
            found = self.certificates.get(url)
        if found is None:
            try:
                found = x509.load_pem_x509_certificate(self.fetch(url)[:MAX_CERT_BYTES])
            except (httpx.HTTPError, OSError, ValueError) as exc:
                raise SnsError(f"cannot get the signing certificate: {exc}") from exc
            with self.lock:
                self.certificates[url] = found
        if not found.not_valid_before_utc <= now <= found.not_valid_after_utc:
            raise SnsError("the signing certificate is not valid now")
        return found

    def confirm(self, message: dict) -> None:
        """Follow a verified SubscriptionConfirmation's SubscribeURL."""
        url = check_sns_url(message.get("SubscribeURL", ""), "SubscribeURL")
        try:
            self.fetch(url)
        except (httpx.HTTPError, OSError) as exc:
            raise SnsError(f"cannot confirm the subscription: {exc}") from exc
        log.info("SNS subscription to %s confirmed", message.get("TopicArn"))


def string_to_sign(message: dict, keys: tuple[str, ...]) -> bytes:
    """Each present key's name and value, one per line, in AWS's order."""
    lines = []
    for key in keys:
        if key in message and message[key] is not None:
            lines += [key, str(message[key])]
    return ("\n".join(lines) + "\n").encode("utf-8")
