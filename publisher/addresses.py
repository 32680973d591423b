"""Email addresses and header text from users: validated before they go anywhere.

Names and addresses end up in mail headers, so anything that could break a header out
(CR, LF, or an RFC 2047 encoded word that decodes to one: CVE-2024-6923, which Python
3.11's email package still lets through) is refused here, at the edge.
"""

from __future__ import annotations

import re
from email.header import decode_header

from email_validator import EmailNotValidError, validate_email

from publisher.errors import AddressError

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
