"""The MIME builder: header validation and encoding, quoted-printable pieces, gaps."""

from __future__ import annotations

import email
import email.policy
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from publisher.delivery.message import (
    Slots,
    address_line,
    decoded_parts,
    header_line,
    make_body,
    qp_text,
    relaxed_body,
)
from publisher.errors import AddressError


def parse_header(line: bytes) -> str:
    message = email.message_from_bytes(line + b"\r\n", policy=email.policy.default)
    name = line.split(b":", 1)[0].decode()
    return str(message[name])


@pytest.mark.parametrize("name", [
    "Evil\r\nBcc: victim@example.org",
    "Evil\nX: y",
    "=?UTF-8?Q?Evil=0ABcc:_victim@example.org?=",
    "=?utf-8?b?RXZpbA0KQmNjOiB2aWN0aW1AZXhhbXBsZS5vcmc=?=",
    "Line\u2028separator",
])
def test_header_injection_is_refused(name):
    with pytest.raises(AddressError):
        address_line("To", name, "a@example.org")
    with pytest.raises(AddressError):
        header_line("Subject", name)


def test_cve_2024_6923_encoded_newline_is_refused_where_python_lets_it_through():
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "=?UTF-8?Q?=0A?=Bcc: victim@example.org"  # the stdlib accepts it
    assert "Bcc" in message["Subject"]
    with pytest.raises(AddressError, match="encoded word"):
        header_line("Subject", "=?UTF-8?Q?=0A?=Bcc: victim@example.org")


def test_non_ascii_names_are_rfc2047_encoded():
    line = address_line("To", "José Martí", "jose@example.org")
    assert line.isascii() and b"=?utf-8?" in line and line.endswith(b"\r\n")
    assert parse_header(line) == "José Martí <jose@example.org>"
    subject = header_line("Subject", "مهرجان الجوقة: 3 new articles")
    assert subject.isascii()
    assert parse_header(subject) == "مهرجان الجوقة: 3 new articles"


def test_names_with_specials_are_quoted():
    line = address_line("To", 'Lovelace, Ada "Countess"', "ada@example.org")
    assert parse_header(line) == '"Lovelace, Ada \\"Countess\\"" <ada@example.org>'
    assert address_line("To", "", "ada@example.org") == b"To: ada@example.org\r\n"


def test_an_address_that_is_not_one_is_refused():
    for bad in ("a@example.org>, <b@example.org", "a b@example.org", "nobody"):
        with pytest.raises(AddressError):
            address_line("To", "", bad)


def test_long_subjects_are_folded():
    subject = " ".join(["word"] * 40)
    line = header_line("Subject", subject)
    assert all(len(part) <= 78 for part in line.split(b"\r\n"))
    assert parse_header(line) == subject


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=400)


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_quoted_printable_round_trips_and_is_smtp_safe(text):
    encoded = qp_text(text, final=True)
    lines = encoded.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines)
    assert not any(line.startswith(b".") for line in lines)
    assert encoded.isascii()
    import binascii

    decoded = binascii.a2b_qp(encoded[:-2]).decode("utf-8").replace("\r\n", "\n")
    assert decoded == text.replace("\r\n", "\n").replace("\r", "\n")


def test_leading_dots_and_long_dotted_lines():
    text = "." + "." * 200 + "\n.\n..x"
    encoded = qp_text(text, final=True)
    assert not any(line.startswith(b".") for line in encoded.split(b"\r\n"))
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))


def fill_by_hand(text: str, slots: Slots, values: dict[str, str], html: bool) -> str:
    def value(match):
        raw = values[match[1]]
        # What css-inline writes for text, which the gaps reproduce.
        return (raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("\xa0", "&nbsp;")) if html else raw
    return slots.pattern.sub(value, text)


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40),
       st.text(st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_gaps_filled_decode_to_the_filled_text(name, around):
    slots = Slots(("name", "url"))
    text = f"{around}\nHello {slots.mark('name')}!\n{slots.mark('url')}\n{around}"
    html = f"<p>{around.replace('<', '')}</p><p>Hi {slots.mark('name')}</p>"
    body = make_body(text, html, slots)
    values = {"name": name, "url": "https://example.org/u/" + "x" * 90}
    pieces = body.fill(values)
    data = b"".join(pieces)
    assert data.isascii()
    assert all(len(line) <= 76 for line in data.split(b"\r\n"))
    plain, rendered = decoded_parts(data, body.boundary)
    assert plain == fill_by_hand(text, slots, values, html=False).replace("\r\n", "\n") \
        .replace("\r", "\n")
    assert rendered == fill_by_hand(html, slots, values, html=True).replace("\r\n", "\n") \
        .replace("\r", "\n")


def test_canonical_pieces_equal_the_canonical_whole():
    slots = Slots(("name",))
    body = make_body("a  b\t \nHello  " + slots.mark("name") + "  \nend\n",
                     "<p>x   y</p>" + slots.mark("name"), slots)
    pieces = body.fill({"name": "Ada   Lovelace  "})
    whole = b"".join(pieces)
    assert b"".join(body.canonical(pieces)) == relaxed_body(whole)
    assert not re.search(rb"[ \t]\r\n", b"".join(body.canonical(pieces)))


def test_the_boundary_never_occurs_in_the_parts():
    rng = random.Random(3)
    text = "".join(rng.choice("=_-pub ab\n") for _ in range(3000))
    body = make_body(text, text)
    data = b"".join(body.fill({}))
    assert data.count(f"--{body.boundary}".encode()) == 3


@pytest.mark.parametrize("value", [
    "", "x" * 74, "x" * 75, "x" * 76, "y" * 150, "x" * 74 + ".", "x" * 75 + ".abc",
    ".starts", "ends with space ", "tab\tinside", "a=b", "x" * 74 + "é",
    "https://news.example.org/unsubscribe/WzEsMF0.awWfmw.G81RI0Z9XnFZCLAzJKdHuP_qv4M",
])
def test_gap_values_are_short_dot_free_soft_lines(value):
    import binascii

    from publisher.delivery.message import qp_gap

    encoded = qp_gap(value)
    assert encoded.endswith(b"=\r\n")
    lines = encoded.split(b"\r\n")[:-1]
    assert all(len(line) <= 76 and line.endswith(b"=") for line in lines)
    assert not any(line.startswith(b".") for line in lines)
    assert binascii.a2b_qp(encoded).decode() == value
