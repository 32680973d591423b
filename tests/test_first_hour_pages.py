"""The first hour, pages and mail: no "By" line for an unknown author, no empty caption or
alt, no caption block without its photo, a favicon, the text signature separator."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

from publisher.feeds import build_feeds
from tests.support.feeds import article, parse, publish_folder, store_articles, with_site
from tests.support.mail import add_articles, add_subscriber
from tests.support.mail import parse as parse_mail

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def built(settings, store, **site):
    settings = with_site(settings, url="https://news.example.org/", **site)
    store_articles(store, [
        article(1, title="Wire Copy", captions=("PHOTO: AP",), credit="AP"),
        article(2, title="Signed Piece", author="Mara Okafor",
                image="https://images.example.org/a.jpg",
                captions=("Boats in the harbour at dawn (AP)",), credit="AP"),
        article(3, title="Comet Tonight", image="https://images.example.org/b.jpg"),
    ], NOW)
    build_feeds(settings, store, NOW)
    folder = publish_folder(settings)
    return settings, {n: (folder / "articles" / f"{slug}.html").read_text() for n, slug in
                      ((1, "wire-copy"), (2, "signed-piece"), (3, "comet-tonight"))}


def test_no_byline_for_an_unknown_author(settings, store):
    _, pages = built(settings, store)
    assert 'class="author"' not in pages[1] and "By " not in pages[1]
    assert '<span class="author">By Mara Okafor</span>' in pages[2]


def test_a_site_author_signs_what_names_no_one(settings, store):
    _, pages = built(settings, store, author="News Desk")
    assert '<span class="author">By News Desk</span>' in pages[1]
    assert '<span class="author">By Mara Okafor</span>' in pages[2]


def test_feeds_name_the_site_when_no_author_is_known(settings, store):
    settings, _ = built(settings, store, title="The Example News")
    feed = parse(publish_folder(settings) / "atom.xml")
    authors = {entry.title: entry.author for entry in feed.entries}
    assert authors == {"Wire Copy": "The Example News", "Signed Piece": "Mara Okafor",
                       "Comet Tonight": "The Example News"}


def test_no_caption_block_without_a_photo_and_no_empty_caption_or_alt(settings, store):
    settings, pages = built(settings, store)
    assert "<figure" not in pages[1] and "PHOTO: AP" not in pages[1]
    # A caption: it is the alt text, and the figcaption shows it with the credit apart.
    assert '<img src="https://images.example.org/a.jpg" alt="Boats in the harbour at dawn">' \
        in pages[2]
    assert '<span class="credit">Photo: AP</span>' in pages[2]
    # No caption: the title is the alt text, and there is no figcaption at all.
    assert '<img src="https://images.example.org/b.jpg" alt="Comet Tonight">' in pages[3]
    assert "figcaption" not in pages[3]
    for page in pages.values():
        assert 'alt=""' not in page and not re.search(r"<figcaption>\s*</figcaption>", page)
    feed = (publish_folder(settings) / "rss.xml").read_text()
    assert 'alt=""' not in feed
    assert 'alt="Comet Tonight"' in parse(publish_folder(settings) / "rss.xml").entries[
        0].content[0].value


def test_a_letter_mark_favicon_unless_the_site_has_an_icon(settings, store):
    settings, pages = built(settings, store, title="The Example News")
    folder = publish_folder(settings)
    svg = ElementTree.fromstring((folder / "favicon.svg").read_bytes())
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.find("{http://www.w3.org/2000/svg}text").text == "T"
    for page in [*pages.values(), (folder / "index.html").read_text()]:
        assert '<link rel="icon" href="https://news.example.org/favicon.svg" ' \
               'type="image/svg+xml">' in page
    (folder / "favicon.svg").unlink()
    settings = with_site(settings, icon="img/logo.png")
    build_feeds(settings, store, NOW)
    assert not (folder / "favicon.svg").exists()
    assert '<link rel="icon" href="https://news.example.org/img/logo.png">' in \
        (folder / "index.html").read_text()


def test_the_text_signature_separator_is_dash_dash_space(run_cli, instance, store, tmp_path):
    add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=2))
    sub = add_subscriber(store, "ada@example.org", NOW)
    result = run_cli("-C", instance, "digest", "preview", "ada@example.org", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    message = parse_mail((tmp_path / f"digest-{sub.id}.eml").read_bytes())
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "\n-- \n" in text.replace("\r\n", "\n")
