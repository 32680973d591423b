"""Parse stage, Markdown: one article per .md file, YAML front matter then the body.

The body is rendered with markdown-it-py (CommonMark plus tables), or by cmark-gfm where
the two are known to agree (cmark.py); raw HTML in it is allowed through the renderer and
then sanitized with nh3, so authors can embed a figure but never a script.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

from publisher.article import (
    Article,
    image_url_problem,
    make_article,
    published_utc,
    section_names,
    stable_id,
    summarize,
)
from publisher.errors import InputError
from publisher.ingest import cmark
from publisher.ingest.front_matter import load_front_matter
from publisher.ingest.scraped import decode

FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?P<meta>.*?)\n---[ \t]*(?:\n(?P<body>.*))?\Z", re.S)

markdown = MarkdownIt("commonmark", {"html": True}).enable("table")
# nh3.clean's defaults, built once: nh3.clean builds its sanitiser again on every call
# (about 20 us, a tenth of a worker's file). Same defaults, same output (the golden tests).
sanitize = nh3.Cleaner().clean if hasattr(nh3, "Cleaner") else nh3.clean


def parse_markdown(data: bytes, source: str, sections: tuple[str, ...] = (),
                   tz: ZoneInfo | None = None, fast: bool = True) -> list[Article]:
    """The file's one Article; fast=False: markdown-it renders the body whatever it is
    (what a worker's crash falls back to: parallel.py)."""
    text = decode(data, source)
    if "\r" in text:  # a one-character test first: most files have none to replace
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    match = FRONT_MATTER.match(text)
    if not match:
        raise InputError(source, "no front matter: start the file with a '---' line, "
                                 "then title: ..., then '---'")
    meta = load_front_matter(match["meta"], source)
    body = match["body"] or ""
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InputError(source, "front matter has no title: add a line 'title: ...'")
    html, texts = render_body(body, fast)
    paragraphs = tuple(texts)
    if not paragraphs:
        raise InputError(source, "the article has a title but no body text")
    summary = meta.get("summary")
    return [make_article(
        id=str(meta.get("id") or stable_id(source)),
        title=" ".join(title.split()),
        paragraphs=paragraphs,
        body_html=sanitize(html),
        summary=" ".join(str(summary).split()) if summary else summarize(paragraphs),
        source=source,
        author=str(meta["author"]) if meta.get("author") else None,
        sections=tuple(dict.fromkeys(section_names(meta.get("sections", meta.get("tags")))
                                     or sections)),
        image=image_of(meta, source),
        published=read_date(meta.get("date"), source, tz or ZoneInfo("UTC")),
        **({"slug": str(meta["slug"])} if meta.get("slug") else {}),
    )]


def render_body(body: str, fast: bool = True) -> tuple[str, list[str]]:
    """The body's unsanitised HTML and paragraph texts, from one parse.

    cmark-gfm (C, about eight times faster) where it is known to give the same output as
    markdown-it (see cmark.py), markdown-it otherwise.
    """
    rendered = cmark.render(body) if fast else None
    if rendered is not None:
        return rendered
    tokens = markdown.parse(body)  # once, for both the HTML and the plain text
    return markdown.renderer.render(tokens, markdown.options, {}), paragraph_texts(tokens)


def image_of(meta: dict, source: str) -> str | None:
    if not meta.get("image"):
        return None
    url = str(meta["image"]).strip()
    problem = image_url_problem(url)
    if problem:
        raise InputError(source, f"front matter image {url[:60]!r} {problem}")
    return url


def read_date(value: object, source: str, tz: ZoneInfo) -> datetime | None:
    """Front matter dates in any common form; a date without a zone is in the site's."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0))
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise InputError(source, f"date {value!r} is not a date such as "
                                     "2026-11-24 or 2026-11-24T09:30:00+01:00") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return published_utc(moment, source)


def paragraph_texts(tokens: list[Token]) -> list[str]:
    """Plain text of each block, for text mail and summaries."""
    texts, parts = [], []
    for token in tokens:
        if token.type == "inline":
            parts.append("".join(
                " " if "break" in child.type else child.content
                for child in token.children or () if child.type != "html_inline"))
        elif token.type in {"paragraph_close", "heading_close", "tr_close", "fence",
                            "code_block"}:
            if token.type in {"fence", "code_block"}:
                parts.append(token.content)
            text = " ".join(" ".join(parts).split())
            if text:
                texts.append(text)
            parts = []
    return texts
