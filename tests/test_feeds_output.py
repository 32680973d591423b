"""Writing the publish folder: atomic, untouched when unchanged, rebuilt when it must be."""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import timedelta

import pytest

from publisher.errors import TemplateError
from publisher.feeds import build_feeds
from publisher.feeds.output import MANIFEST, Output, write_atomic
from tests.support import NOW
from tests.support.feeds import (
    article,
    edit_article,
    parse,
    publish_folder,
    snapshot,
    store_articles,
    with_site,
)


@pytest.fixture
def built(settings, store):
    store_articles(store, [article(1, sections=("world",)), article(2, sections=("science",)),
                           article(3, sections=("world",))], NOW)
    first = build_feeds(settings, store, NOW)
    return first, publish_folder(settings)


def test_second_build_writes_nothing(built, settings, store):
    first, folder = built
    files = snapshot(folder)
    assert first.written == len(files) and first.unchanged == 0
    second = build_feeds(settings, store, NOW + timedelta(hours=1))
    assert (second.written, second.unchanged) == (0, len(files))
    assert second.line() == f"feeds: written 0, unchanged {len(files)}"
    assert snapshot(folder) == files  # same bytes, same mtimes
    manifest = (folder / MANIFEST).stat().st_mtime_ns
    build_feeds(settings, store, NOW + timedelta(hours=2))
    assert (folder / MANIFEST).stat().st_mtime_ns == manifest  # not even the manifest


def test_without_the_manifest_files_are_compared_not_rewritten(built, settings, store):
    _, folder = built
    files = snapshot(folder)
    (folder / MANIFEST).unlink()
    report = build_feeds(settings, store, NOW)
    assert report.written == 0 and snapshot(folder) == files
    (folder / MANIFEST).write_text("{not json")
    assert build_feeds(settings, store, NOW).written == 0


def test_a_damaged_file_is_written_again(built, settings, store):
    _, folder = built
    page = next((folder / "articles").iterdir())
    good = page.read_bytes()
    page.write_bytes(good[:100])
    (folder / "rss.xml").unlink()
    # A live feed (or an index page) is looked at by every build...
    report = build_feeds(settings, store, NOW)
    assert report.written == 1 and (folder / "rss.xml").exists()
    # ... an article page, by a full build (`publisher feeds --full`): the others
    # read no article at all when nothing changed.
    report = build_feeds(settings, store, NOW, full=True)
    assert report.written == 1
    assert page.read_bytes() == good and (folder / "rss.xml").exists()


def test_an_edit_rewrites_what_shows_the_article(built, settings, store):
    _, folder = built
    before = snapshot(folder)
    edit_article(store, article(2, title="Article number 2, corrected", sections=("science",)),
                 NOW + timedelta(days=1))
    report = build_feeds(settings, store, NOW + timedelta(days=1))
    after = snapshot(folder)
    changed = {path for path in after if after[path] != before.get(path)}
    assert changed == {
        "articles/article-number-2.html", "index.html", "sections/science/index.html",
        "rss.xml", "atom.xml", "feed.json",
        "sections/science/rss.xml", "sections/science/atom.xml", "sections/science/feed.json",
    }
    assert report.written == len(changed)
    assert report.feeds_changed == 6


def test_new_settings_rerender_but_only_changed_bytes_are_written(built, settings, store):
    _, folder = built
    before = snapshot(folder)
    report = build_feeds(with_site(settings, timezone="Asia/Tokyo"), store, NOW)
    after = snapshot(folder)
    changed = {path for path in after if after[path] != before[path]}
    # Times on pages move to Tokyo; the feeds (UTC inside) and the style sheet do not.
    assert "articles/article-number-1.html" in changed and "index.html" in changed
    assert not changed & {"rss.xml", "atom.xml", "feed.json", "style.css"}
    assert report.written == len(changed)


def test_instance_templates_override_the_shipped_ones(built, settings, store):
    _, folder = built
    before = snapshot(folder)
    override = settings.path("templates") / "pages" / "article.html"
    override.parent.mkdir(parents=True)
    override.write_text('{% extends "pages/base.html" %}'
                        "{% block main %}<h1>Custom: {{ entry.title }}</h1>{% endblock %}")
    build_feeds(settings, store, NOW)
    after = snapshot(folder)
    assert "<h1>Custom: Article number 1</h1>" in \
        (folder / "articles" / "article-number-1.html").read_text()
    assert after["index.html"] == before["index.html"]


