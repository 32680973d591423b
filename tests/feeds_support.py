"""Helpers for the feeds tests: articles stored through the real store, feeds read back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser

from publisher.article import Article, make_article, stable_id
from publisher.config import Settings
from publisher.store import Store
from publisher.store.articles import FilePlan

BASE = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
NASTY = 'Tom & Jerry <script>alert("x")</script> ]]> <b>bold</b>'
LIVE_FEEDS = ("rss.xml", "atom.xml", "feed.json")


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
