"""Delivery: the raw bytes of a message: validated headers and a prepared MIME body.

Every message is multipart/alternative (text/plain first, then text/html), UTF-8,
quoted-printable. A digest is rendered once per distinct content with placeholders
(`Slots`) where each subscriber's own values go, and turned into a `Body`: pre-encoded
byte pieces with gaps. Filling the gaps for one subscriber is string escaping and a join,
not a Jinja render, an EmailMessage and a CSS pass per message.

Pieces are whole quoted-printable lines: a gap is encoded as its own soft-broken line
("=\\r\\n" on both sides), so any value fits any gap, and the pieces' DKIM relaxed
canonical forms can be computed once and joined. No encoded line begins with "." (it is
written "=2E"), so the bytes need no SMTP dot-stuffing.

Text bound for a header passes publisher.addresses.check_header_text first: CR, LF and
encoded words hiding them (CVE-2024-6923) are refused.
"""

from __future__ import annotations

import binascii
import re
import secrets
from dataclasses import dataclass, field
from email.header import Header

from publisher.addresses import check_header_text
from publisher.errors import AddressError

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
QP_LINE = 76


# ---------------------------------------------------------------- headers
def header_line(name: str, value: str) -> bytes:
    """`Name: value` + CRLF for unstructured text: RFC 2047 when not ASCII, folded."""
    check_header_text(name, value)
    charset = "us-ascii" if value.isascii() else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n".encode("ascii")


def address_line(name: str, display: str, address: str) -> bytes:
    """`Name: Display <address>` + CRLF; the display name RFC 2047-encoded when needed."""
    check_header_text(f"{name} name", display)
    check_header_text(f"{name} address", address)
    if ANGLE_OR_SPACE.search(address) or "@" not in address:
        raise AddressError(f"{name} address {address!r} is not a plain address")
    value = f"{display_phrase(display)} <{address}>" if display else address
    line = f"{name}: {value}\r\n"
    if max(len(part) for part in line.split("\r\n")) > 998:
        raise AddressError(f"{name} {value[:60]!r}... is longer than a header line may be")
    # An address that is not ASCII stays UTF-8 (RFC 6532); the transport then needs
    # SMTPUTF8 from the server and says so when it is missing.
    return line.encode("ascii" if address.isascii() else "utf-8")


ANGLE_OR_SPACE = re.compile(r"[<>\s]")
SPECIALS = re.compile(r'[][\\()<>@,:;".]')


def display_phrase(display: str) -> str:
    """A display name as RFC 5322 wants it: RFC 2047 words, quoted, or as it is."""
    if not display.isascii():
        return Header(display, "utf-8").encode(linesep="\r\n")
    if SPECIALS.search(display):
        return '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return display


def raw_line(name: str, value: str) -> bytes:
    """A header whose value we built from checked parts (ids, URLs, fixed words)."""
    check_header_text(name, value)
    return f"{name}: {value}\r\n".encode("ascii")


# ---------------------------------------------------------------- quoted-printable
def qp_line(line: bytes) -> bytes:
    """One line of text as quoted-printable lines (CRLF-joined, no final CRLF)."""
    encoded = binascii.b2a_qp(line, quotetabs=False, istext=True, header=False)
    if b"\n" not in encoded and not encoded.startswith(b"."):
        return encoded
    out = []
    for sub in encoded.split(b"\n"):
        while sub.startswith(b"."):
            # A leading dot would need SMTP dot-stuffing; =2E decodes to the same dot.
            sub = b"=2E" + sub[1:]
            if len(sub) > QP_LINE:
                out.append(b"=2E=")
                sub = sub[3:]
                continue
            break
        out.append(sub)
    return CRLF.join(out)


def qp_text(text: str, final: bool) -> bytes:
    """Text as whole quoted-printable lines; a non-final piece ends in a soft break."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8").split(b"\n")
    encoded = CRLF.join(qp_line(line) for line in lines)
    if final:
        return encoded + CRLF
    head, separator, last = encoded.rpartition(CRLF)
    if len(last) >= QP_LINE:  # no room left for the "=" of the soft break
        cut = QP_LINE - 1
        while b"=" in last[cut - 2:cut]:  # never split an =XX escape
            cut -= 1
        rest = last[cut:]
        last = last[:cut] + SOFT_BREAK + (b"=2E" + rest[1:] if rest.startswith(b".") else rest)
    return head + separator + last + SOFT_BREAK


# One line of printable ASCII without "=": quoted-printable leaves it as it is.
PLAIN_LINE = re.compile(r"[ \t!-<>-~]*")


def qp_gap(value: str) -> bytes:
    """A gap's value as its own soft-broken quoted-printable lines. Links and plain names
    take the short road: cut into 75-character lines, nothing to encode."""
    if PLAIN_LINE.fullmatch(value) and not value.endswith((" ", "\t")):
        data = value.encode("ascii")
        if len(data) < QP_LINE and not data.startswith(b"."):
            return data + SOFT_BREAK
        width = QP_LINE - 1
        if b"." not in data[::width]:  # no line would start with a dot
            return SOFT_BREAK.join([data[i:i + width] for i in range(0, len(data), width)]) \
                + SOFT_BREAK
    return qp_text(value, final=False)


WSP_RUN = re.compile(rb"[ \t]+")
TRAILING_WSP = re.compile(rb"[ \t]+\r\n")


def relaxed_body(lines: bytes) -> bytes:
    """DKIM relaxed body canonicalization of whole CRLF lines (RFC 6376 3.4.4)."""
    return TRAILING_WSP.sub(CRLF, WSP_RUN.sub(b" ", lines))


# ---------------------------------------------------------------- the body
class Slots:
    """Placeholder words standing in for per-subscriber values while a template renders.

    The nonce makes a placeholder impossible to meet in article text by accident; the
    words are letters and digits only, so autoescape and css-inline leave them alone."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names
        self.nonce = secrets.token_hex(5).upper()
        self.pattern = re.compile(f"PUBSLOT{self.nonce}X([a-z_]+)X")

    def mark(self, name: str) -> str:
        return f"PUBSLOT{self.nonce}X{name}X"

    def marks(self) -> dict[str, str]:
        return {name: self.mark(name) for name in self.names}


