"""The feeds as readers get them: feedparser reads every feed back, feed.json passes the
JSON Feed 1.1 schema, and markup in titles, captions and bodies stays text everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import lxml.html
import pytest

from publisher.feeds import build_feeds
from publisher.templating import ZONE_SCRIPT
from tests.support import NOW, SHARED
from tests.support.feeds import (
    NASTY,
    article,
    parse,
    publish_folder,
    store_articles,
    with_site,
)

SITE = "https://news.example.org/site/"
# The JSON Feed 1.1 schema from ../shared/schemas, kept here (ISC licence beside it) so the
# test runs in a clone without ../shared; test_schema_copy_is_current keeps them equal.
SCHEMA = Path(__file__).parent / "schemas" / "jsonfeed-1.1.schema.json"
VERSIONS = {"rss.xml": "rss20", "atom.xml": "atom10", "feed.json": "json11"}
RTL_TITLE = "مجلس المدينة يصوت على الميزانية"


@pytest.fixture
def feeds_folder(settings, store):
    """A small site: markup everywhere, two sections, an image, an upstream article."""
    settings = with_site(settings, url=SITE, title="News & <Views>", author="Desk <3>")
    images = publish_folder(settings) / "images"
    images.mkdir(parents=True)
    (images / "one.jpg").write_bytes(b"\xff\xd8" + b"x" * 1000)
    store_articles(store, [
        article(1, title=NASTY, sections=("world", "science"), captions=(f"{NASTY} (AP)",),
                credit="AP", image="images/one.jpg",
                paragraphs=(f"{NASTY} in the body.", "Second paragraph.")),
        article(2, sections=("science",), author="Ada <Lovelace> & co",
                body_html='<p>See <a href="notes/a.html">notes</a>, <a href="#fn1">1</a> '
                          'and <img src="/img/x.png" alt="x"></p>\n'),
        article(3, sections=(), link="https://upstream.example.org/story?id=1&x=2"),
        article(4, title=RTL_TITLE, sections=("world",)),
    ], NOW)
    build_feeds(settings, store, NOW)
    return publish_folder(settings)


def feed_files(folder, names=tuple(VERSIONS)):
    return sorted(p for name in names for p in folder.rglob(name))


def test_every_feed_reads_back_cleanly(feeds_folder):
    assert {p.relative_to(feeds_folder).as_posix() for p in feed_files(feeds_folder)} == {
        f"{prefix}{name}" for prefix in ("", "sections/world/", "sections/science/")
        for name in VERSIONS}
    for path in feed_files(feeds_folder, ("rss.xml", "atom.xml")):
        feed = parse(path)
        assert feed.bozo == 0, (path, feed.get("bozo_exception"))
        assert feed.version == VERSIONS[path.name], path
        ids = [entry.id for entry in feed.entries]
        assert len(ids) == len(set(ids)) and ids, path
        published = [entry.published_parsed for entry in feed.entries]
        assert published == sorted(published, reverse=True), f"{path}: not newest first"
        for entry in feed.entries:
            assert entry.link.startswith(SITE + "articles/"), path
            assert all(is_absolute(link.href) for link in entry.get("links", [])), path
            assert entry.content[0].type == "text/html", path
        assert feed.feed.link.startswith(SITE) and not feed.feed.link.endswith(path.name)


def is_absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def test_site_feed_head(feeds_folder):
    atom = parse(feeds_folder / "atom.xml")
    assert atom.feed.title == "News & <Views>"
    assert atom.feed.link == SITE  # the site's index, not the feed
    links = {link.rel: link.href for link in atom.feed.links}
    assert links["self"] == SITE + "atom.xml"
    assert atom.feed.language == "en"
    assert atom.feed.generator == "Publisher"
    # updated is the newest entry's time, not the time of the build.
    newest = max(entry.updated_parsed for entry in atom.entries)
    assert atom.feed.updated_parsed == newest
    rss = parse(feeds_folder / "rss.xml")
    assert rss.feed.link == SITE
    assert {link.rel: link.href for link in rss.feed.links}["self"] == SITE + "rss.xml"
    assert rss.feed.updated_parsed == newest  # lastBuildDate
    section = parse(feeds_folder / "sections" / "science" / "atom.xml")
    assert section.feed.link == SITE + "sections/science/"
    assert [e.title for e in section.entries] == ["Article number 2", NASTY]


def test_entries_carry_everything(feeds_folder):
    rss, atom = parse(feeds_folder / "rss.xml"), parse(feeds_folder / "atom.xml")
    for feed in (rss, atom):
        first = next(e for e in feed.entries if e.title == NASTY)
        assert first.id == SITE + "articles/" + first.link.rsplit("/", 1)[1]
        assert unescape(first.summary) == f"{NASTY} in the body."
        assert "&lt;script&gt;" in first.content[0].value
        assert {tag.term for tag in first.tags} == {"world", "science"}
        assert first.author == "Desk <3>"  # the site's default author
        assert first.published_parsed
        second = next(e for e in feed.entries if e.title == "Article number 2")
        assert second.author == "Ada <Lovelace> & co"
        assert f'href="{SITE}notes/a.html"' in second.content[0].value
        assert f'href="{SITE}articles/{second.link.rsplit("/", 1)[1]}#fn1"' \
            in second.content[0].value
        assert 'src="https://news.example.org/img/x.png"' in second.content[0].value
    image = SITE + "images/one.jpg"
    first_rss = next(e for e in rss.entries if e.title == NASTY)
    assert first_rss.media_content[0]["url"] == image
    assert first_rss.media_content[0]["medium"] == "image"
    first_atom = next(e for e in atom.entries if e.title == NASTY)
    assert first_atom.enclosures == [{"href": image, "type": "image/jpeg", "length": "1002"}]
    assert [link.rel for link in first_atom.links] == ["alternate", "enclosure"]
    assert all(entry.updated_parsed >= entry.published_parsed for entry in atom.entries)
    via = next(e for e in atom.entries if e.title == "Article number 3")
    assert {link.rel: link.href for link in via.links}["via"] == \
        "https://upstream.example.org/story?id=1&x=2"


def test_rss_guid_is_the_permalink(feeds_folder):
    raw = (feeds_folder / "rss.xml").read_text()
    assert f'<guid isPermaLink="true">{SITE}articles/' in raw
    # description (the summary) comes before content:encoded, author as dc:creator
    item = raw[raw.index("<item>"):raw.index("</item>")]
    assert item.index("<description>") < item.index("<content:encoded>")
    assert "<dc:creator>" in item and "<author>" not in item


def test_json_feed_reads_back_like_the_others(feeds_folder):
    for path in feed_files(feeds_folder, ("feed.json",)):
        data = json.loads(path.read_bytes())
        atom = parse(path.with_name("atom.xml"))
        items = data["items"]
        assert [i["id"] for i in items] == [e.id for e in atom.entries], path
        assert [i["title"] for i in items] == [e.title for e in atom.entries], path
        assert len({i["id"] for i in items}) == len(items) > 0
        published = [datetime.fromisoformat(i["date_published"]) for i in items]
        assert published == sorted(published, reverse=True), f"{path}: not newest first"
        for item in items:
            assert item["url"].startswith(SITE + "articles/")
            assert item["content_html"].startswith(("<p>", "<figure>"))
        assert data["home_page_url"].startswith(SITE) and data["home_page_url"].endswith("/")


def test_schema_copy_is_current():
    shared = SHARED / "schemas" / SCHEMA.name
    if not shared.exists():
        pytest.skip(f"{shared} is absent (the shared folder is not beside the repo)")
    assert SCHEMA.read_bytes() == shared.read_bytes()


def test_json_feed_matches_the_schema(feeds_folder):
    schema = json.loads(SCHEMA.read_text())
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    assert {"date-time", "uri"} <= set(checker.checkers), "format checks are not installed"
    validator = jsonschema.Draft7Validator(schema, format_checker=checker)
    for path in feeds_folder.rglob("feed.json"):
        data = json.loads(path.read_bytes())
        errors = sorted(validator.iter_errors(data), key=str)
        assert not errors, f"{path}: {errors[0]}"
        assert data["version"] == "https://jsonfeed.org/version/1.1"
        assert data["feed_url"] == SITE + path.relative_to(feeds_folder).as_posix()
        for item in data["items"]:
            assert datetime.fromisoformat(item["date_published"]).tzinfo is not None
    data = json.loads((feeds_folder / "feed.json").read_bytes())
    first = next(i for i in data["items"] if i["title"] == NASTY)
    assert first["image"] == SITE + "images/one.jpg"
    assert first["summary"] == f"{NASTY} in the body."
    assert first["tags"] == ["world", "science"]
    upstream = next(i for i in data["items"] if i["title"] == "Article number 3")
    assert upstream["external_url"] == "https://upstream.example.org/story?id=1&x=2"


def test_markup_is_text_in_every_feed_and_page(feeds_folder):
    published = [p for p in feeds_folder.rglob("*") if p.suffix in {".xml", ".json", ".html"}]
    assert len(published) > 10
    ours = f"<script>{ZONE_SCRIPT}</script>".encode()  # the subscribe form's, by its hash
    for path in published:
        raw = path.read_bytes().replace(ours, b"")
        assert b"<script" not in raw.lower(), path
        assert b"]]>" not in raw, path
        assert b"Tom & Jerry" not in raw, path
    expected = {"": {NASTY, RTL_TITLE}, "sections/world/": {NASTY, RTL_TITLE},
                "sections/science/": {NASTY}}
    for path in feed_files(feeds_folder):
        prefix = (path.parent.relative_to(feeds_folder).as_posix() + "/"
                  if path.parent != feeds_folder else "")
        if path.suffix == ".json":
            titles = {item["title"] for item in json.loads(path.read_bytes())["items"]}
        else:
            titles = {entry.title for entry in parse(path).entries}
        assert expected[prefix] <= titles, path


def test_pages_show_the_text_as_written(feeds_folder):
    index = lxml.html.fromstring((feeds_folder / "index.html").read_bytes())
    assert NASTY in [a.text_content() for a in index.xpath("//h3/a")]
    assert index.xpath("//html/@lang") == ["en"]
    page_link = index.xpath(f'//h3/a[text()="{RTL_TITLE}"]/@href')[0]
    assert page_link.startswith("./articles/")
    nasty_href = next(a.get("href") for a in index.xpath("//h3/a") if a.text_content() == NASTY)
    page = lxml.html.fromstring((feeds_folder / nasty_href).read_bytes())
    assert page.xpath("//h1")[0].text_content() == NASTY
    assert page.xpath("//title")[0].text_content() == f"{NASTY} · News & <Views>"
    assert page.xpath("//figcaption/span[@class='caption']")[0].text_content() == NASTY
    assert page.xpath("//figcaption/span[@class='credit']")[0].text_content() == "Photo: AP"
    assert page.xpath("//div[@class='body']/p")[0].text_content() == f"{NASTY} in the body."
    assert page.xpath("//figure/img/@src") == [SITE + "images/one.jpg"]
    assert [a.get("href") for a in page.xpath("//ul[@class='section-links']//a")] == \
        ["../sections/world/", "../sections/science/"]
    times = page.xpath("//p[@class='meta']/time")
    assert times[0].get("datetime") == "2026-11-01T10:00:00+00:00"
    assert times[0].text_content() == "1 November 2026, 10:00 UTC"


def test_index_offers_every_feed_and_the_subscribe_form(feeds_folder):
    index = lxml.html.fromstring((feeds_folder / "index.html").read_bytes())
    alternates = {link.get("href"): link.get("type")
                  for link in index.xpath('//link[@rel="alternate"]')}
    feeds = {SITE + p.relative_to(feeds_folder).as_posix() for p in feed_files(feeds_folder)}
    assert set(alternates) == feeds
    assert alternates[SITE + "rss.xml"] == "application/rss+xml"
    assert alternates[SITE + "atom.xml"] == "application/atom+xml"
    assert alternates[SITE + "feed.json"] == "application/feed+json"
    linked = set(index.xpath("//a/@href"))
    assert feeds <= linked, "the index links every feed"
    form = index.xpath("//form")[0]
    assert form.get("method") == "post" and form.get("action") == SITE + "subscribe"
    assert form.xpath(".//input[@name='email']/@type") == ["email"]
    assert form.xpath(".//input[@name='name']")
    assert form.xpath(".//select[@name='frequency']/option/@value") == \
        ["daily", "weekly", "instant"]
    assert form.xpath(".//input[@name='sections']/@value") == ["science", "world"]
    for field in form.xpath(".//input[@id] | .//select[@id]"):
        assert form.xpath(f".//label[@for='{field.get('id')}']"), "every field has a label"


def test_page_times_are_in_the_site_time_zone(settings, store):
    settings = with_site(settings, timezone="Europe/Berlin")
    store_articles(store, [article(1, published=datetime(2026, 7, 1, 22, 30, tzinfo=UTC))],
                   NOW)
    build_feeds(settings, store, NOW)
    folder = publish_folder(settings)
    page = lxml.html.fromstring(next((folder / "articles").glob("*.html")).read_bytes())
    time = page.xpath("//p[@class='meta']/time")[0]
    assert time.text_content() == "2 July 2026, 00:30 CEST"
    assert time.get("datetime") == "2026-07-01T22:30:00+00:00"
