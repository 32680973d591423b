"""Parse stage, one file: its bytes become Articles by the parser its name's suffix
picks; sub-folders of the inbox name their sections.

What a parse needs from the settings is a small picklable ParseOptions, so the same
function runs in this process and in parallel.py's worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from publisher.article import Article, section_names
from publisher.errors import InputError
from publisher.ingest.markdown import parse_markdown
from publisher.ingest.scraped import parse_scraped

if TYPE_CHECKING:  # not imported for its own sake: the parsing workers start without it
    from publisher.config import Settings

PARSERS = {".txt": "scraped", ".md": "markdown", ".markdown": "markdown"}


@dataclass(frozen=True)
class ParseOptions:
    max_markdown_bytes: int
    timezone: str
    fast: bool = True  # cmark-gfm where it agrees with markdown-it; False: markdown-it only


def options_of(settings: Settings, fast: bool = True) -> ParseOptions:
    return ParseOptions(settings.ingest.max_markdown_bytes, settings.site.timezone, fast)


def parse_bytes(data: bytes, key: str, settings: Settings) -> list[Article]:
    """Articles from one file's bytes, parsed in this process (`publisher parse`, a pass
    with few files): by markdown-it alone, which cannot crash the process (parallel.py)."""
    return parse_with(data, key, options_of(settings, fast=False))


def parse_with(data: bytes, key: str, options: ParseOptions) -> list[Article]:
    name = PurePosixPath(key)
    folders = section_names(list(name.parent.parts))
    if PARSERS.get(name.suffix.lower()) == "markdown":
        if len(data) > options.max_markdown_bytes:
            raise InputError(key, f"Markdown file is over the limit of "
                                  f"{options.max_markdown_bytes:,} bytes "
                                  "([ingest] max_markdown_bytes)")
        return parse_markdown(data, key, folders, ZoneInfo(options.timezone),
                              fast=options.fast)
    return parse_scraped(data, key, folders)

