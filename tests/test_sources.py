"""Upstream sources: feeds fetched from a real local HTTP server into the store."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from publisher.ingest.source_entries import parse_entries
from publisher.ingest.sources import fetch_sources, retry_delay, source_health
from tests.support import NOW
from tests.support.feeds import configure, item, rss


def test_new_entries_are_stored_sanitized_with_absolute_urls(instance, store, upstream_server):
    body = ('<p>First <b>paragraph</b> <a href="/story/1" onclick="steal()">more</a>.</p>'
            '<script>alert(1)</script><p>Second <img src="pics/a.jpg"></p>')
    url = upstream_server.serve("/feed.xml", rss(
        item("Harbour &amp; bridge reopen", guid="tag:up,1", link="/story/1", body=body),
        item("No guid here", link="http://127.0.0.1/story/2", body="<p>Text.</p>"),
    ))
    settings = configure(instance, {"url": url, "name": "upstream", "sections": ["World"]})

    report = fetch_sources(settings, store, NOW)

    assert (report.fetched, report.new, report.failed) == (1, 2, 0)
    first, second = sorted(store.articles.latest(10), key=lambda a: a.title)
    assert first.title == "Harbour & bridge reopen"
    assert first.link == f"{upstream_server.url}/story/1"
    assert "<script" not in first.body_html and "onclick" not in first.body_html
    assert f'href="{upstream_server.url}/story/1"' in first.body_html
    assert f'src="{upstream_server.url}/pics/a.jpg"' in first.body_html
    assert first.paragraphs == ("First paragraph more.", "Second")
    assert first.sections == ("world",) and first.source == "feed:upstream"
    assert first.published.isoformat() == "2026-11-24T08:00:00+00:00"
    assert second.title == "No guid here" and second.paragraphs == ("Text.",)
    path, headers = upstream_server.requests[0]
    assert path == "/feed.xml"
    assert headers["User-Agent"] == f"Publisher/0.1.0 (+{settings.site.url})"


def test_conditional_get_and_interval(instance, store, upstream_server):
    url = upstream_server.serve("/feed.xml", rss(item("One", guid="1")), etag='"v1"',
                            last_modified="Tue, 24 Nov 2026 08:00:00 GMT")
    settings = configure(instance, {"url": url, "name": "up", "interval": 600})
    assert fetch_sources(settings, store, NOW).new == 1

    # Not due before its interval: no request at all.
    assert fetch_sources(settings, store, NOW + timedelta(seconds=599)).fetched == 0
    assert len(upstream_server.requests) == 1

    report = fetch_sources(settings, store, NOW + timedelta(seconds=600))
    assert (report.not_modified, report.fetched, report.new) == (1, 0, 0)
    _, headers = upstream_server.requests[-1]
    assert headers["If-None-Match"] == '"v1"'
    assert headers["If-Modified-Since"] == "Tue, 24 Nov 2026 08:00:00 GMT"
    state = store.sources.states()["up"]
    assert state.next_fetch_at == NOW + timedelta(seconds=1200) and state.failures == 0


def test_edited_entry_updates_in_place_and_duplicates_are_stored_once(instance, store,
                                                                      upstream_server):
    url = upstream_server.serve("/feed.xml", rss(item("Storm warning", guid="g1", body="<p>A</p>"),
                                             item("Storm warning", guid="g1", body="<p>A</p>")))
    settings = configure(instance, {"url": url, "name": "up", "interval": 60})
    assert fetch_sources(settings, store, NOW).new == 1
    (before,) = store.articles.latest(5)

    upstream_server.serve("/feed.xml", rss(item("Storm warning lifted", guid="g1",
                                            body="<p>B</p>"),
                                       item("Rail strike", guid="g2", body="<p>C</p>")))
    later = NOW + timedelta(minutes=5)
    report = fetch_sources(settings, store, later)
    assert (report.new, report.updated, report.unchanged) == (1, 1, 0)
    after = store.articles.by_id(before.id)
    assert (after.seq, after.slug) == (before.seq, before.slug)
    assert after.title == "Storm warning lifted" and after.paragraphs == ("B",)
    assert after.updated == later and after.stored_at == before.stored_at
    assert store.articles.count() == 2

    # The same feed again: nothing changes.
    report = fetch_sources(settings, store, later + timedelta(minutes=5))
    assert (report.new, report.updated, report.unchanged) == (0, 0, 2)


def test_a_failing_source_backs_off_goes_unhealthy_and_spares_the_others(
        instance, store, upstream_server, refused_port, caplog):
    good = upstream_server.serve("/good.xml", rss(item("Good news", guid="1")))
    broken = upstream_server.serve("/broken.xml", "oops", status=500, content_type="text/plain")
    refused = f"http://127.0.0.1:{refused_port}/feed.xml"
    settings = configure(instance,
                         {"url": broken, "name": "broken", "interval": 900},
                         {"url": refused, "name": "refused", "interval": 900},
                         {"url": good, "name": "good", "interval": 900})
    caplog.set_level(logging.WARNING, logger="publisher.ingest.sources")

    report = fetch_sources(settings, store, NOW)
    assert (report.fetched, report.failed, report.new) == (1, 2, 1)
    states = store.sources.states()
    assert states["broken"].last_error == "HTTP 500 Internal Server Error"
    assert "ConnectError" in states["refused"].last_error
    assert states["broken"].next_fetch_at == NOW + timedelta(seconds=60)
    assert any("source broken: HTTP 500" in r.getMessage() for r in caplog.records)
    broken_source = settings.sources[0]
    assert source_health(broken_source, states["broken"]) == "failing"
    assert source_health(settings.sources[2], states["good"]) == "ok"

    # Retries come sooner than the interval at first, then back off.
    moment, delays = NOW, []
    for _ in range(2):
        state = store.sources.states()["broken"]
        delays.append((state.next_fetch_at - moment).total_seconds())
        moment = state.next_fetch_at
        assert fetch_sources(settings, store, moment - timedelta(seconds=1),
                             only={"broken"}).failed == 0  # not yet due
        assert fetch_sources(settings, store, moment, only={"broken"}).failed == 1
    assert delays == [60, 120]
    state = store.sources.states()["broken"]
    assert state.failures == 3 and source_health(broken_source, state) == "unhealthy"
    assert any(r.levelno == logging.ERROR and "source broken is unhealthy" in r.getMessage()
               for r in caplog.records)

    # Fixed upstream: the next try succeeds and the source is healthy again.
    upstream_server.serve("/broken.xml", rss(item("Back", guid="b")))
    report = fetch_sources(settings, store, state.next_fetch_at, only={"broken"})
    assert report.new == 1
    state = store.sources.states()["broken"]
    assert state.failures == 0 and state.last_error is None
    assert source_health(broken_source, state) == "ok"


def test_retry_delay_grows_to_a_cap():
    assert [retry_delay(n, 900) for n in (1, 2, 3, 6, 7, 20)] == [60, 120, 240, 1920, 3600, 3600]
    assert retry_delay(1, 30) == 30  # never later than the interval at first
    assert retry_delay(30, 86400) == 86400


@pytest.mark.parametrize("body, content_type, problem", [
    ("<html><body><p>Just a page</p></body></html>", "text/html", "not a feed"),
    ("x" * 5000, "application/rss+xml", "over 1,000 bytes"),
    ('{"items": []}', "application/json", "not a feed (JSON without a jsonfeed.org"),
    ("{nope", "application/json", "not a feed (JSON: "),
])
def test_what_is_not_a_feed_is_a_failure(instance, store, upstream_server, body, content_type,
                                         problem, monkeypatch):
    monkeypatch.setenv("PUBLISHER_INGEST__MAX_BYTES", "1000")
    url = upstream_server.serve("/x", body, content_type=content_type)
    settings = configure(instance, {"url": url, "name": "x"})
    assert fetch_sources(settings, store, NOW).failed == 1
    assert problem in store.sources.states()["x"].last_error
    assert store.articles.count() == 0


def test_a_slow_server_times_out(instance, store, upstream_server):
    upstream_server.delay = 2.0
    url = upstream_server.serve("/slow.xml", rss(item("Late", guid="1")))
    settings = configure(instance, {"url": url, "name": "slow", "timeout": 0.2})
    assert fetch_sources(settings, store, NOW).failed == 1
    assert store.sources.states()["slow"].last_error == "timed out after 0.2s (the whole fetch)"


def test_a_changed_url_is_fetched_afresh(instance, store, upstream_server):
    upstream_server.serve("/a.xml", rss(item("One", guid="1")), etag='"a"')
    settings = configure(instance, {"url": upstream_server.url + "/a.xml", "name": "up"})
    fetch_sources(settings, store, NOW)
    upstream_server.serve("/b.xml", rss(item("One", guid="1"), item("Two", guid="2")))
    moved = replace(settings.sources[0], url=upstream_server.url + "/b.xml")
    settings = replace(settings, sources=(moved,))
    report = fetch_sources(settings, store, NOW + timedelta(seconds=1))  # due: URL changed
    assert (report.fetched, report.new) == (1, 1)
    assert "If-None-Match" not in upstream_server.requests[-1][1]


def test_atom_with_xml_base_text_content_and_media(upstream_server):
    atom = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/"
      xml:base="{upstream_server.url}/blog/">
  <title>Blog</title><id>urn:blog</id><updated>2026-11-24T10:00:00Z</updated>
  <entry>
    <title type="html">Comets &lt;em&gt;tonight&lt;/em&gt;</title>
    <id>urn:entry:1</id><link href="posts/comet"/>
    <updated>2026-11-24T10:00:00Z</updated>
    <author><name>Mara Okafor</name></author>
    <summary type="text">Look west.

After sunset.</summary>
    <media:thumbnail url="img/comet.jpg"/>
  </entry>
  <entry><id>urn:entry:2</id><link href="posts/short"/><updated>2026-11-23T10:00:00Z</updated>
    <content type="html">&lt;p&gt;A short post without a title.&lt;/p&gt;</content></entry>
</feed>"""
    entries = parse_entries(atom.encode(), "blog", f"{upstream_server.url}/atom.xml")
    comet, short = entries.articles
    assert comet.title == "Comets tonight" and comet.author == "Mara Okafor"
    assert comet.link == f"{upstream_server.url}/blog/posts/comet"
    assert comet.paragraphs == ("Look west.", "After sunset.")
    assert comet.image == f"{upstream_server.url}/blog/img/comet.jpg"
    assert short.title == "A short post without a title."
    assert short.published.isoformat() == "2026-11-23T10:00:00+00:00"


