"""Editions on the web: a page per edition that started sending, the list of them and the
editions feeds (Atom, RSS, JSON Feed), parsed back with feedparser and the JSON Feed
schema; a scheduled edition appears nowhere before its time."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import feedparser
import jsonschema

from publisher.editions import queue_editions
from publisher.feeds import build_feeds
from tests.support import NOW
from tests.support.editions import write_edition
from tests.support.mail import add_articles, add_subscriber

SCHEMA = Path(__file__).parent / "schemas" / "jsonfeed-1.1.schema.json"


def publish(settings, store, now=NOW):
    queue_editions(settings, store, now)
    build_feeds(settings, store, now)
    return settings.path(settings.feeds.folder)


def test_edition_pages_and_feeds(settings, store, instance):
    add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=2))
    add_subscriber(store, "a@example.org", NOW)
    write_edition(instance, "spring-letter", subject="Fish & <Chips>",
                  extra="articles: latest 1")
    write_edition(instance, "later", subject="Not yet", extra="send_at: 2030-01-01 09:00")
    folder = publish(settings, store)

    page = (folder / "editions" / "spring-letter.html").read_text()
    assert "<h1>Fish &amp; &lt;Chips&gt;</h1>" in page
    assert "alert(1)" not in page and "onclick" not in page
    assert "<strong>welcome</strong>" in page and "Harbour Reopens" in page
    assert 'href="../style.css"' in page  # the one style sheet
    assert not (folder / "editions" / "later.html").exists()

    listing = (folder / "editions" / "index.html").read_text()
    assert 'href="../editions/spring-letter.html"' in listing and "Not yet" not in listing
    index = (folder / "index.html").read_text()
    assert 'href="./editions/spring-letter.html"' in index
    assert 'href="http://127.0.0.1:8080/editions/atom.xml"' in index
    assert "Not yet" not in index

    base = settings.site.base_url
    for name in ("atom.xml", "rss.xml"):
        feed = feedparser.parse((folder / "editions" / name).read_bytes())
        assert not feed.bozo, feed.bozo_exception
        assert [e.title for e in feed.entries] == ["Fish & <Chips>"]
        entry = feed.entries[0]
        assert entry.link == f"{base}editions/spring-letter.html"
        assert "<strong>welcome</strong>" in entry.content[0].value
        assert "alert(1)" not in entry.content[0].value
    document = json.loads((folder / "editions" / "feed.json").read_text())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator
                               .FORMAT_CHECKER).validate(document)
    assert [i["title"] for i in document["items"]] == ["Fish & <Chips>"]


def test_a_scheduled_edition_appears_once_its_time_has_come(settings, store, instance):
    write_edition(instance, "later", subject="At nine", extra="send_at: 2026-11-25 09:00")
    folder = publish(settings, store)
    assert not (folder / "editions").exists()
    assert "At nine" not in (folder / "index.html").read_text()
    publish(settings, store, NOW + timedelta(days=1))
    assert "At nine" in (folder / "editions" / "later.html").read_text()
    assert "At nine" in (folder / "index.html").read_text()
    feed = feedparser.parse((folder / "editions" / "rss.xml").read_bytes())
    assert [e.title for e in feed.entries] == ["At nine"]


def test_a_second_build_leaves_edition_files_alone(settings, store, instance):
    write_edition(instance, "letter")
    folder = publish(settings, store)
    page = folder / "editions" / "letter.html"
    before = page.stat().st_mtime_ns
    report = build_feeds(settings, store, NOW + timedelta(hours=1))
    assert report.written == 0 and page.stat().st_mtime_ns == before


def test_relative_links_are_read_against_the_site(settings, store, instance):
    (instance / "editions").mkdir()
    (instance / "editions" / "map.md").write_text(
        "---\nsubject: The map\n---\nSee [the map](maps/town.html) and ![a map](/img/m.png).\n")
    folder = publish(settings, store)
    base = settings.site.base_url
    page = (folder / "editions" / "map.html").read_text()
    assert f'href="{base}maps/town.html"' in page and f'src="{base}img/m.png"' in page
    feed = feedparser.parse((folder / "editions" / "atom.xml").read_bytes())
    assert f'href="{base}maps/town.html"' in feed.entries[0].content[0].value
