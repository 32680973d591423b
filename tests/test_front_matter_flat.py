"""Flat front matter read without a parser (publisher/ingest/flat_yaml.py) is exactly what
yaml.CSafeLoader and yaml.SafeLoader read (issue 18): same keys in the same order, same
values of the same types (repr compares True with 1, 1.0 with 1, a date with a datetime,
tzinfo and NaN). Wherever a loader refuses a text, the flat reader gives it back (None).

Generated text is made of YAML's special cases: every implicit type of YAML 1.1, keys
that resolve to other types, indicators, comments, quotes, tabs, line breaks other than
"\\n", indented and blank lines, duplicates. A longer campaign:
PUBLISHER_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_front_matter_flat.py
"""

from __future__ import annotations

import os
import string

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from publisher.ingest.flat_yaml import load_flat
from publisher.ingest.front_matter import parse_yaml

EXAMPLES = int(os.environ.get("PUBLISHER_FUZZ_EXAMPLES", "300"))
# Derandomized unless a campaign asks for more (as tests/test_markdown_engines.py).
BOUNDED = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 300,
                   suppress_health_check=[HealthCheck.too_slow])
LOADERS = [loader for loader in (getattr(yaml, "CSafeLoader", None), yaml.SafeLoader)
           if loader is not None]

# YAML 1.1's implicit types as PyYAML resolves them, and near misses of each.
IMPLICIT = [
    "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False",
    "on", "On", "ON", "off", "Off", "OFF", "y", "n", "Y", "yES", "tRUE", "onn",
    "null", "Null", "NULL", "~", "", "nULL", "~x", "None",
    "0", "1", "+1", "-1", "007", "08", "0x1F", "0x_1f", "0o17", "0b101", "0b", "1_000",
    "1__0", "_1", "1:30", "190:20:30", "-1:30", "1:60", "1:5", "0:30", "12e3",
    "1.5", "1.", ".5", "1.0e+5", "1.0e5", "1e+5", "-.inf", ".inf", ".Inf", "+.INF",
    ".nan", ".NaN", ".NAN", "1_000.5", "1:30.5", "1.2.3", "._", "0.",
    "2026-11-20", "2026-1-2", "2026-11-20T09:30:00", "2026-11-20t09:30:00Z",
    "2026-11-20 09:30:00.123456789 +01", "2026-11-20T9:30:00-05:30",
    "2026-11-20  09:30:00 Z", "2026-11-20T09:30:00.5", "2026-11-20T09:30:00.",
    "2026-11-20 09:30", "2026-11-20T09:30:00+0100", "2026-11-20T09:30:00+01:00",
    "2025-03-04T09:30:00+01:00", "2026-13-45", "2026-02-30", "2026-11-20T25:00:00",
    "2026-11-20T09:30:00+99:00", "0000-01-01", "9999-12-31T23:59:59-12:00",
    "2025-03-04T09:30:00Z", "2025-03-04T09:30:00+00:00", "2025-03-04T09:30:00-00:00",
    "2025-02-29T09:30:00+01:00", "2024-02-29T09:30:00+01:00", "2025-03-04T24:00:00",
    "2025-03-04T23:59:60", "2025-03-04T09:30:00+24:00", "2025-03-04T09:30:00+23:59",
    "2025-03-04T09:30:00-14:00", "0001-01-01T00:00:00+01:00", "2025-03-04T09:30:00z",
    "2025-03-04T09:30:00.000001+01:00", "2025-04-31T09:30:00", "2025-00-10T09:30:00",
    "<<", "<", "<<<", "=", "==",
]
NASTY = [
    "a: b", "a #b", "a#b", "a:", "a:b", "a :b", "'q'", '"q"', "it's", 'say "x"', "a ]",
    "[a]", "{a: b}", "a, b", "a [b]", "a {b}", "&a", "a &b", "*a", "a *b", "!x", "!!str 1",
    "|", ">", "%x", "@x", "`x`", "-", "- a", "-a", "?", "? a", "?a", ": a", ",a", "]",
    "a\tb", "a\u0085b", "a\u2028b", "a\u2029b", "a\ufeffb", "\ufeffa", "\xa0a", "a\xa0",
    "é", "\U0001f600", "a\x7fb", "a\x80b", "a\x9fb", "a  ", "a\\nb", "---", "...",
    "a\rb", "https://example.org/a.jpg", "javascript:alert(1)", "http://x/y?a=1#f",
    "C# and F#", "50% off", "a: b: c", "a -- b", "x@y.z", "a\x00b", "a\x1bb", "\ud800",
]
KEYS = st.one_of(
    st.sampled_from(["title", "date", "author", "summary", "yes", "no", "on", "Off",
                     "null", "NULL", "~", "true", "1", "0x1f", "1:30", "<<", "=", "_a",
                     "a-b", "-a", "a b", "k" * 1100, "k" * 128, "k" * 129, "ä", "?a",
                     "a:b", "#a", "y", "n", "'q'", ".inf", "2026-11-20", "a\tb"]),
    st.text(alphabet=string.ascii_letters + string.digits + "_-", min_size=1, max_size=6))
