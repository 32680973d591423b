"""Subscribers stage: the rules for joining, confirming, changing preferences and leaving
(by link, or by mail to List-Unsubscribe's mailto address).

Every value a person or a file gives is checked here, once, before it is stored: the
address with email-validator (syntax only), the name as header text (it ends up in a
To: header), sections as lower-case words joined by '-', the time zone as an IANA name.
The command line, the CSV import and the web forms all go through these functions.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser, BytesParser
from email.policy import default as email_policy
from functools import cache, lru_cache
from zoneinfo import available_timezones

from publisher import tokens
from publisher.addresses import check_header_text, normalize_address
from publisher.article import section_names
from publisher.config import Settings
from publisher.digests.planner import starting_cursor
from publisher.errors import AddressError, InputError, item_errors
from publisher.store import Store
from publisher.store.subscribers import FREQUENCIES, STATUSES, SUPPRESSED, Subscriber
from publisher.subscribers.confirmations import queue_confirmation

log = logging.getLogger(__name__)

NAME_MAX = 200
SECTION_SPLIT = re.compile(r"[;,]")


@dataclass(frozen=True)
class Preferences:
    """What a subscriber chooses: empty sections mean every section, an empty time zone
    the default one ([digest] timezone, else [site] timezone)."""

    name: str = ""
    frequency: str = "daily"
    sections: tuple[str, ...] = ()
    timezone: str = ""

    @classmethod
    def of(cls, subscriber: Subscriber) -> Preferences:
        return cls(subscriber.name, subscriber.frequency, subscriber.sections,
                   subscriber.timezone)

    def columns(self) -> dict:
        return {"name": self.name, "frequency": self.frequency,
                "sections": self.sections, "timezone": self.timezone}


def clean_preferences(name: str | None = "", frequency: str | None = "",
                      sections: str | Iterable[str] | None = "",
                      timezone: str | None = "",
                      default: Preferences = Preferences()) -> Preferences:
    """Checked preferences; a value given as None keeps `default`'s."""
    return Preferences(
        name=default.name if name is None else clean_name(name),
        frequency=default.frequency if frequency is None
        else clean_frequency(frequency, default.frequency),
        sections=default.sections if sections is None else clean_sections(sections),
        timezone=default.timezone if timezone is None else clean_timezone(timezone),
    )


def clean_name(text: str) -> str:
    name = " ".join(check_header_text("name", text).split())
    if len(name) > NAME_MAX:
        raise AddressError(f"name is longer than {NAME_MAX} characters")
    return name


def clean_frequency(text: str, default: str = "daily") -> str:
    value = text.strip().lower() or default
    if value not in FREQUENCIES:
        raise AddressError(f"frequency {text!r} is not one of {', '.join(FREQUENCIES)}")
    return value


def clean_status(text: str, default: str = "active") -> str:
    value = text.strip().lower() or default
    if value not in STATUSES:
        raise AddressError(f"status {text!r} is not one of {', '.join(STATUSES)}")
    return value


def clean_sections(value: str | Iterable[str]) -> tuple[str, ...]:
    """'World; Science' or ['world', 'science'] -> ('world', 'science')."""
    if isinstance(value, str):
        return sections_of_text(value)
    items = [part for item in value for part in SECTION_SPLIT.split(item)]
    return tuple(dict.fromkeys(section_names(items)))


@lru_cache(maxsize=1024)
def sections_of_text(text: str) -> tuple[str, ...]:
    """Cached: a list being imported repeats the same few section cells."""
    return tuple(dict.fromkeys(section_names(SECTION_SPLIT.split(text))))


def clean_timezone(text: str) -> str:
    value = text.strip()
    if not value:
        return ""
    zone = zone_names().get(value.lower())
    if zone is None:
        raise AddressError(f"time zone {text!r} is not an IANA name such as Europe/Berlin")
    return zone


@cache
def zone_names() -> dict[str, str]:
    """IANA zone names by their lower-case spelling, so 'europe/berlin' is accepted."""
    return {name.lower(): name for name in available_timezones()}


def first_cursor(settings: Settings, store: Store, sections: Iterable[str] = ()) -> int:
    """Where a new or returning subscriber's digests start: after every article stored
    so far (or, with [digest] first_digest_recent, before the newest few of their
    sections), so they get no flood of old ones."""
    return starting_cursor(settings, store, tuple(sections))


