"""Test support: bounded Hypothesis settings and the front matter strategies, shared by
the fuzz suite (tests/test_fuzz.py) and the YAML loaders' agreement test."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("PUBLISHER_FUZZ_EXAMPLES", "150"))
BOUNDED = settings(max_examples=EXAMPLES, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(["title", "date", "author", "sections", "summary", "image", "id",
                        "slug", "updated", "tags", "unknown"])
YAML_CHARS = st.text(alphabet="[]{}&*:-,'\"!|>#\n ab019TZ+.<=%@`?~\\", max_size=60)
SCALARS = st.one_of(st.text(max_size=40), st.integers(), st.floats(), st.booleans(),
                    st.none(), st.dates().map(str), st.datetimes().map(str),
                    st.sampled_from(["2026-11-22T25:61:00", "2026-13-45", "+99:00",
                                     "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00",
                                     "javascript:alert(1)", "data:,x", "http://x/y.png",
                                     "../../etc/passwd", "&a [*a]", "*a", "!!binary aGk=",
                                     "!!python/object:os.system", "1e999", "0x" + "f" * 30]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
FRONT = st.one_of(
    st.dictionaries(KEYS, VALUES, max_size=8).map(
        lambda meta: "\n".join(f"{key}: {json.dumps(value, default=str)}"
                               for key, value in meta.items())),
    st.lists(st.tuples(KEYS, YAML_CHARS), max_size=8).map(
        lambda pairs: "\n".join(f"{key}: {value}" for key, value in pairs)),
)
