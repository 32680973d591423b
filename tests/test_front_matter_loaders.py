"""Front matter read with libyaml (yaml.CSafeLoader) and without it (the pure-Python
BoundedLoader) gives the same values, and refuses the same texts with the same reason."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given

from publisher.errors import InputError
from publisher.ingest import front_matter
from publisher.ingest.front_matter import parse_yaml
from publisher.ingest.markdown import FRONT_MATTER, parse_markdown
from tests.support.inbox import ALIAS_BOMB
from tests.support.strategies import BOUNDED, FRONT, YAML_CHARS

GOLDEN_INBOX = Path(__file__).parent / "golden" / "ingest" / "inbox"
needs_libyaml = pytest.mark.skipif(front_matter.CLoader is None,
                                   reason="PyYAML is built without libyaml here")

CASES = [
    "title: T\ndate: 2026-11-20 09:30\nsections: [world, climate]",
    "title: 'quoted: colon'\nsummary: >\n  folded\n  text\nauthor: |\n  kept\n  lines",
    "title: T\ndate: 2026-11-21T08:00:00+01:00\nupdated: 2026-11-22",
    "title: T\nsections: &s [a, b]\ntags: *s",
    "title: T\n<<: {author: x}",
    "title: T\nid: 0x1f\nslug: 1e3",
    "title: ~\nsummary: null\nimage: ''",
    "title: T\ndate: 2026-13-45",
    "title: T\ndate: 2026-11-22T10:00:00+99:00",
    "title: T\nsummary: " + "[" * 20000 + "]" * 20000,
    "title: T\nsummary: [[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]",
    "title: T\nsummary: [[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]",
    ALIAS_BOMB,
    "title: T\nsections: &a [*a]",
    "title: T\nsections: *nowhere",
    "title: &a T\nauthor: &a U",
    "title: T\n---\nsecond: document",
    "title: [unclosed",
    "\ttitle: tab",
    "title: !!binary aGk=",
    "title: !",  # libyaml: '' (not plain), PyYAML: None (found by the generated texts)
    "title: T\nsummary: ! x\nauthor: !",
    "title: >#",  # libyaml: '', PyYAML: not valid YAML (found by the generated texts)
    "title: T\nsummary: |-2#\n  x",
    "title: !!python/object:os.system x",
    "- a list\n- not a mapping",
]


def outcome(text: str, fast: bool):
    try:
        return "ok", normal(parse_yaml(text, "x.md", fast=fast))
    except InputError as exc:
        return "refused", exc.reason
    except ValueError as exc:  # a date out of range: load_front_matter makes it the file's
        return "refused", str(exc)


def normal(value):
    """NaN never equals itself; everything else compares as it is."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {normal(k): normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normal(v) for v in value]
    return value


@needs_libyaml
@pytest.mark.parametrize("text", CASES)
def test_both_loaders_agree_on_tricky_texts(text):
    assert outcome(text, fast=True) == outcome(text, fast=False)


@needs_libyaml
def test_both_loaders_agree_on_the_golden_inputs():
    for path in sorted(GOLDEN_INBOX.rglob("*.md")):
        text = path.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        meta = FRONT_MATTER.match(text)["meta"]
        fast, pure = outcome(meta, fast=True), outcome(meta, fast=False)
        assert fast == pure and fast[0] == "ok", path.name


@needs_libyaml
@BOUNDED
@given(FRONT)
@example("title: T\nsummary: *a\nx: &a b")
def test_both_loaders_agree_on_generated_texts(text):
    assert outcome(text, fast=True) == outcome(text, fast=False)


@needs_libyaml
@BOUNDED
@given(YAML_CHARS)
@example("|#")
def test_both_loaders_agree_on_yaml_noise(text):
    """On malformed text libyaml is sometimes more lenient than the pure parser (`|#`,
    a block scalar header with a comment glued to it, is an empty value to libyaml and
    an error to PyYAML): such a text reads as libyaml reads it. Whatever both read, they
    read the same; whatever libyaml refuses, the pure loader refuses with its reason."""
    fast, pure = outcome(text, fast=True), outcome(text, fast=False)
    if (fast[0] == "ok" and pure[0] == "ok") or fast[0] == "refused":
        assert fast == pure


@needs_libyaml
def test_the_fast_path_walks_libyamls_events(monkeypatch):
    """The fast path is taken when libyaml is there (not the pure loader in disguise)."""
    calls = []
    monkeypatch.setattr(front_matter, "bounded_load",
                        lambda text: calls.append(text) or {"title": "pure"})
    assert parse_yaml("title: fast", "x.md") == {"title": "fast"}
    assert calls == []
    # A refused text is read again the pure way, which gives the reason.
    assert parse_yaml("title: [unclosed", "x.md") == {"title": "pure"}
    assert calls == ["title: [unclosed"]


def test_without_libyaml_the_pure_loader_reads_the_same(monkeypatch):
    monkeypatch.setattr(front_matter, "CLoader", None)
    data = (b"---\ntitle: T\ndate: 2026-11-20 09:30\nsections: [a, b]\n---\nBody.\n")
    [article] = parse_markdown(data, "x.md")
    assert article.title == "T" and article.sections == ("a", "b")
    with pytest.raises(InputError, match="nested"):
        parse_yaml("title: T\nsummary: " + "[" * 20000 + "]" * 20000, "x.md")
    with pytest.raises(InputError, match=re.escape("alias")):
        parse_yaml(ALIAS_BOMB, "x.md")
    assert yaml.__with_libyaml__ in (True, False)
