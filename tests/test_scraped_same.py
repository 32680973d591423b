"""The cheaper scraped parser and make_article give exactly what they gave before.

tests/support/scraped_reference.py keeps the code as it was before it was made cheaper
(issue 18); every input here goes through both, and the outcomes must be equal field by
field, content hash included, or fail with the same error and message. The inputs: the
golden dumps (the real seed among them) and their layout variations, a generated corpus
like the bench's, and Hypothesis-drawn text built from the lines that steer the parser
(titles, captions with credits, furniture, blank and space-only lines, every line end).
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.ingest import generate_scraped
from publisher.article import make_article, slugify
from publisher.errors import InputError
from publisher.ingest.scraped import parse_scraped
from tests.support import scraped_reference as reference
from tests.support.inbox import GOLDEN

DUMPS = sorted((GOLDEN / "inbox").rglob("*.txt"))
LAYOUTS = {
    "as-is": lambda text: text,
    "crlf": lambda text: text.replace("\n", "\r\n"),
    "cr": lambda text: text.replace("\n", "\r"),
    "bom": lambda text: "\ufeff" + text,
    "trailing-space": lambda text: text.replace("\n", " \t\u00a0\n"),
    "spaces-on-blank-lines": lambda text: text.replace("\n\n", "\n  \n"),
    "line-separators": lambda text: text.replace("\n", "\u2028"),
    "no-blank-lines": lambda text: text.replace("\n\n", "\n"),
    "stray-boms": lambda text: text.replace("\n", "\n\ufeff"),
}
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252"]


def outcome(make, *args, **kwargs):
    """What a call gives, comparable: every field with the content hash (which the
    dataclass leaves out of ==), or the error's type, source and reason."""
    try:
        result = make(*args, **kwargs)
    except (InputError, ValueError) as exc:
        return ("error", type(exc).__name__, getattr(exc, "source", None),
                getattr(exc, "reason", str(exc)))
    articles = result if isinstance(result, list) else [result]
    return [(dataclasses.astuple(a), a.content_hash) for a in articles]


def assert_same_parse(data: bytes, source: str = "x/dump.txt", sections=()) -> None:
    assert outcome(parse_scraped, data, source, sections) == \
        outcome(reference.parse_scraped, data, source, sections)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("path", DUMPS, ids=lambda p: p.name)
def test_golden_dumps_in_every_layout(path, layout):
    text = reference.decode(path.read_bytes(), path.name)
    for encoding in ENCODINGS:
        try:
            data = LAYOUTS[layout](text).encode(encoding)
        except UnicodeEncodeError:
            continue  # Arabic has no cp1252 form
        assert_same_parse(data, f"world/{path.name}", ("world",))


def test_generated_corpus():
    with tempfile.TemporaryDirectory() as tmp:
        generate_scraped(Path(tmp), 3000, 100, seed=18)
        for path in sorted(Path(tmp).rglob("*.txt")):
            assert_same_parse(path.read_bytes(), path.relative_to(tmp).as_posix())


@pytest.mark.parametrize("data", [
    b"", b"\n\n\n", b"Title only\n", b"\xff\xfe", b"\xef\xbb\xbf", b"\x00binary",
    b"\xff\xfe\x00\x00UTF-32", b"\xff\xfeT\x00\x00\xd8", b"T\n\nB\x07\x08\x01",
    b"T\n\n" + b"\x01" * 9 + b"\n", b"\x81\x8d\x8f\x90\x9d title\n\nbody\n",
    b"\xe9" * 40 + b"\n\nbody\n", b"\xef\xbb\xbfTitle \xe9\n\nBody\n", b"\xef\xbb",
    b"Same\n\nSame\n\nSame\n\nSame\n",
    b"Title\n(AP)\n\nBody\n", b"Title\nTT\n20\n\nBody\n", b"T\n\nTT\n\nT\n\nBody\n",
    b"T\n\nCap (AP)\n\nT\n\nOther (AP)\n\nBody\n", b"T\nBody one\nBody two\n\nT\nThree\n",
    b"A" * 1001 + b"\n\nBody\n", b"T\n\nB\n\n\nT\n\nB\n\n\nT\n\nC\n",
    b"T1\n\nBody 1\r\xef\xbb\xbf\n\nT2\n\nBody 2\n",  # a BOM line between CR and LF
    # Control characters near the limit, in text of more bytes than characters.
    *(("T\n\n" + "é" * 1000 + "\x01" * n + "\n").encode(enc)
      for n in (10, 11, 12) for enc in ("utf-8", "cp1252", "utf-16")),
])
def test_edge_inputs(data):
    assert_same_parse(data)


