"""Hostile upstream feeds: a bad entry is that entry's error, an empty body is an error."""

from __future__ import annotations

import json

import pytest

from publisher.ingest.source_entries import parse_entries
from publisher.ingest.sources import fetch_sources
from tests.support import NOW
from tests.support.feeds import configure, item, rss

GOOD = [item(f"Good {n}", guid=f"tag:up,{n}", body=f"<p>Story {n}.</p>") for n in range(9)]
# feedparser reads these as years 0, 10000 (it converts to UTC) and 1.
BAD_ATOM_DATES = ["0001-01-01T00:00:00+23:59", "0001-01-01T00:00:00+05:00",
                  "9999-12-31T23:59:59-05:00", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z"]


def atom(*entries: tuple[str, str]) -> bytes:
    return ('<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
            + "".join(f"<entry><title>{title}</title><id>tag:up,{title}</id>"
                      f"<updated>{date}</updated><content>x</content></entry>"
                      for title, date in entries) + "</feed>").encode()


@pytest.mark.parametrize("date", BAD_ATOM_DATES)
def test_an_atom_entry_with_an_out_of_range_date_is_that_entrys_error(date):
    good = [(f"Good {n}", "2026-11-24T08:00:00Z") for n in range(9)]
    entries = parse_entries(atom(*good[:4], ("Bad", date), *good[4:]), "up", "http://127.0.0.1/")
    assert sorted(a.title for a in entries.articles) == [f"Good {n}" for n in range(9)]
    assert entries.skipped == 1


def test_an_rss_entry_dated_year_one_is_that_entrys_error():
    bad = item("Bad date", guid="tag:up,bad", body="<p>x</p>",
               date="Mon, 01 Jan 0001 00:00:00 GMT")
    entries = parse_entries(rss(*GOOD[:4], bad, *GOOD[4:]).encode(), "up", "http://127.0.0.1/")
    assert len(entries.articles) == 9 and entries.skipped == 1


def json_feed(*items: dict) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "J",
                       "items": list(items)}).encode()


@pytest.mark.parametrize("date", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
                                  "0001-01-01T00:00:00"])
def test_a_json_entry_with_an_out_of_range_date_is_that_entrys_error(date):
    items = [{"id": str(n), "title": f"Good {n}", "content_text": "x",
              "date_published": "2026-11-24T08:00:00Z"} for n in range(9)]
    items.insert(3, {"id": "bad", "title": "Bad", "content_text": "x", "date_published": date})
    entries = parse_entries(json_feed(*items), "up", "http://127.0.0.1/feed.json")
    assert len(entries.articles) == 9 and entries.skipped == 1


def test_other_entries_of_a_feed_with_a_bad_one_are_stored(instance, store, upstream_server):
    good = [(f"Good {n}", "2026-11-24T08:00:00Z") for n in range(9)]
    url = upstream_server.serve("/feed.xml", atom(*good, ("Bad", BAD_ATOM_DATES[0])),
                            content_type="application/atom+xml")
    settings = configure(instance, {"url": url, "name": "up"})
    report = fetch_sources(settings, store, NOW)
    assert (report.fetched, report.failed, report.new) == (1, 0, 9)


@pytest.mark.parametrize("body", [b"", b"   \n\t "])
def test_an_empty_200_body_is_an_error_not_an_empty_feed(instance, store, upstream_server, body):
    url = upstream_server.serve("/feed.xml", body)
    settings = configure(instance, {"url": url, "name": "up"})
    report = fetch_sources(settings, store, NOW)
    assert (report.fetched, report.failed) == (0, 1)
    (state,) = store.sources.states().values()
    assert "empty" in state.last_error


def test_a_feed_with_no_entries_is_still_healthy(instance, store, upstream_server):
    url = upstream_server.serve("/feed.xml", rss())
    settings = configure(instance, {"url": url, "name": "up"})
    report = fetch_sources(settings, store, NOW)
    assert (report.fetched, report.failed) == (1, 0)


def test_an_entry_whose_parsing_raises_is_skipped_not_the_feed(monkeypatch):
    from publisher.ingest import source_entries as feed_entries

    real = feed_entries.entry_html

    def explode_on_one(entry):
        if entry.get("title") == "Bad":
            raise RecursionError("maximum recursion depth exceeded")
        return real(entry)

    monkeypatch.setattr(feed_entries, "entry_html", explode_on_one)
    bad = item("Bad", guid="tag:up,bad", body="<p>x</p>")
    entries = parse_entries(rss(*GOOD, bad).encode(), "up", "http://127.0.0.1/")
    assert len(entries.articles) == 9 and entries.skipped == 1


def test_an_upstream_image_is_http_only_and_a_bad_href_costs_only_the_href():
    # Both found by the fuzz suite (tests/test_fuzz.py).
    data = (b'<rss version="2.0"><channel><title>R</title>'
            b'<item><title>Mail pic</title><description>x</description>'
            b'<enclosure url="mailto:a@b" type="image/png"/></item>'
            b'<item><title>Bad href</title><link>http://[::1</link>'
            b'<description>&lt;a href="http://[::1"&gt;x&lt;/a&gt; text</description></item>'
            b"</channel></rss>")
    entries = parse_entries(data, "up", "http://127.0.0.1/")
    by_title = {a.title: a for a in entries.articles}
    assert set(by_title) == {"Mail pic", "Bad href"}
    assert by_title["Mail pic"].image is None
    assert by_title["Bad href"].link is None and "href" not in by_title["Bad href"].body_html
