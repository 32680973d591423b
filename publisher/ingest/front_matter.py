"""Parse stage, Markdown front matter: YAML from a stranger, read at a bounded cost.

PyYAML's safe loader builds nothing dangerous, but its cost is not bounded by the text's
size: a few hundred bytes of nested aliases (`&a [x,x,...], &b [*a,*a,...], ...`) expand
into gigabytes once anything walks the result, and 20,000 nested brackets exhaust the
recursion limit. So the text is capped, the composer counts nesting and what every
alias would expand to (scalar characters plus one per node) and stops at a limit, and
recursive aliases are refused. Values are then checked for their type here, once.

Two ways to the same result: with libyaml present (`yaml.CSafeLoader`), libyaml's event
stream is first walked here with the same limits (`check_events`: nothing is built, and
the walk stops at the first limit), then the text is loaded by the C parser and composer,
several times faster than the pure-Python one. Without libyaml, `BoundedLoader` counts
the same things inside the pure-Python composer. A text the fast way refuses is read
again the pure way, which gives the reason, so a bad file is told the same thing either
way; tests/test_front_matter_loaders.py checks that both build the same values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentEndEvent,
    ScalarEvent,
)

from publisher.errors import InputError, item_errors
from publisher.ingest.flat_yaml import load_flat

MAX_BYTES = 64 * 1024      # front matter is a dozen short lines; this is generous
MAX_DEPTH = 16             # the top mapping, a list of sections: depth 3
MAX_EXPANDED = 256 * 1024  # characters plus nodes, aliases counted in full
KNOWN_KEYS = {"title", "date", "author", "sections", "summary", "image", "id", "slug",
              "updated", "tags"}


class TooCostly(Exception):
    """The front matter would cost more than its limits allow."""


class LibyamlDiffers(Exception):
    """Text libyaml reads otherwise than PyYAML's pure loader: read the pure way."""