def test_run_fetches_sources_after_ingest(instance, store, upstream_server, run_cli):
    url = upstream_server.serve("/feed.xml", rss(item("From upstream", guid="1")))
    configure(instance, {"url": url, "name": "up"})
    result = run_cli("-C", instance, "run")
    assert result.exit_code == 0, result.output
    assert "sources: 1 fetched, 0 not modified, 0 failed; 1 new, 0 updated" in result.output
    assert [a.title for a in store.articles.latest(5)] == ["From upstream"]
    (run,) = [r for r in store.runs.last_of_each_stage() if r["stage"] == "sources"]
    assert run["ok"] and json.loads(run["summary"])["new"] == 1


def test_json_feed_sources(instance, store, upstream_server):
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "J",
            "items": [{"id": "j1", "url": "/posts/1", "title": "Tides & moons <3",
                       "content_html": '<p>High <img src="/t.png" onerror="x()"></p>',
                       "summary": "About tides.", "image": "/big.png",
                       "date_published": "2026-11-24T09:30:00+01:00",
                       "authors": [{"name": "Ada"}]},
                      {"id": "j2", "content_text": "Plain.\n\nTwo paragraphs."}]}
    url = upstream_server.serve("/feed.json", json.dumps(feed),
                                content_type="application/feed+json")
    settings = configure(instance, {"url": url, "name": "json"})
    assert fetch_sources(settings, store, NOW).new == 2
    tides = next(a for a in store.articles.latest(5) if a.author)
    assert tides.title == "Tides & moons <3" and tides.author == "Ada"
    assert tides.link == f"{upstream_server.url}/posts/1" and tides.summary == "About tides."
    assert tides.body_html == f'<p>High <img src="{upstream_server.url}/t.png"></p>'
    assert tides.image == f"{upstream_server.url}/big.png"
    assert tides.published.isoformat() == "2026-11-24T08:30:00+00:00"
    plain = next(a for a in store.articles.latest(5) if not a.author)
    assert plain.paragraphs == ("Plain.", "Two paragraphs.") and plain.title == "Plain."
