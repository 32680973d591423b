"""Parse stage, Markdown front matter: YAML from a stranger, read at a bounded cost.

PyYAML's safe loader builds nothing dangerous, but its cost is not bounded by the text's
size: a few hundred bytes of nested aliases (`&a [x,x,...], &b [*a,*a,...], ...`) expand
into gigabytes once anything walks the result, and 20,000 nested brackets exhaust the
recursion limit. So the text is capped, the composer counts nesting and what every
alias would expand to (scalar characters plus one per node) and stops at a limit, and
recursive aliases are refused. Values are then checked for their type here, once.
"""

from __future__ import annotations

from typing import Any

import yaml

from publisher.errors import InputError, item_errors

MAX_BYTES = 64 * 1024      # front matter is a dozen short lines; this is generous
MAX_DEPTH = 16             # the top mapping, a list of sections: depth 3
MAX_EXPANDED = 256 * 1024  # characters plus nodes, aliases counted in full
KNOWN_KEYS = {"title", "date", "author", "sections", "summary", "image", "id", "slug",
              "updated", "tags"}


class TooCostly(Exception):
    """The front matter would cost more than its limits allow."""


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
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise InputError(source, f"front matter is {size:,} bytes, over the limit of "
                                 f"{MAX_BYTES:,}: keep the body below the second '---'")
    # A date such as 2026-13-45 or an offset of +99:00 makes PyYAML's builders raise.
    with item_errors(source, "front matter has a value that cannot be read (check its date)"):
        meta = parse_yaml(text, source)
    if not isinstance(meta, dict):
        raise InputError(source, "front matter must be 'key: value' lines")
    unknown = sorted(str(key) for key in meta if key not in KNOWN_KEYS)
    if unknown:
        raise InputError(source, f"unknown front matter key {unknown[0][:100]!r}: "
                                 f"use {', '.join(sorted(KNOWN_KEYS))}")
    for key in ("title", "author", "summary", "image", "id", "slug"):
        if isinstance(meta.get(key), list | dict | set | bytes):
            raise InputError(source, f"front matter {key} must be text, not a "
                                     f"{type(meta[key]).__name__}")
    return meta


def parse_yaml(text: str, source: str) -> Any:
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data() or {}
    except TooCostly as exc:
        raise InputError(source, f"front matter refused: {exc}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 2}" if where else ""
        raise InputError(source, f"front matter is not valid YAML{line}") from exc
    finally:
        loader.dispose()