# --- joining ------------------------------------------------------------------------

def add_subscriber(settings: Settings, store: Store, address: str, prefs: Preferences,
                   now: datetime, confirmed: bool, force: bool = False) -> Subscriber:
    """`subscribers add`: a new subscriber, active if the operator vouches for their
    consent (--confirmed), else pending with a confirmation message queued. An address
    on the suppression list (bounced, complained) is refused unless `force`."""
    email = normalize_address(address)
    known = store.subscribers.by_email(email)
    if known and known.status in SUPPRESSED:
        if not force:
            raise AddressError(f"{email} is on the suppression list ({known.status}); "
                               "add it anyway with --force")
        return readd(settings, store, known, prefs, now, confirmed)
    if known:
        raise AddressError(f"{email} is already on the list ({known.status}); use "
                           "`publisher subscribers set` to change it")
    subscriber = store.subscribers.add(
        email, now, status="active" if confirmed else "pending",
        cursor=first_cursor(settings, store, prefs.sections), **prefs.columns())
    if not confirmed:
        queue_confirmation(settings, store, subscriber, now)
    return subscriber


def readd(settings: Settings, store: Store, known: Subscriber, prefs: Preferences,
          now: datetime, confirmed: bool) -> Subscriber:
    """`add --force` of a suppressed address: active again, or pending with a new link."""
    store.subscribers.change(known.id, now, **prefs.columns())
    if confirmed:
        return store.subscribers.activate(known.id, now,
                                          first_cursor(settings, store, prefs.sections))
    subscriber = store.subscribers.change(known.id, now, status="pending")
    queue_confirmation(settings, store, subscriber, now)
    return subscriber


def request_subscription(settings: Settings, store: Store, address: str,
                         prefs: Preferences, now: datetime) -> Subscriber | None:
    """The subscribe form: whom to send a confirmation link, or None.

    An active subscriber is left exactly as they are (a stranger must not change their
    settings); anyone else gets a link and becomes active only by following it. The
    form's answer is the same in every case, so it tells no one who is on the list."""
    email = normalize_address(address)
    known = store.subscribers.by_email(email)
    if known is None:
        try:
            return store.subscribers.add(email, now, status="pending",
                                         cursor=first_cursor(settings, store, prefs.sections),
                                         **prefs.columns())
        except AddressError:  # added by a concurrent request: treat as known
            known = store.subscribers.by_email(email)
            if known is None:
                raise
    if known.status == "active":
        log.info("subscribe form for active subscriber %s: nothing to do", known.id)
        return None
    # Pending, unsubscribed, bounced or complained: take the new choices; status waits
    # for the link (for a complaint, this double opt-in is the only way back).
    return store.subscribers.change(known.id, now, status="pending", **prefs.columns())


def confirm(settings: Settings, store: Store, subscriber: Subscriber,
            now: datetime) -> tuple[Subscriber, bool]:
    """Follow a confirmation link: active from now on. Returns (subscriber, changed);
    confirming twice changes nothing."""
    if subscriber.status == "active":
        return subscriber, False
    cursor = first_cursor(settings, store, subscriber.sections)
    return store.subscribers.activate(subscriber.id, now, cursor), True


def resubscribe(settings: Settings, store: Store, subscriber: Subscriber,
                now: datetime) -> Subscriber:
    """'Subscribe again' from a link in the person's own mail (preferences or the
    unsubscribe page): they proved the address is theirs when they first confirmed."""
    if subscriber.status == "active":
        return subscriber
    if subscriber.status == "complained":
        # They marked our mail as spam: only a new double opt-in brings them back.
        raise AddressError("this address reported our mail as spam; subscribe again with "
                           "the form, and confirm the link we send")
    if subscriber.confirmed_at is None:
        raise AddressError("this address was never confirmed: use the confirmation link")
    return store.subscribers.activate(subscriber.id, now,
                                      first_cursor(settings, store, subscriber.sections))


