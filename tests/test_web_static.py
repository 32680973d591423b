"""Serving the publish folder: media types, strong ETags, 304s, gzip, and no way out."""

from __future__ import annotations

import gzip
import hashlib
import os
from email.utils import format_datetime, parsedate_to_datetime

import feedparser
import httpx
import pytest

from publisher.web import create_app
from publisher.web.guard import RateLimiter
from tests.support.servers import LiveServer

RSS = """<?xml version='1.0' encoding='UTF-8'?>
<rss version="2.0"><channel><title>Demo</title><link>http://testserver/</link>
<description>News</description>{items}</channel></rss>
"""
ATOM = """<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x</id><title>Demo</title>
<updated>2026-11-24T12:00:00Z</updated></feed>
"""
JSON_FEED = '{"version": "https://jsonfeed.org/version/1.1", "title": "Demo", "items": []}'


def item(n: int) -> str:
    return (f"<item><title>Article number {n}</title><link>http://testserver/a/{n}.html</link>"
            f"<guid>http://testserver/a/{n}.html</guid><description>Some words about "
            f"article {n}, long enough to be worth compressing.</description></item>")


@pytest.fixture
def folder(web_settings):
    root = web_settings.path(web_settings.feeds.folder)
    (root / "articles").mkdir(parents=True, exist_ok=True)
    (root / "rss.xml").write_text(RSS.format(items="".join(item(n) for n in range(20))))
    (root / "atom.xml").write_text(ATOM)
    (root / "feed.json").write_text(JSON_FEED)
    (root / "world").mkdir()
    (root / "world" / "rss.xml").write_text(RSS.format(items=item(1)))
    (root / "index.html").write_text("<!doctype html><title>Home</title><p>Welcome</p>" * 20)
    (root / "articles" / "a-story.html").write_text("<!doctype html><title>A story</title>")
    (root / "articles" / "index.html").write_text("<!doctype html><title>Archive</title>")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (root / ".secret").write_text("hidden")
    return root


@pytest.mark.parametrize(("path", "media_type"), [
    ("rss.xml", "application/rss+xml; charset=utf-8"),
    ("atom.xml", "application/atom+xml; charset=utf-8"),
    ("feed.json", "application/feed+json; charset=utf-8"),
    ("world/rss.xml", "application/rss+xml; charset=utf-8"),
    ("", "text/html; charset=utf-8"),
    ("articles/a-story.html", "text/html; charset=utf-8"),
    ("logo.png", "image/png"),
])
def test_media_types(client, folder, path, media_type):
    response = client.get(f"/{path}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"


def test_strong_etag_and_last_modified(client, folder):
    body = (folder / "feed.json").read_bytes()
    first = client.get("/feed.json", headers={"Accept-Encoding": "identity"})
    etag = first.headers["etag"]
    assert etag == '"' + hashlib.sha256(body).hexdigest()[:32] + '"'  # strong: no W/
    assert first.content == body
    modified = parsedate_to_datetime(first.headers["last-modified"])
    assert int(modified.timestamp()) == int(os.stat(folder / "feed.json").st_mtime)
    again = client.get("/feed.json", headers={"Accept-Encoding": "identity"})
    assert again.headers["etag"] == etag

    # The feeds stage replaces files by renaming a new one over them.
    new = folder / ".feed.json.tmp"
    new.write_text(JSON_FEED.replace("Demo", "Demo 2"))
    new.replace(folder / "feed.json")
    changed = client.get("/feed.json", headers={"Accept-Encoding": "identity"})
    assert changed.headers["etag"] != etag and b"Demo 2" in changed.content


def test_conditional_get(client, folder):
    plain = {"Accept-Encoding": "identity"}
    first = client.get("/rss.xml", headers=plain)
    etag, modified = first.headers["etag"], first.headers["last-modified"]

    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"other", W/{etag}'},
                    {"If-None-Match": "*"}, {"If-Modified-Since": modified}):
        response = client.get("/rss.xml", headers=plain | headers)
        assert response.status_code == 304, headers
        assert response.content == b"" and response.headers["etag"] == etag

    later = parsedate_to_datetime(modified).replace(year=2100)
    assert client.get("/rss.xml", headers=plain | {
        "If-Modified-Since": format_datetime(later, usegmt=True)}).status_code == 304
    earlier = parsedate_to_datetime(modified).replace(year=2000)
    assert client.get("/rss.xml", headers=plain | {
        "If-Modified-Since": format_datetime(earlier, usegmt=True)}).status_code == 200
    # If-None-Match wins: a stale ETag means 200 whatever the date says.
    assert client.get("/rss.xml", headers=plain | {
        "If-None-Match": '"stale"', "If-Modified-Since": modified}).status_code == 200
    assert client.get("/rss.xml", headers=plain | {
        "If-Modified-Since": "not a date"}).status_code == 200