CLoader = getattr(yaml, "CSafeLoader", None)  # None: PyYAML built without libyaml
# Front matter as nearly every file has it: one `key: value` line per key, no value
# starting a collection, an anchor, an alias, a tag, a block or quoted scalar. Such text
# nests two deep and expands to at most twice its size, within every limit, so the walk
# of its events is skipped (the load after it still refuses what is not valid YAML).
FLAT = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_-]*:(?:[ \t]+[^\s&*\[\]{}!|>?'\"%@`#,-][^\n]*"
                  r"|[ \t]*)(?:\n|\Z))*\Z")  # one way to match a line: linear time


# `key: >#`, `key: |-#`: libyaml reads an empty block scalar, PyYAML refuses the text.
# (It over-matches, "a|#b" in a plain value: such text is read the pure way, no less right.)
GLUED_COMMENT = re.compile(r"[|>][-+0-9]*#")


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts depth and expanded size as it goes."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = 0
        self.expanded = 0
        self.sizes: dict[int, int] = {}  # id(node) -> its expanded size, once complete

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            node = self.anchors.get(anchor)
            if node is not None:  # an unknown anchor: the composer's own error follows
                if id(node) not in self.sizes:
                    raise TooCostly(f"alias *{anchor} refers to the value it is inside")
                self.count(self.sizes[id(node)])
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise TooCostly(f"values are nested more than {MAX_DEPTH} deep")
        before = self.expanded
        self.count(1 + len(getattr(self.peek_event(), "value", "") or ""))
        node = super().compose_node(parent, index)
        self.depth -= 1
        self.sizes[id(node)] = self.expanded - before
        return node

    def count(self, size: int) -> None:
        self.expanded += size
        if self.expanded > MAX_EXPANDED:
            raise TooCostly(f"its aliases expand to over {MAX_EXPANDED:,} characters")


def load_front_matter(text: str, source: str) -> dict[str, Any]:
    """The front matter as a dict of known keys; InputError for anything else."""
    meta = load_mapping(text, source, sorted(KNOWN_KEYS), "its date")
    for key in ("title", "author", "summary", "image", "id", "slug"):
        if isinstance(meta.get(key), list | dict | set | bytes):
            raise InputError(source, f"front matter {key} must be text, not a "
                                     f"{type(meta[key]).__name__}")
    return meta


def load_mapping(text: str, source: str, keys: Sequence[str], check: str,
                 hint: str = "") -> dict[str, Any]:
    """Front matter text (an article's, an edition's, a note's) as a mapping of only
    these keys, within the limits; InputError says what is wrong. `check`: the value to
    look at when one cannot be read; `hint`: what to say of an unknown key."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise InputError(source, f"front matter is {size:,} bytes, over the limit of "
                                 f"{MAX_BYTES:,}: keep the body below the second '---'")
    # A date such as 2026-13-45 or an offset of +99:00 makes PyYAML's builders raise.
    with item_errors(source, f"front matter has a value that cannot be read (check {check})"):
        meta = parse_yaml(text, source)
    if not isinstance(meta, dict):
        raise InputError(source, "front matter must be 'key: value' lines")
    unknown = sorted(str(key) for key in meta if key not in keys)
    if unknown:
        raise InputError(source, f"unknown front matter key {unknown[0][:100]!r}: "
                                 f"{hint or 'use ' + ', '.join(keys)}")
    return meta


def parse_yaml(text: str, source: str, fast: bool = True) -> Any:
    """The YAML's one document; `fast`: flat `key: value` lines are read without a
    parser (flat_yaml.py), other text takes libyaml's way when it is there."""
    if fast:
        meta = load_flat(text)
        if meta is not None:
            return meta
    if fast and CLoader is not None:
        try:
            if not FLAT.match(text):
                if GLUED_COMMENT.search(text):
                    raise LibyamlDiffers("a block scalar header with '#' glued to it")
                check_events(yaml.parse(text, Loader=CLoader))
            return yaml.load(text, Loader=CLoader) or {}
        except Exception:  # the pure loader below says what is wrong
            # A refused or broken text is rare: the pure-Python loader reads it again, so
            # what it is told (and the line number) is the same with libyaml or without.
            pass
    try:
        return bounded_load(text)
    except TooCostly as exc:
        raise InputError(source, f"front matter refused: {exc}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where else ""
        raise InputError(source, f"front matter is not valid YAML{line}") from exc


def bounded_load(text: str) -> Any:
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data() or {}
    finally:
        loader.dispose()


def check_events(events) -> None:
    """TooCostly where BoundedLoader would raise it, counted over the first document's
    events as its composer counts nodes: depth, and expanded size with every alias
    counted in full; an alias to a node still open is recursive. Where the composer
    itself would fail (an unknown or repeated anchor, a second document), the walk
    stops and leaves the error to the load that follows. LibyamlDiffers where libyaml
    would read a value otherwise than the pure loader (an empty value tagged '!')."""
    expanded = 0
    open_nodes: list[tuple[int, str | None]] = []  # (expanded at its start, its anchor)
    sizes: dict[str, int] = {}  # anchor -> expanded size of its complete node
    opened: set[str] = set()
    for event in events:
        if isinstance(event, AliasEvent):
            if event.anchor in opened:
                raise TooCostly(f"alias *{event.anchor} refers to the value it is inside")
            if event.anchor not in sizes:
                return
            expanded += sizes[event.anchor]
        elif isinstance(event, ScalarEvent) and event.tag == "!" and not event.value:
            # `key: !`: libyaml marks the empty value not plain (so ''), PyYAML plain
            # (so None). The pure loader reads it, as it would without libyaml.
            raise LibyamlDiffers("an empty value tagged '!'")
        elif isinstance(event, ScalarEvent | CollectionStartEvent):
            if len(open_nodes) + 1 > MAX_DEPTH:
                raise TooCostly(f"values are nested more than {MAX_DEPTH} deep")
            if event.anchor is not None and (event.anchor in sizes or event.anchor in opened):
                return
            size = 1 + len(event.value if isinstance(event, ScalarEvent) else "")
            if isinstance(event, ScalarEvent):
                expanded += size
                if event.anchor is not None:
                    sizes[event.anchor] = size
            else:
                open_nodes.append((expanded, event.anchor))
                expanded += size
                if event.anchor is not None:
                    opened.add(event.anchor)
        elif isinstance(event, CollectionEndEvent):
            start, anchor = open_nodes.pop()
            if anchor is not None:
                opened.discard(anchor)
                sizes[anchor] = expanded - start
        elif isinstance(event, DocumentEndEvent):
            return
        if expanded > MAX_EXPANDED:
            raise TooCostly(f"its aliases expand to over {MAX_EXPANDED:,} characters")