def update_subscriber(settings: Settings, store: Store, subscriber: Subscriber,
                      prefs: Preferences, status: str | None, now: datetime,
                      new_links: bool = False) -> Subscriber:
    """`subscribers set`, the API's PATCH and the console's edit form: new preferences,
    and a new state if given. Made active by hand, digests start afresh (no backlog of
    what they missed)."""
    subscriber = store.subscribers.change(subscriber.id, now, **prefs.columns())
    if status == "active" and subscriber.status != "active":
        subscriber = store.subscribers.activate(
            subscriber.id, now, first_cursor(settings, store, subscriber.sections))
    elif status is not None and status != subscriber.status:
        subscriber = store.subscribers.change(subscriber.id, now, status=clean_status(status))
    if new_links:
        subscriber = store.subscribers.revoke_links(subscriber.id, now)
    return subscriber


def find(store: Store, address: str) -> Subscriber:
    """The subscriber with this address, or an AddressError saying it is not on the list."""
    email = normalize_address(address)
    subscriber = store.subscribers.by_email(email)
    if subscriber is None:
        raise AddressError(f"{email} is not on the list")
    return subscriber


# --- leaving by mail --------------------------------------------------------------------

# Tokens are words of URL-safe base64 and dots; found in one linear pass (a pattern with
# three `+` runs backtracks quadratically over a long run without dots).
WORD = re.compile(r"[A-Za-z0-9_.-]+")
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
MAX_TOKEN_CHARS = 512   # ours are under 100
MAX_CANDIDATES = 10     # each costs an HMAC; a real request carries one
MAX_MAIL_BYTES = 256 * 1024  # the token is in the subject, at the start; the rest waits


def candidate_tokens(text: str) -> list[str]:
    """Words shaped like a signed token, at most MAX_CANDIDATES, in one pass."""
    found = []
    for match in WORD.finditer(text):
        word = match.group().strip(".")
        if len(word) <= MAX_TOKEN_CHARS and TOKEN_SHAPE.fullmatch(word):
            found.append(word)
            if len(found) == MAX_CANDIDATES:
                break
    return found


def handle_unsubscribe_mail(settings: Settings, store: Store, name: str,
                            read: Callable[[], bytes], now: datetime) -> str:
    """One message to the unsubscribe box, read and acted on; always one line back.

    The boundary: anyone can mail that address, so whatever reading or parsing the
    message raises (an unknown charset, MIME nested 2,000 deep, a file that is gone)
    is this message's line, and the others go on."""
    try:
        with item_errors(name, "could not be read"):
            return unsubscribe_by_mail(settings, store, read(), now)
    except InputError as exc:
        return f"unsubscribe mail: {exc.reason}; nothing done"


def unsubscribe_by_mail(settings: Settings, store: Store, message: bytes,
                        now: datetime) -> str:
    """Handle one message sent to List-Unsubscribe's mailto address, whose subject is
    "unsubscribe <token>" (the signed unsubscribe token of the digest it answers).

    Only the token counts: a From address is easily forged, so a message without a valid
    token unsubscribes no one. Only the message's first MAX_MAIL_BYTES are read, the
    subject first; the body (a mail program that puts the token there) is parsed only
    when the subject has none. Returns one line saying what happened."""
    message = message[:MAX_MAIL_BYTES]
    headers = BytesHeaderParser(policy=email_policy).parsebytes(message)
    outcome = act_on_tokens(settings, store, str(headers.get("subject", "")), now)
    if outcome is None:
        parsed = BytesParser(policy=email_policy).parsebytes(message)
        body = parsed.get_body(preferencelist=("plain",))
        outcome = act_on_tokens(settings, store,
                                body.get_content() if body is not None else "", now)
    return outcome or "unsubscribe mail: no valid unsubscribe token in it; nothing done"


def act_on_tokens(settings: Settings, store: Store, text: str, now: datetime) -> str | None:
    for candidate in candidate_tokens(text):
        try:
            data = tokens.verify(settings, "unsubscribe", candidate, now=now)
        except tokens.TokenError:
            continue
        subscriber = store.subscribers.by_id(data.subscriber_id)
        if subscriber is None or subscriber.token_version != data.version:
            return "unsubscribe mail: the link it carries is no longer valid; nothing done"
        store.subscribers.unsubscribe(subscriber.id, now)
        return f"unsubscribe mail: unsubscribed {subscriber.email}"
    return None
