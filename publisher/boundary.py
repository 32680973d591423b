"""The rule at every boundary where outside data enters: an inbox file (and its front
matter), an upstream feed and each of its entries, a mail to the unsubscribe box, a link
token, a setting.

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

from publisher.errors import ConfigError, InputError

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