SEPARATORS = st.sampled_from([": ", ": ", ": ", ":", ":  ", ":\t", " : ", ": \t", ":   "])
SPECIALS = "[]{}&*:-,'\"!|>#%@`?~<=\\ \t\r\x85\u2028\xa0ab1T0.+_:eéx"
VALUES = st.one_of(
    st.sampled_from(IMPLICIT), st.sampled_from(NASTY),
    st.text(alphabet=SPECIALS, max_size=12), st.text(max_size=10),
    st.tuples(st.sampled_from(IMPLICIT + NASTY), st.sampled_from(IMPLICIT + NASTY),
              st.sampled_from([" ", "", ":", " #", "  "])).map(lambda t: t[0] + t[2] + t[1]))
ENTRY = st.tuples(KEYS, SEPARATORS, VALUES, st.sampled_from(["", "", "", " ", "  ", "\t"]))
LINE = st.one_of(
    ENTRY.map("".join), ENTRY.map("".join), ENTRY.map("".join),
    st.sampled_from(["", "# comment", "  indented", "---", "...", "- item", "\t", "key",
                     " title: T", "%YAML 1.1", "title: T # c", "  - a", "title"]))
NOISY = st.tuples(
    st.sampled_from(["", "", "", "\ufeff", "\n", "# c\n"]), st.lists(LINE, max_size=7),
    st.sampled_from(["", "", "", "\n", "\r\n"]),
).map(lambda t: t[0] + "\n".join(t[1]) + t[2])
# Nearly in the class, so that most examples test what the flat reader reads.
NEAR = st.lists(st.tuples(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,5}", fullmatch=True)
    | st.sampled_from(["yes", "null", "on", "_", "-", "y"]),
    st.sampled_from([": ", ": ", ": ", ":  ", ":"]),
    st.one_of(st.sampled_from(IMPLICIT),
              st.text(alphabet="ab c1.-:#'\"[]{},&*!|>%@`?~<=_é", max_size=12),
              st.text(alphabet=string.ascii_letters + string.digits + " .,'-:/éü“😀\xa0",
                      max_size=20)),
    st.sampled_from(["", "", " "])).map("".join), min_size=1, max_size=5).map("\n".join)
TEXTS = st.one_of(NOISY, NEAR)


def loaded(text: str, loader) -> tuple[str, str]:
    try:
        return "ok", repr(yaml.load(text, Loader=loader))
    except Exception as exc:  # what the loader refuses, the flat reader must not read
        return "refused", type(exc).__name__


def check(text: str) -> dict | None:
    flat = load_flat(text)
    if flat is not None:
        for loader in LOADERS:
            assert loaded(text, loader) == ("ok", repr(flat)), (loader.__name__, text)
    return flat


@BOUNDED
@given(TEXTS)
@example("title: T\ndate: 2026-11-20T09:30:00+01:00\nauthor: A")
@example("title: T\nx: <<")
@example("title: T\ntitle: U")
@example("title:T")
@example("a: b\n  c")
def test_flat_reads_what_both_loaders_read(text):
    check(text)


@pytest.mark.parametrize("value", IMPLICIT + NASTY)
def test_each_implicit_type_and_near_miss_as_the_loaders_read_it(value):
    check(f"title: T\nx: {value}")
    check(f"x: {value}\ntitle: T")


FLAT_EXAMPLES = [
    ("title: T\ndate: 2025-03-04T09:30:00+01:00\nsummary: It's 50% off: no, really",
     None),  # ': ' in a value: left to the loaders
    ("title: T\ndate: 2025-03-04T09:30:00+01:00\nauthor: Reporter 3\nimage: "
     "https://images.example.org/3.jpg\nsummary: Harbour council, storm.", "flat"),
    ("title: T\ndraft: yes\nid: 0x1f\nslug: 1_000\nupdated: 2026-11-20\nx: ~\ny:", "flat"),
    ("title: Café — “quoted” 😀\nauthor: O'Brien", "flat"),
    ("title: T\nsummary: 'quoted'", None),
    ("title: T # comment", None),
    ("title: T\n\nauthor: A", None),
    ("title: T\nyes: no", None),
    ("title: T\ndate: 2026-13-45", None),
    ("title: T\nx: <<", None),
]


@pytest.mark.parametrize(("text", "expected"), FLAT_EXAMPLES)
def test_the_class_is_what_the_module_says(text, expected):
    """The common front matter is read flat (else the fast path is never taken);
    what the docstring leaves out is left to the loaders."""
    flat = check(text)
    assert (flat is not None) == (expected == "flat"), text


def test_parse_yaml_takes_the_flat_way_and_gives_the_same(monkeypatch):
    text = "title: T\ndate: 2025-03-04T09:30:00+01:00\nsummary: S"
    slow = parse_yaml(text, "x.md", fast=False)
    monkeypatch.setattr(yaml, "load", lambda *args, **kwargs: pytest.fail("YAML loaded"))
    assert repr(parse_yaml(text, "x.md")) == repr(slow)
