"""WebSub: a real HTTP hub on 127.0.0.1 hears about every changed feed, and only those;
a hub that fails or is down costs a warning, never the run."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from publisher.feeds import build_feeds
from tests.support import NOW
from tests.support.feeds import (
    article,
    edit_article,
    parse,
    publish_folder,
    store_articles,
    with_feeds,
)


class Hub(ThreadingHTTPServer):
    def __init__(self, status: int):
        self.status = status
        self.pings: list[dict[str, list[str]]] = []
        self.content_types: set[str] = set()
        super().__init__(("127.0.0.1", 0), HubHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hub"


class HubHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length).decode()
        self.server.content_types.add(self.headers["Content-Type"])
        self.server.pings.append(parse_qs(body))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    def start(status: int = 204) -> Hub:
        server = Hub(status)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    servers: list[Hub] = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_changed_feeds_are_pinged_and_carry_the_hub(settings, store, hub):
    server = hub()
    settings = with_feeds(settings, hub=server.url)
    store_articles(store, [article(1, sections=("world",)), article(2, sections=("arts",))], NOW)
    report = build_feeds(settings, store, NOW)
    site = settings.site.url
    expected = {f"{site}{prefix}{name}" for prefix in ("", "sections/world/", "sections/arts/")
                for name in ("rss.xml", "atom.xml", "feed.json")}
    assert {ping["hub.url"][0] for ping in server.pings} == expected
    assert all(ping["hub.mode"] == ["publish"] for ping in server.pings)
    assert server.content_types == {"application/x-www-form-urlencoded"}
    assert report.hub_accepted == 9 and "hub told of 9 changed feeds" in report.line()
    folder = publish_folder(settings)
    for name in ("atom.xml", "rss.xml"):
        hubs = [link.href for link in parse(folder / name).feed.links if link.rel == "hub"]
        assert hubs == [server.url], name
    assert json.loads((folder / "feed.json").read_bytes())["hubs"] == \
        [{"type": "WebSub", "url": server.url}]
    # Nothing changed: no ping. One article edited: only the feeds showing it.
    server.pings.clear()
    build_feeds(settings, store, NOW)
    assert server.pings == []
    edit_article(store, article(2, title="Edited", sections=("arts",)), NOW + timedelta(days=1))
    build_feeds(settings, store, NOW + timedelta(days=1))
    assert {ping["hub.url"][0] for ping in server.pings} == {
        f"{site}{prefix}{name}" for prefix in ("", "sections/arts/")
        for name in ("rss.xml", "atom.xml", "feed.json")}


def test_a_failing_hub_is_a_warning(settings, store, hub, caplog):
    server = hub(status=500)
    settings = with_feeds(settings, hub=server.url)
    store_articles(store, [article(1)], NOW)
    with caplog.at_level(logging.WARNING, logger="publisher.feeds.websub"):
        report = build_feeds(settings, store, NOW)
    assert report.written > 0 and report.hub_accepted == 0
    assert len(server.pings) == 6
    assert "answered 500" in caplog.text
    assert (publish_folder(settings) / "atom.xml").exists()


def test_an_unreachable_hub_is_a_warning(settings, store, refused_port, caplog):
    settings = with_feeds(settings, hub=f"http://127.0.0.1:{refused_port}/hub")
    store_articles(store, [article(1)], NOW)
    with caplog.at_level(logging.WARNING, logger="publisher.feeds.websub"):
        report = build_feeds(settings, store, NOW)
    assert report.written > 0 and report.hub_accepted == 0
    assert "could not be reached" in caplog.text and "0 of 6 feeds pinged" in caplog.text
