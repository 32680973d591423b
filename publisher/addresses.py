"""Email addresses and header text from users: validated before they go anywhere.

Names and addresses end up in mail headers, so anything that could break a header out
(CR, LF, or an RFC 2047 encoded word that decodes to one: CVE-2024-6923, which Python
3.11's email package still lets through) is refused here, at the edge.

The domain the site's mail speaks for (`message_domain`) lives here too: digests
(Message-IDs), confirmations and delivery (List-Unsubscribe, VERP) all need it.
"""

from __future__ import annotations

import ipaddress
import re
from email.header import decode_header
from email.utils import parseaddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from publisher.errors import AddressError

if TYPE_CHECKING:
    from publisher.config import Settings

LINE_BREAK = re.compile(r"[\r\n\x00\u2028\u2029\x85]")
ENCODED_WORD = re.compile(r"=\?[^?]+\?[bBqQ]\?[^?]*\?=")


def normalize_address(address: str) -> str:
    """The address as stored: syntax checked (no DNS), domain and local part lower-cased."""
    address = address.strip()
    if LINE_BREAK.search(address):
        raise AddressError(f"{address!r} is not a valid address: it contains a line break")
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(f"{address!r} is not a valid address: {exc}") from exc
    return valid.normalized.lower()


def check_header_text(what: str, text: str) -> str:
    """Text bound for a header (a name, a subject): one line, also once decoded."""
    if LINE_BREAK.search(text):
        raise AddressError(f"{what} {text!r} contains a line break")
    for word in ENCODED_WORD.findall(text):
        try:
            decoded = "".join(part.decode(charset or "ascii", "replace")
                              if isinstance(part, bytes) else part
                              for part, charset in decode_header(word))
        except (LookupError, ValueError) as exc:
            raise AddressError(f"{what} {text!r} has a broken encoded word") from exc
        if LINE_BREAK.search(decoded):
            raise AddressError(f"{what} {text!r} hides a line break in an encoded word")
    return text


def mailbox(text: str) -> tuple[str, str]:
    """(display name, address) of a setting such as 'Site <news@example.org>'."""
    display, address = parseaddr(text)
    if "@" not in address:
        raise AddressError(f"{text!r} is not an address such as 'Name <news@example.org>'")
    return check_header_text("display name", display), address


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def message_domain(settings: Settings) -> str:
    """The site's domain for Message-IDs; the From domain when the site is an IP address
    or a bare host name such as localhost."""
    host = (urlsplit(settings.site.url).hostname or "").lower()
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
    if host and "." in host and not is_ip:
        return host
    return domain_of(mailbox(settings.mail.from_)[1])
