"""Feeds stage, JSON Feed 1.1 (https://jsonfeed.org/version/1.1), from the same entries.

feedgen does not write JSON Feed, so this builds it from the Entry and Channel the RSS
and Atom writers use. Output is HTML-safe: "<", ">" and "&" are written as \\u escapes,
so no markup appears literally in the file even though titles are plain text.
"""

from __future__ import annotations

import json
from datetime import datetime

from publisher.feeds.model import Channel, Entry

VERSION = "https://jsonfeed.org/version/1.1"


def json_item(entry: Entry) -> dict:
    item: dict = {"id": entry.id, "url": entry.url}
    if entry.via:
        item["external_url"] = entry.via
    item.update(title=entry.title, content_html=entry.content_html, summary=entry.summary)
    if entry.image:
        item["image"] = entry.image.url
    item.update(date_published=rfc3339(entry.published), date_modified=rfc3339(entry.updated),
                authors=[{"name": entry.author}])
    if entry.sections:
        item["tags"] = list(entry.sections)
    return item


def json_document(channel: Channel, items: list[dict]) -> bytes:
    feed: dict = {
        "version": VERSION,
        "title": channel.title,
        "home_page_url": channel.home,
        "feed_url": channel.self_url,
        "description": channel.description,
        "language": channel.language,
        "authors": [{"name": channel.author}],
    }
    if channel.hub:
        feed["hubs"] = [{"type": "WebSub", "url": channel.hub}]
    feed["items"] = items
    # The three characters only occur inside JSON strings, so escaping them is safe.
    # Compact: with indent, json falls back to its pure-Python encoder (several times
    # slower), and readers never look at the whitespace.
    text = json.dumps(feed, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    return (text + "\n").encode()


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