def test_long_source_and_many_sections():
    data = b"Title\n\nBody.\n"
    assert_same_parse(data, "x/" + "d" * 1100 + ".txt")
    for source in ("é" * 498 + ".txt", "é" * 499 + ".txt", "\udcff" * 333 + ".t",
                   "\udcff" * 334 + ".t", "d" * 250, "d" * 1000, "d" * 1001):
        assert_same_parse(data, source)  # near the limit on the path's bytes
    assert_same_parse(data, "x.txt", tuple(f"s{i}" for i in range(33)))
    assert_same_parse(data, "x.txt", ("s" * 65,))


# Lines that steer the parser: titles, captions with and without a credit, furniture,
# digits, blank and space-only lines, a BOM inside a line, and odd characters.
LINES = st.one_of(
    st.sampled_from(["Title", "Other title", "A caption (AP)", "Cap (AP Photo/Jo Ng)",
                     "(AP)", "TT", "20", "Share", "FONT SIZE", "a a", "", " ", "\t",
                     "\u00a0", "\ufeff", "x\ufeffy", "Ünïcode — “quoted”", "سيارات تعبر",
                     "ends in (lower)", "(AP) not at the end", "(" + "A" * 60 + ")",
                     "Body paragraph, with words.", "123", "ǅ", "ß" * 10]),
    st.text(max_size=30),
)
ENDS = st.sampled_from(["\n", "\n", "\n", "\r\n", "\r", "\u2028", "\x0b", "\x0c",
                        "\x1c", "\x85"])


@st.composite
def dumps(draw) -> str:
    lines = draw(st.lists(st.tuples(LINES, ENDS), max_size=40))
    return "".join(line + end for line, end in lines)


FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(dumps(), st.sampled_from(ENCODINGS), st.lists(st.sampled_from(["a", "b-c"]),
                                                     max_size=2))
def test_drawn_dumps(text, encoding, sections):
    data = text.encode(encoding, errors="replace")
    assert_same_parse(data, "fuzz/dump.txt", tuple(sections))


@FUZZ
@given(st.binary(max_size=600))
def test_drawn_bytes(data):
    assert_same_parse(data)


TEXT = st.text(max_size=40)
OPTIONAL = st.none() | TEXT
# Hypothesis takes naive bounds and adds the zone; from Jan 2 so any zone converts.
MOMENTS = st.none() | st.datetimes(min_value=datetime(1, 1, 2),  # noqa: DTZ001
                                   timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]))


@st.composite
def article_fields(draw) -> dict:
    fields = {"id": draw(st.text(min_size=1, max_size=70)), "title": draw(TEXT),
              "source": draw(st.text(min_size=1, max_size=20)),
              "paragraphs": draw(st.lists(st.text(max_size=400), max_size=5)),
              "source_index": draw(st.integers(0, 5))}
    optional = {"captions": st.lists(TEXT, max_size=3).map(tuple), "credit": OPTIONAL,
                "author": OPTIONAL, "image": OPTIONAL, "link": OPTIONAL,
                "published": MOMENTS, "summary": TEXT, "body_html": TEXT,
                "slug": st.text(max_size=210),
                "sections": st.lists(st.text(max_size=66), max_size=3).map(tuple)}
    for name, values in optional.items():
        if draw(st.booleans()):
            fields[name] = draw(values)
    return fields


@FUZZ
@given(article_fields())
def test_make_article_as_before(fields):
    assert outcome(make_article, **dict(fields)) == \
        outcome(reference.make_article, **dict(fields))


@FUZZ
@given(st.text(max_size=120) | st.text(alphabet="aZ09 -_é'&ﬁ", max_size=120),
       st.integers(1, 100))
def test_slugs_as_before(title, limit):
    assert slugify(title, "0123456789abcdef", limit) == \
        reference.slugify(title, "0123456789abcdef", limit)


@FUZZ
@given(st.lists(st.text(alphabet="ab &<>\"'\n\r", max_size=12), max_size=5))
def test_paragraph_html_as_before(paragraphs):
    new = make_article(id="a", title="T", source="s", paragraphs=paragraphs)
    old = reference.make_article(id="a", title="T", source="s", paragraphs=paragraphs)
    assert (new.body_html, new.content_hash) == (old.body_html, old.content_hash)