def test_a_broken_template_names_its_file_and_line(built, settings, store):
    broken = settings.path("templates") / "pages" / "article.html"
    broken.parent.mkdir(parents=True)
    broken.write_text("<h1>{{ entry.title }</h1>\n")
    with pytest.raises(TemplateError, match=r"article\.html:1: unexpected '}'"):
        build_feeds(settings, store, NOW + timedelta(days=1))
    broken.write_text('{% extends "pages/base.html" %}\n{% block main %}\n'
                      "{{ entry.no_such_field }}\n{% endblock %}\n")
    with pytest.raises(TemplateError, match=r"article\.html:3: .*no_such_field"):
        build_feeds(settings, store, NOW + timedelta(days=2))


def test_files_are_replaced_atomically_and_readable(tmp_path):
    target = tmp_path / "feed.xml"
    target.write_bytes(b"old")
    reader = open(target, "rb")  # noqa: SIM115 - held open across the replace
    write_atomic(target, b"new", 0o644)
    assert reader.read() == b"old"  # a reader holds the old file, whole
    reader.close()
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["feed.xml"]  # no temporary left
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644


def test_a_stale_temporary_file_does_not_block_the_write(tmp_path):
    target = tmp_path / "atom.xml"
    stale = tmp_path / f".atom.xml.{os.getpid()}.tmp"
    stale.write_bytes(b"left by a crash")
    write_atomic(target, b"<feed/>", 0o644)
    assert target.read_bytes() == b"<feed/>"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert {p.name for p in tmp_path.iterdir()} == {"atom.xml", stale.name}


def test_published_files_are_world_readable(built):
    _, folder = built
    mode = stat.S_IMODE((folder / "atom.xml").stat().st_mode)
    assert mode & 0o444 == 0o444


def test_nothing_is_written_outside_the_folder(tmp_path):
    output = Output(tmp_path / "feeds")
    for path in ("../evil.html", "/etc/x", "a/../../b", "", "articles//x.html"):
        with pytest.raises(ValueError, match="outside the publish folder"):
            output.put(path, "key", b"x")
    assert not (tmp_path / "evil.html").exists()


def test_a_hand_written_slug_becomes_a_safe_file_name(settings, store):
    store_articles(store, [article(1, slug="../../escape me"), article(2, slug="ok.slug-2")],
                   NOW)
    build_feeds(settings, store, NOW)
    folder = publish_folder(settings)
    pages = sorted(p.name for p in (folder / "articles").iterdir())
    assert pages == ["escape-me.html", "ok.slug-2.html"]
    assert "articles/escape-me.html" in (folder / "atom.xml").read_text()
    assert not (settings.instance / "escape me.html").exists()
    assert build_feeds(settings, store, NOW).written == 0


def test_an_empty_store_still_publishes_valid_feeds(settings, store):
    report = build_feeds(settings, store, NOW)
    folder = publish_folder(settings)
    assert report.written == 6  # rss, atom, json, index, style sheet, favicon.svg
    created = store.articles.created_at()
    for name in ("rss.xml", "atom.xml"):
        feed = parse(folder / name)
        assert feed.bozo == 0 and feed.entries == []
        # When the store was made: fixed, and not the time of the build.
        assert feed.feed.updated_parsed[:6] == created.timetuple()[:6]
    assert json.loads((folder / "feed.json").read_bytes())["items"] == []
    assert "Nothing published yet." in (folder / "index.html").read_text()
    assert build_feeds(settings, store, NOW + timedelta(days=1)).written == 0


def test_a_section_that_is_not_a_folder_name_is_left_out(settings, store, caplog):
    store_articles(store, [article(1, sections=("world", "Bad Name!"))], NOW)
    with caplog.at_level(logging.WARNING, logger="publisher.feeds.build"):
        build_feeds(settings, store, NOW)
    folder = publish_folder(settings)
    assert sorted(p.name for p in (folder / "sections").iterdir()) == ["world"]
    assert "section 'Bad Name!' is not a lower-case word" in caplog.text
    assert [t.term for t in parse(folder / "atom.xml").entries[0].tags] == ["world"]
