"""Helpers for the feeds tests: articles stored through the real store, feeds read back,
entries built by hand for feedgen, and upstream RSS for the sources tests."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser

from publisher.article import Article, make_article, stable_id
from publisher.config import Settings, load_settings
from publisher.feeds.model import Channel, Site
from publisher.store import Store
from publisher.store.articles import FilePlan, PublishedArticle

BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NASTY = 'Tom & Jerry <script>alert("x")</script> ]]> <b>bold</b>'
LIVE_FEEDS = ("rss.xml", "atom.xml", "feed.json")
SITE = Site(title="Site", url="https://example.org/", description="About", language="en",
            author="Desk", timezone=ZoneInfo("UTC"), hub="", items=50,
            folder=Path("/nonexistent"))
T1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
T2 = datetime(2026, 3, 2, 12, tzinfo=UTC)
STORED = datetime(2026, 3, 5, tzinfo=UTC)  # after both: the dates were the author's


def article(n: int, *, title: str | None = None, sections: tuple[str, ...] = ("world",),
            **fields) -> Article:
    """Article n of a test site: distinct title, two paragraphs, dated n hours after BASE
    (published=None: undated, as scraped text is)."""
    fields.setdefault("paragraphs", (f"First paragraph of article {n}.",
                                     f"Second paragraph of article {n}."))
    fields.setdefault("published", BASE + timedelta(hours=n))
    return make_article(
        id=stable_id("test", str(n)), title=title or f"Article number {n}",
        source=f"test/{n}.md", source_index=0, sections=sections, **fields)


def store_articles(store: Store, articles: list[Article], now: datetime) -> None:
    """Insert new articles, one inbox 'file' each, the way ingest does."""
    plans = [FilePlan(a.source, f"sha-{a.id}", 1, new=[a]) for a in articles]
    store.articles.save_files(plans, now)


def edit_article(store: Store, edited: Article, now: datetime) -> None:
    plan = FilePlan(edited.source, f"sha-{edited.id}-edited", 1, edited=[(edited.id, edited)])
    store.articles.save_files([plan], now)


def with_feeds(settings: Settings, **values) -> Settings:
    return dataclasses.replace(settings, feeds=dataclasses.replace(settings.feeds, **values))


def with_site(settings: Settings, **values) -> Settings:
    return dataclasses.replace(settings, site=dataclasses.replace(settings.site, **values))


def publish_folder(settings: Settings) -> Path:
    return settings.path(settings.feeds.folder)


def parse(path: Path) -> feedparser.FeedParserDict:
    """feedparser's reading of a published RSS or Atom feed. (feedparser 6, the newest
    release, does not read JSON Feed; tests read feed.json with json and its schema.)"""
    return feedparser.parse(path.read_bytes())


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every published file with its mtime and bytes (the manifest left out)."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def stored(seq: int, published: datetime, **fields) -> PublishedArticle:
    values = dict(seq=seq, id=f"id{seq}", slug=f"article-{seq}", title=f"Article {seq}",
                  summary=f"Summary {seq}", body_html=f"<p>Body {seq}</p>\n", captions=(),
                  credit=None, author=None, sections=(), image=None, link=None,
                  published=published, updated=STORED, stored_at=STORED)
    values.update(fields)
    return PublishedArticle(**values)


def channel(**fields) -> Channel:
    values = dict(title="Site", description="About", home=SITE.url,
                  self_url=SITE.url + "atom.xml", feed_id=SITE.url + "atom.xml",
                  language="en", author="Desk", hub="", updated=T2)
    values.update(fields)
    return Channel(**values)


def rss(*items: str, title: str = "Upstream") -> str:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
            f'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<channel><title>{title}</title><link>http://127.0.0.1/</link>"
            f"<description>d</description>{''.join(items)}</channel></rss>")


def item(title: str, guid: str | None = None, link: str = "", body: str = "",
         date: str = "Tue, 24 Nov 2026 08:00:00 GMT", extra: str = "") -> str:
    return ("<item>" + f"<title>{title}</title>"
            + (f"<guid isPermaLink=\"false\">{guid}</guid>" if guid else "")
            + (f"<link>{link}</link>" if link else "")
            + (f"<content:encoded><![CDATA[{body}]]></content:encoded>" if body else "")
            + f"<pubDate>{date}</pubDate>{extra}</item>")


def configure(instance, *sources: dict):
    """Add [[sources]] tables to the instance's publisher.toml and load the settings."""
    lines = []
    for source in sources:
        lines.append("[[sources]]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in source.items()]
    with open(instance / "publisher.toml", "a", encoding="utf-8") as toml:
        toml.write("\n" + "\n".join(lines) + "\n")
    return load_settings(instance)
