"""Markdown articles: front matter, rendering, sanitizing, and the errors a writer sees."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from publisher.errors import InputError
from publisher.ingest.markdown import parse_markdown

BERLIN = ZoneInfo("Europe/Berlin")


def md(front: str, body: str = "Body *text* here.\n") -> bytes:
    return f"---\n{front}\n---\n{body}".encode()


def test_front_matter_fields():
    (article,) = parse_markdown(md(
        "title: Comet Tonight\ndate: 2026-11-22T18:00:00+00:00\nauthor: Mara\n"
        "sections: [Science, Night Sky]\nsummary: Look west.\nimage: https://x.org/c.jpg"),
        "comet.md")
    assert article.title == "Comet Tonight"
    assert article.published == datetime(2026, 11, 22, 18, tzinfo=UTC)
    assert article.author == "Mara" and article.summary == "Look west."
    assert article.sections == ("science", "night-sky")
    assert article.image == "https://x.org/c.jpg"
    assert article.body_html == "<p>Body <em>text</em> here.</p>\n"
    assert article.paragraphs == ("Body text here.",)


def test_date_without_zone_is_in_the_site_zone():
    (article,) = parse_markdown(md("title: T\ndate: 2026-07-01 09:00"), "t.md", tz=BERLIN)
    assert article.published == datetime(2026, 7, 1, 7, tzinfo=UTC)


def test_raw_html_is_sanitized():
    body = 'Hi <b onclick="x()">there</b>\n\n<script>alert(1)</script>\n\n<iframe src=x></iframe>\n'
    (article,) = parse_markdown(md("title: T", body), "t.md")
    assert "<script" not in article.body_html and "onclick" not in article.body_html
    assert "<iframe" not in article.body_html and "<b>there</b>" in article.body_html


def test_id_is_stable_across_title_edits():
    (a,) = parse_markdown(md("title: Old"), "news/x.md")
    (b,) = parse_markdown(md("title: New"), "news/x.md")
    assert a.id == b.id and a.content_hash != b.content_hash


def test_folder_sections_apply_when_front_matter_has_none():
    (article,) = parse_markdown(md("title: T"), "sport/t.md", sections=("sport",))
    assert article.sections == ("sport",)


@pytest.mark.parametrize("data, reason", [
    (b"no front matter", "no front matter"),
    (md("author: x"), "no title"),
    (md("title: [unclosed"), "not valid YAML at line"),
    (md("title: T\ncolour: red"), "unknown front matter key 'colour'"),
    (md("title: T\ndate: next tuesday"), "is not a date"),
    (md("title: T", ""), "no body text"),
    (md("- a list"), "key: value"),
])
def test_bad_markdown_says_what_to_fix(data, reason):
    with pytest.raises(InputError, match=reason):
        parse_markdown(data, "bad.md")