def escape_html_text(value: str) -> str:
    # What css-inline's serializer writes for text, so a filled skeleton equals a render.
    return (value.replace("&", "&amp;").replace("\xa0", "&nbsp;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def escape_html_attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace("\xa0", "&nbsp;").replace('"', "&quot;")


def escape_text(value: str) -> str:
    return value


@dataclass(frozen=True)
class Gap:
    name: str
    escape: object  # str -> str


@dataclass
class Body:
    """A MIME body with gaps: static pieces already encoded, gaps filled per message."""

    pieces: list[bytes | Gap]
    boundary: str
    _canonical: list[bytes | None] | None = field(default=None, repr=False)

    def fill(self, values: dict[str, str]) -> list[bytes]:
        out = []
        done: dict[str, bytes] = {}  # a value often fills several gaps the same way
        for piece in self.pieces:
            if piece.__class__ is bytes:
                out.append(piece)
                continue
            escaped = piece.escape(values[piece.name])
            encoded = done.get(escaped)
            if encoded is None:
                encoded = done[escaped] = qp_gap(escaped)
            out.append(encoded)
        return out

    def canonical(self, filled: list[bytes]) -> list[bytes]:
        """The DKIM relaxed form of a filled body, reusing the static pieces' forms."""
        if self._canonical is None:
            self._canonical = [relaxed_body(p) if p.__class__ is bytes else None
                               for p in self.pieces]
        return [static if static is not None else relaxed_body(value)
                for static, value in zip(self._canonical, filled, strict=True)]


def split_gaps(text: str, slots: Slots | None, html: bool) -> list[bytes | Gap]:
    """Encode rendered text, leaving a Gap wherever a slot placeholder stands."""
    if slots is None:
        return [qp_text(text, final=True)]
    pieces: list[bytes | Gap] = []
    position = 0
    for match in slots.pattern.finditer(text):
        pieces.append(qp_text(text[position:match.start()], final=False))
        escape = escape_text
        if html:
            escape = (escape_html_attribute if inside_tag(text, match.start())
                      else escape_html_text)
        pieces.append(Gap(match[1], escape))
        position = match.end()
    pieces.append(qp_text(text[position:], final=True))
    return pieces


def inside_tag(html: str, position: int) -> bool:
    return html.rfind("<", 0, position) > html.rfind(">", 0, position)


def part_header(subtype: str) -> bytes:
    return (f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")


def make_body(text: str, html: str, slots: Slots | None = None) -> Body:
    """multipart/alternative of the text and the HTML (rendered, CSS already inlined)."""
    # "=_" never occurs in quoted-printable output, so the boundary cannot collide.
    boundary = f"=_pub_{secrets.token_hex(12)}"
    delimiter = f"--{boundary}\r\n".encode("ascii")
    pieces: list[bytes | Gap] = [delimiter + part_header("plain")]
    pieces += split_gaps(text, slots, html=False)
    pieces.append(delimiter + part_header("html"))
    pieces += split_gaps(html, slots, html=True)
    pieces.append(f"--{boundary}--\r\n".encode("ascii"))
    return Body(merge_static(pieces), boundary)


def merge_static(pieces: list[bytes | Gap]) -> list[bytes | Gap]:
    merged: list[bytes | Gap] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def content_type_line(body: Body) -> bytes:
    return f'Content-Type: multipart/alternative; boundary="{body.boundary}"\r\n'.encode()


def assemble(headers: list[bytes], body: list[bytes]) -> bytes:
    return b"".join(headers) + CRLF + b"".join(body)


def decoded_parts(data: bytes, boundary: str) -> list[str]:
    """The decoded text of each part of a multipart body (checks and previews)."""
    parts = []
    for chunk in data.split(f"--{boundary}".encode("ascii"))[1:-1]:
        _, _, encoded = chunk.partition(b"\r\n\r\n")
        if encoded.endswith(CRLF):
            encoded = encoded[:-2]  # the CRLF before a delimiter belongs to it
        text = binascii.a2b_qp(encoded).decode("utf-8")
        parts.append(text.replace("\r\n", "\n"))
    return parts
