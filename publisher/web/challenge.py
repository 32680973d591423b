"""Web: the subscribe form's optional proof of work ([web] challenge = true).

ALTCHA's protocol (version 1), made and checked with altcha-lib-py (`altcha`): a
challenge is a random salt carrying its expiry, challenge = SHA-256(salt + number) for a
secret number up to [web] challenge_difficulty, and an HMAC-SHA256 signature of it under
a key derived from [web] secret. The browser (templates/challenge.js, our own script,
allowed by its CSP hash) tries numbers until the hash matches and sends the answer, base64
JSON, in the form's `altcha` field. A person waits a fraction of a second; a script
signing up thousands of addresses pays that for each one.

Checking an answer: the payload is read and typed here first (bounded size, a JSON object
with the five fields), since altcha's verifier assumes a well-formed one; expiry is
checked against the instance clock (altcha's own check reads the wall clock, so it is
off); altcha checks the hash and signature; then the challenge is spent in the store, so
an answer is accepted once, on every node sharing the database. Each refusal is counted
in metrics (publisher_challenges_refused_total, by reason).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from altcha import create_challenge_v1, extract_params_v1, verify_solution_v1

from publisher.config import Settings
from publisher.ops.metrics import CHALLENGES_REFUSED
from publisher.store import Store
from publisher.templating import shipped_templates

ALGORITHM = "SHA-256"
LIFETIME = timedelta(minutes=20)  # from the challenge to the form's POST
FIELD = "altcha"  # the form field's name, as ALTCHA's own widget calls it
MAX_PAYLOAD = 2_000  # characters; an honest answer is about 400
HEX64 = re.compile(r"[0-9a-f]{64}")

REASONS = {
    "missing": "This form needs JavaScript: it solves a small puzzle that keeps robots "
               "out. Turn JavaScript on for this site and send the form again.",
    "malformed": "The form's check that you are human could not be read. Reload the page "
                 "and send the form again.",
    "expired": "The form's check that you are human has expired. Reload the page and send "
               "the form again.",
    "wrong": "The form's check that you are human did not pass. Reload the page and send "
             "the form again.",
    "replayed": "The form's check that you are human was already used. Reload the page and "
                "send the form again.",
}


class ChallengeRefused(Exception):
    """An answer missing, unreadable, expired, wrong or already used."""

    def __init__(self, reason: str):
        super().__init__(REASONS[reason])
        self.reason = reason


def key(settings: Settings) -> bytes:
    """The signing key: derived from [web] secret for this purpose alone, so a challenge
    signature can never stand for a link token's or the other way round."""
    return hmac.new(settings.web.secret.encode(), b"publisher.challenge",
                    hashlib.sha256).hexdigest().encode()


def issue(settings: Settings, now: datetime) -> dict:
    """A new challenge as the browser's script reads it (ALTCHA's JSON, and how many
    seconds it stays good, so the script can tell a stale answer without our clock)."""
    made = create_challenge_v1(algorithm=ALGORITHM, hmac_key=key(settings),
                               max_number=settings.web.challenge_difficulty,
                               expires=now + LIFETIME)
    return {"algorithm": made.algorithm, "challenge": made.challenge,
            "maxnumber": made.max_number, "salt": made.salt, "signature": made.signature,
            "expires_in": int(LIFETIME.total_seconds())}


def check(settings: Settings, store: Store, sent: str, now: datetime) -> None:
    """Accept the answer `sent` once, or raise ChallengeRefused (and count it)."""
    try:
        payload = read(sent)
        expires = expiry(payload)
        if expires <= now:
            raise ChallengeRefused("expired")
        valid, _ = verify_solution_v1(payload, key(settings), check_expires=False)
        if not valid:
            raise ChallengeRefused("wrong")
        if not store.challenges.spend(payload["challenge"], expires, now):
            raise ChallengeRefused("replayed")
    except ChallengeRefused as refused:
        CHALLENGES_REFUSED.labels(reason=refused.reason).inc()
        raise


def read(sent: str) -> dict:
    """The payload as a dict with the five fields of the right types, or a refusal."""
    if not sent.strip():
        raise ChallengeRefused("missing")
    if len(sent) > MAX_PAYLOAD:
        raise ChallengeRefused("malformed")
    try:
        payload = json.loads(base64.b64decode(sent.strip(), validate=True))
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSON errors too
        raise ChallengeRefused("malformed") from None
    if not isinstance(payload, dict):
        raise ChallengeRefused("malformed")
    number = payload.get("number")
    if payload.get("algorithm") != ALGORITHM or \
            not isinstance(number, int) or isinstance(number, bool) or number < 0 or \
            not all(isinstance(payload.get(name), str)
                    for name in ("challenge", "salt", "signature")) or \
            not HEX64.fullmatch(payload["challenge"]) or \
            not HEX64.fullmatch(payload["signature"]) or len(payload["salt"]) > 200:
        raise ChallengeRefused("malformed")
    return {name: payload[name]
            for name in ("algorithm", "challenge", "number", "salt", "signature")}


def expiry(payload: dict) -> datetime:
    """The expiry the salt carries (every challenge we make has one; it is signed, as
    the salt is part of what the signature covers)."""
    values = extract_params_v1(payload).get("expires") or [""]
    try:
        return datetime.fromtimestamp(int(values[0]), UTC)
    except (ValueError, OverflowError, OSError):
        raise ChallengeRefused("malformed") from None


@cache
def script() -> str:
    """The browser's side, read once: inlined into the app's own form page (allowed by
    `script_hash`) and served at /_publisher/challenge.js for the published pages and
    forms embedded on other sites."""
    return Path(shipped_templates() / "challenge.js").read_text(encoding="utf-8")


def script_hash() -> str:
    """The CSP source that allows exactly the inlined script."""
    digest = hashlib.sha256(script().encode()).digest()
    return "sha256-" + base64.b64encode(digest).decode()
