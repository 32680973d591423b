"""Shared wording for every stage's report lines: a count with its noun, singular for
one ("1 article", "2 articles"), so no line a user reads says "1 articles"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
