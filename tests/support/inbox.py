"""Helpers for the inbox tests: scraped dumps and files written into the inbox, and a
YAML alias bomb for the hostile-input tests."""

from __future__ import annotations

from publisher.ingest.scraped import format_scraped, join_articles


def dump(*titles: str, body: str = "A paragraph.") -> str:
    return join_articles([format_scraped(t, [body, f"More about {t}."], f"{t} photo. (AP)")
                          for t in titles])


def write(settings, name: str, text: str | bytes):
    path = settings.path("articles") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


ALIAS_BOMB = ("title: T\nsummary: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
              + "".join(f"s{i}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
                        for i, (p, c) in enumerate(zip("abcdefgh", "bcdefghi", strict=True)))
              + "author: *i\n")
