"""Errors a user can cause, as one shallow tree; the CLI prints them on one line.

    PublisherError            anything the user can fix; never shown with a traceback
    ├── ConfigError           a bad setting: names the key, the value and what is accepted
    ├── InputError            a file or entry that cannot become an article
    ├── AddressError          an email address or header value that is refused
    ├── TemplateError         a template that does not render (file:line)
    ├── StoreError            the database cannot be opened or upgraded
    └── DeliveryError         the mail transport is unusable as configured

Third-party errors are wrapped with `raise ... from` so the cause stays in debug logs.

Below the tree, the rule at every boundary where outside data enters (item_errors,
setting_errors): an inbox file (and its front matter), an upstream feed and each of its
entries, a mail to the unsubscribe box, a link token, a setting.

Whatever a parser raises on a stranger's data (ValueError from a date, OverflowError
from a timestamp, RecursionError, LookupError from a charset, ...) becomes that item's
error, with a reason a person can act on: the item is quarantined or skipped and the
pass goes on. The work per item is bounded before parsing (sizes, depths, alias
expansion, counts), so this rule never has to catch a MemoryError or wait for ever.
Callers wrap the whole item once, here, instead of guessing which exceptions a library
may raise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class PublisherError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(PublisherError):
    exit_code = 2

    def __init__(self, key: str, value: object, accepted: str):
        self.key, self.value, self.accepted = key, value, accepted
        super().__init__(f"setting {key} = {value!r} is not valid: expected {accepted}")


class InputError(PublisherError):
    def __init__(self, source: str, reason: str):
        self.source, self.reason = source, reason
        super().__init__(f"{source}: {reason}")


class AddressError(PublisherError):
    pass


class TemplateError(PublisherError):
    pass


class StoreError(PublisherError):
    pass


class DeliveryError(PublisherError):
    pass


# ---------------------------------------------------------------- the boundary rule
log = logging.getLogger(__name__)

REASON_CHARS = 200


class Gone(Exception):
    """The item went away before it was read (a file removed after the listing): not an
    error of the item's, nothing to quarantine; passes through item_errors."""


@contextmanager
def item_errors(source: str, what: str = "could not be read") -> Iterator[None]:
    """Any exception inside becomes InputError(source, ...); InputError passes as it is."""
    try:
        yield
    except (InputError, Gone):
        raise
    except Exception as exc:
        log.debug("%s: %s", source, what, exc_info=exc)
        raise InputError(source, f"{what} ({describe(exc)})") from exc


@contextmanager
def setting_errors(key: str, value: object, accepted: str) -> Iterator[None]:
    """Any exception inside a setting's check becomes that setting's ConfigError."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(key, value, f"{accepted} ({describe(exc)})") from exc


def describe(exc: BaseException) -> str:
    """One line: the exception's type and the start of its message."""
    text = " ".join(str(exc).split())[:REASON_CHARS]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