def test_gzip_is_its_own_representation(client, folder):
    body = (folder / "rss.xml").read_bytes()
    plain = client.get("/rss.xml", headers={"Accept-Encoding": "identity"})
    zipped = client.get("/rss.xml", headers={"Accept-Encoding": "gzip, br"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert plain.headers["vary"] == zipped.headers["vary"] == "Accept-Encoding"
    assert int(zipped.headers["content-length"]) < len(body)
    assert zipped.content == body  # httpx decodes it
    assert zipped.headers["etag"] != plain.headers["etag"]
    assert not zipped.headers["etag"].startswith("W/")
    # Each variant's ETag validates only that variant.
    assert client.get("/rss.xml", headers={"Accept-Encoding": "gzip", "If-None-Match":
                                           zipped.headers["etag"]}).status_code == 304
    assert client.get("/rss.xml", headers={"Accept-Encoding": "gzip", "If-None-Match":
                                           plain.headers["etag"]}).status_code == 200
    refused = client.get("/rss.xml", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers
    # Already-compressed media is sent as it is.
    png = client.get("/logo.png", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in png.headers and "vary" not in png.headers


def test_head_has_the_headers_and_no_body(client, folder):
    get = client.get("/atom.xml", headers={"Accept-Encoding": "identity"})
    head = client.head("/atom.xml", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    for name in ("etag", "last-modified", "content-type", "content-length"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize("path", [
    "/.secret", "/../publisher.toml", "/%2e%2e/publisher.toml", "/articles/../../x",
    "/world/..%2f..%2fpublisher.toml", "/missing.xml", "/outside/x.txt", "/articles/.%2e/x",
])
def test_nothing_outside_the_folder_or_hidden(client, folder, path):
    (folder / "outside").symlink_to(folder.parent)  # a link out of the folder
    (folder.parent / "x.txt").write_text("private")
    response = client.get(path)
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "private" not in response.text and "secret" not in response.text


def test_folders_redirect_to_their_index(client, folder):
    response = client.get("/articles")
    assert response.status_code == 301 and response.headers["location"] == "articles/"
    assert client.get("/articles/").text == "<!doctype html><title>Archive</title>"
    assert client.get("/world/").status_code == 404  # no index.html there


def test_wrong_method_is_a_page(client, folder):
    response = client.put("/rss.xml")
    assert response.status_code == 405 and "Method not allowed" in response.text


def test_rate_limiter_slides():
    now = [0.0]
    limiter = RateLimiter(2, 60.0, clock=lambda: now[0])
    assert limiter.allow("a") == (True, 0) and limiter.allow("a") == (True, 0)
    assert limiter.allow("a") == (False, 60)
    assert limiter.allow("b") == (True, 0)  # per client
    now[0] = 30.0
    assert limiter.allow("a") == (False, 30)
    now[0] = 60.0
    assert limiter.allow("a") == (True, 0)


def test_feedparser_and_a_plain_client_get_304_from_a_real_server(web_settings, store, folder):
    with LiveServer(create_app(web_settings, store)) as server:
        url = server.url + "rss.xml"
        first = feedparser.parse(url)
        assert first.status == 200 and len(first.entries) == 20 and not first.bozo
        assert first.etag and first.modified
        again = feedparser.parse(url, etag=first.etag, modified=first.modified)
        assert again.status == 304 and again.entries == []
        only_date = feedparser.parse(url, modified=first.modified)
        assert only_date.status == 304

        with httpx.Client() as http:
            response = http.get(url)
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "gzip"
            etag = response.headers["etag"]
            assert http.get(url, headers={"If-None-Match": etag}).status_code == 304
            assert http.get(url, headers={
                "If-Modified-Since": response.headers["last-modified"]}).status_code == 304
            with http.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as raw:
                assert gzip.decompress(b"".join(raw.iter_raw())) == \
                    (folder / "rss.xml").read_bytes()
