"""A build writes the pages before the feeds that link them: a build that stops part way
(killed, or a page that fails) never leaves a feed linking a page not yet written."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.errors import TemplateError
from publisher.feeds import build_feeds, start_build
from tests.support import NOW
from tests.support.feeds import article, parse, publish_folder, store_articles


def linked_pages(settings, folder: Path) -> set[str]:
    """Every page of the site the live feeds link, as a path in the publish folder."""
    base = settings.site.url
    links = {entry.link for name in ("rss.xml", "atom.xml")
             for entry in parse(folder / name).entries}
    links |= {item["url"] for item in json.loads((folder / "feed.json").read_bytes())["items"]}
    return {link.removeprefix(base) for link in links if link.startswith(base)}


def test_feeds_never_link_a_page_a_failed_build_did_not_write(settings, store):
    store_articles(store, [article(n) for n in range(1, 4)], NOW)
    build_feeds(settings, store, NOW)
    folder = publish_folder(settings)
    assert len(linked_pages(settings, folder)) == 3

    # Article 4's page fails to render: the build stops, as a kill would stop it.
    templates = settings.path("templates") / "pages"
    templates.mkdir(parents=True, exist_ok=True)
    shipped = start_build(settings, store).pages.env.get_template("pages/article.html")
    source = Path(shipped.filename).read_text(encoding="utf-8")
    (templates / "article.html").write_text(
        "{% if entry.title == 'Article number 4' %}{{ entry.nothing.at_all }}{% endif %}"
        + source, encoding="utf-8")
    store_articles(store, [article(4)], NOW + timedelta(hours=1))
    with pytest.raises(TemplateError):
        build_feeds(settings, store, NOW + timedelta(hours=1))
    missing = {path for path in linked_pages(settings, folder) if not (folder / path).is_file()}
    assert missing == set()
