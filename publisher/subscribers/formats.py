"""Subscribers: exports of other newsletter tools read as our CSV (Mailchimp, Substack,
Buttondown, listmonk), recognised by their header line or named with `--from`.

Each format turns one row of its export into our columns (email, name, status,
created, confirmed, timezone) and says what each of its columns became, so nothing is
dropped silently: names and consent times are kept; people who left (unsubscribed,
cleaned, blocklisted, undeliverable) are imported as unsubscribed or bounced, so they
are suppressed, never mailed. Column names follow each tool's documented exports.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from publisher.errors import InputError

# What a foreign row becomes: our import's own column names.
CANONICAL = ("email", "name", "status", "created", "confirmed", "timezone")


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    # lower-case header -> what it becomes, for the report
    roles: dict[str, str]
    detect: Callable[[set[str]], bool]
    convert: Callable[[dict[str, str], set[str]], dict[str, str]]

    def describe(self, header: list[str]) -> list[tuple[str, str]]:
        return [(name, self.roles.get(name.strip().lower(), "ignored")) for name in header]


def full_name(*parts: str) -> str:
    return " ".join(part.strip() for part in parts if part and part.strip())


def known_zone(text: str) -> str:
    """Mailchimp's TIMEZONE is an IANA name when it knows one; anything else: default."""
    from publisher.subscribers.rules import zone_names

    return zone_names().get(text.strip().lower(), "")


def truthy(text: str) -> bool:
    return text.strip().lower() in {"true", "t", "1", "yes", "y"}


# --- Mailchimp: subscribed, unsubscribed and cleaned members exports ---------------------

def mailchimp_row(row: dict[str, str], header: set[str]) -> dict[str, str]:
    if "clean_time" in header:
        status = "bounced"  # cleaned: the address bounced hard
    elif "unsub_time" in header:
        status = "unsubscribed"
    else:
        status = "active"
    optin, confirm = row.get("optin_time", ""), row.get("confirm_time", "")
    return {"email": row.get("email address", ""),
            "name": full_name(row.get("first name", ""), row.get("last name", "")),
            "status": status, "created": optin or confirm, "confirmed": confirm or optin,
            "timezone": known_zone(row.get("timezone", ""))}


MAILCHIMP = Format(
    "mailchimp", "Mailchimp members export",
    {"email address": "email", "first name": "name (first part)",
     "last name": "name (last part)", "optin_time": "created (the opt-in: consent time)",
     "confirm_time": "confirmed (the double opt-in's confirmation)",
     "timezone": "timezone (when an IANA name)",
     "unsub_time": "status unsubscribed (an unsubscribed export)",
     "clean_time": "status bounced (a cleaned export)"},
    lambda header: {"email address", "optin_time"} <= header
    or {"email address", "confirm_time"} <= header,
    mailchimp_row)


# --- Substack: the email list export ---------------------------------------------------

def substack_row(row: dict[str, str], header: set[str]) -> dict[str, str]:
    created = row.get("subscription_created_at") or row.get("created_at", "")
    disabled = truthy(row.get("email_disabled", ""))
    return {"email": row.get("email", ""), "name": row.get("name", ""),
            "status": "unsubscribed" if disabled else "active",
            "created": created, "confirmed": created, "timezone": ""}


SUBSTACK = Format(
    "substack", "Substack email list export",
    {"email": "email", "name": "name", "subscription_created_at": "created and confirmed "
     "(consent time)", "created_at": "created and confirmed (consent time)",
     "email_disabled": "status (true: unsubscribed)"},
    lambda header: "email" in header and ("email_disabled" in header
                                          or "active_subscription" in header),
    substack_row)


# --- Buttondown: the subscribers export ------------------------------------------------

BUTTONDOWN_STATUS = {"regular": "active", "premium": "active", "churned": "active",
                     "gifted": "active", "trialed": "active", "past_due": "active",
                     "unactivated": "pending", "unpaid": "active",
                     "unsubscribed": "unsubscribed", "removed": "unsubscribed",
                     "blocked": "unsubscribed", "spammy": "unsubscribed",
                     "complained": "unsubscribed", "undeliverable": "bounced"}


def buttondown_name(metadata: str) -> str:
    try:
        data = json.loads(metadata) if metadata.strip() else {}
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    return full_name(str(data.get("name") or ""), str(data.get("first_name") or ""),
                     str(data.get("last_name") or ""))


def buttondown_row(row: dict[str, str], header: set[str]) -> dict[str, str]:
    kind = row.get("subscriber_type") or row.get("type") or "regular"
    created = row.get("creation_date") or row.get("created_date", "")
    return {"email": row.get("email") or row.get("email_address", ""),
            "name": buttondown_name(row.get("metadata", "")),
            "status": BUTTONDOWN_STATUS.get(kind.strip().lower(), "active"),
            "created": created, "confirmed": "" if kind == "unactivated" else created,
            "timezone": ""}


BUTTONDOWN = Format(
    "buttondown", "Buttondown subscribers export",
    {"email": "email", "email_address": "email",
     "metadata": "name (its name, first_name and last_name keys)",
     "creation_date": "created and confirmed (consent time)",
     "created_date": "created and confirmed (consent time)",
     "subscriber_type": "status", "type": "status"},
    lambda header: bool({"email", "email_address"} & header)
    and bool({"subscriber_type", "creation_date"} & header),
    buttondown_row)


# --- listmonk: the subscribers export --------------------------------------------------

LISTMONK_STATUS = {"enabled": "active", "disabled": "unsubscribed",
                   "blocklisted": "unsubscribed"}


def listmonk_row(row: dict[str, str], header: set[str]) -> dict[str, str]:
    created = row.get("created_at", "")
    return {"email": row.get("email", ""), "name": row.get("name", ""),
            "status": LISTMONK_STATUS.get(row.get("status", "").strip().lower(), "active"),
            "created": created, "confirmed": created, "timezone": ""}


LISTMONK = Format(
    "listmonk", "listmonk subscribers export",
    {"email": "email", "name": "name", "status": "status (enabled: active; disabled, "
     "blocklisted: unsubscribed)", "created_at": "created and confirmed (consent time)"},
    lambda header: {"uuid", "email", "status"} <= header or {"email", "attributes"} <= header,
    listmonk_row)


FORMATS = {f.name: f for f in (MAILCHIMP, SUBSTACK, BUTTONDOWN, LISTMONK)}


def detect(header: list[str], named: str | None, source: str) -> Format | None:
    """The format of a file with this header: the one named, else the first whose
    columns it has, else None (our own CSV)."""
    lower = {name.strip().lower() for name in header}
    if named:
        fmt = FORMATS[named]
        if not fmt.detect(lower):
            raise InputError(source, f"does not look like a {fmt.label} (header: "
                             f"{','.join(header)})")
        return fmt
    for fmt in FORMATS.values():
        if fmt.detect(lower):
            return fmt
    return None


def converter(fmt: Format, header: list[str]) -> Callable[[list[str]], list[str]]:
    """Cells of a foreign row -> cells in CANONICAL order."""
    lower = [name.strip().lower() for name in header]
    present = set(lower)

    def convert(cells: list[str]) -> list[str]:
        row = {name: cell.strip() for name, cell in zip(lower, cells, strict=False)}
        out = fmt.convert(row, present)
        return [out.get(name, "") for name in CANONICAL]

    return convert
