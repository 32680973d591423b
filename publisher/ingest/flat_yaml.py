"""Parse stage, front matter as nearly every file has it: `key: value` lines, read
without a YAML parser.

A YAML load (even libyaml's) cost about a fifth of a Markdown file's parse. Front matter
is nearly always one `key: value` line per key, so that case is read here with one regex
a line, and gives exactly what yaml.CSafeLoader and yaml.SafeLoader give. Only the
scanning is done here, for a class of text defined conservatively; what a value *means*
is decided by PyYAML's own code, the same code both loaders run after their parser:
the implicit resolvers of yaml.resolver.Resolver (YAML 1.1's bools yes/no/on/off, null
and ~, ints with 0x/0o/0b/_ and sexagesimal, floats, timestamps, `<<`, `=`) and the
constructors of yaml.constructor.SafeConstructor. So a date is built exactly as PyYAML
builds it, because PyYAML builds it.

The class (anything else returns None and the caller loads the text with YAML):
- every line is `key:` alone, or `key:`, spaces, and a plain value, then maybe spaces;
  no blank line, no comment line, no indented line, no final newline;
- a key is ASCII letters, digits, '_' and '-' (a letter or '_' first), at most 128
  characters, read as a string by the resolvers (not `yes`, `null`, ...), each key once;
- a value does not start with a YAML indicator (``-?:,[]{}#&*!|>'"%@` ``), has no
  ': ', no ' #' and no ':' at its end;
- no character outside the printable range both parsers read as plain text: no tab, no
  carriage return, no NEL/LS/PS line breaks, no BOM, no C0/C1 control characters, no
  surrogates;
- a value whose resolved type has no safe constructor (`<<`, `=`) or whose constructor
  raises (2026-13-45) is left to the loaders, which say what is wrong.
Such text nests two deep and expands to no more than its size: front_matter.py's
limits hold without being counted.

tests/test_front_matter_flat.py checks this against both loaders over generated text
full of YAML's special cases.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,127}):"
                  r"(?: +([^-?:,\[\]{}#&*!|>'\"%@` ](?:.*[^ ])?))? *")
# What both parsers read inside a plain scalar as the character itself ("\n" ends lines).
NOT_PLAIN = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
                       "\U00010000-\U0010ffff]")
STR = "tag:yaml.org,2002:str"
RESOLVERS = Resolver.yaml_implicit_resolvers  # first character -> [(tag, regexp)]
CONSTRUCTORS = SafeConstructor.yaml_constructors  # tag -> function(constructor, node)
TIMESTAMP = "tag:yaml.org,2002:timestamp"
# The timestamp form front matter nearly always has, which datetime.fromisoformat reads
# as PyYAML's constructor does (the same fields, the same fixed-offset zone, UTC for Z).
ISO_MOMENT = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])-[0-3][0-9]T(?:[01][0-9]|2[0-3])"
                        r":[0-5][0-9]:[0-5][0-9](?:Z|[-+](?:[01][0-9]|2[0-3]):[0-5][0-9])?")
UNSAFE_TAGS = {"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"}
CONSTRUCTOR = SafeConstructor()  # its scalar constructors keep no state


def load_flat(text: str) -> dict[str, Any] | None:
    """The mapping both YAML loaders read from text, or None: text outside the class
    (the module docstring), for them to read."""
    if not text or None in RESOLVERS or NOT_PLAIN.search(text):
        return None  # None in RESOLVERS: a resolver for every first character was added
    meta: dict[str, Any] = {}
    for line in text.split("\n"):
        match = LINE.fullmatch(line)
        if match is None:
            return None
        key, value = match[1], match[2] or ""
        if key in meta or not plain_key(key) or ": " in value or " #" in value \
                or value.endswith(":"):
            return None
        tag = resolve(value)
        if tag == STR:
            meta[key] = value
            continue
        if tag == TIMESTAMP and ISO_MOMENT.fullmatch(value):
            try:  # as PyYAML builds it, without its general regex (a tenth of the read)
                meta[key] = datetime.fromisoformat(value)
                continue
            except ValueError:  # 2025-02-30: the loaders say why
                return None
        build = CONSTRUCTORS.get(tag)
        if build is None or tag in UNSAFE_TAGS:
            return None
        try:
            meta[key] = build(CONSTRUCTOR, ScalarNode(tag, value))
        except Exception:  # a value PyYAML cannot build: the loaders say why
            return None
    return meta


@lru_cache(maxsize=1024)
def plain_key(key: str) -> bool:
    """Whether the resolvers read key as a string (a dozen keys, over and over)."""
    return resolve(key) == STR


def resolve(value: str) -> str:
    """The tag yaml.resolver.Resolver.resolve gives a plain scalar (implicit)."""
    for tag, regexp in RESOLVERS.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return STR
