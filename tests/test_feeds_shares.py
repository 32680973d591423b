"""Long build passes split across forked processes: the same files, the same manifest,
failures reported, and no fork where it is unsafe."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.errors import TemplateError
from publisher.feeds import build_feeds, start_build
from publisher.feeds.build import publish_feeds, publish_pages
from publisher.feeds.output import MANIFEST
from publisher.feeds.shares import cut, share_count
from tests.support import NOW
from tests.support.feeds import article, publish_folder, store_articles, with_feeds

ARTICLES = 40


def build_in_shares(settings, store, min_share: int = 4):
    """One full build with forking from `min_share` articles on (2,500 in real builds)."""
    build = start_build(settings, store)
    build.min_share = min_share
    publish_feeds(build)
    publish_pages(build)
    build.output.save()
    return build


def files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def manifest_sizes(folder):
    """Each file the manifest records, with its size. (Keys include the folder's path, so
    two folders' keys differ; the next test shows a forked build's keys are right.)"""
    records = json.loads((folder / MANIFEST).read_bytes())["files"]
    return {path: size for path, (_key, size, _mtime) in records.items()}


@pytest.fixture
def paged_settings(settings, store, tmp_path):
    """Live feeds and archive pages of 3: 13 archive pages and 40 article pages."""
    store_articles(store, [article(n, sections=("world", "science")[:1 + n % 2])
                           for n in range(1, ARTICLES + 1)], NOW)
    return with_feeds(settings, items=3, processes=2)


def test_forked_shares_build_what_one_process_builds(paged_settings, store, tmp_path):
    one = with_feeds(paged_settings, processes=1, folder=str(tmp_path / "one"))
    two = with_feeds(paged_settings, folder=str(tmp_path / "two"))
    serial = build_in_shares(one, store)
    forked = build_in_shares(two, store)
    assert serial.shares_used == {"archives": 1, "articles": 1}
    assert forked.shares_used == {"archives": 2, "articles": 2}
    assert sorted(forked.output.written) == sorted(serial.output.written)
    # archive pages, article pages, 3 feeds each for the site and 2 sections, index and
    # section pages, the style sheet and the letter-mark icon
    assert len(forked.output.written) == len(files(publish_folder(two))) == 13 + 40 + 9 + 5
    assert files(publish_folder(two)) == files(publish_folder(one))
    assert manifest_sizes(publish_folder(two)) == manifest_sizes(publish_folder(one))


def test_after_a_forked_build_the_next_writes_nothing(paged_settings, store):
    build_in_shares(paged_settings, store)
    again = build_in_shares(paged_settings, store)
    assert again.output.written == [] and again.shares_used == {}
    # A new article: one archive page and the new article's page, in this process.
    store_articles(store, [article(ARTICLES + 1)], NOW + timedelta(hours=1))
    after = build_feeds(paged_settings, store, NOW + timedelta(hours=1))
    assert after.written > 0


def test_a_failure_in_a_forked_share_is_raised_here(paged_settings, store, tmp_path):
    # Only the last article's page fails, and the last share is a child's.
    templates = paged_settings.path("templates") / "pages"
    templates.mkdir(parents=True)
    shipped = start_build(paged_settings, store).pages.env.get_template("pages/article.html")
    source = Path(shipped.filename).read_text(encoding="utf-8")
    (templates / "article.html").write_text(
        f"{{% if entry.title == 'Article number {ARTICLES}' %}}{{{{ entry.nothing.at_all }}}}"
        "{% endif %}" + source, encoding="utf-8")
    with pytest.raises(TemplateError, match=r"article\.html"):
        build_in_shares(paged_settings, store)


def test_no_fork_in_a_process_running_other_threads(paged_settings, store):
    build = start_build(paged_settings, store)
    build.min_share = 1
    assert share_count(build, 100) == 2
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert share_count(build, 100) == 1
    finally:
        stop.set()
        other.join()
    assert share_count(build, 1) == 1  # too little work to pay for a fork
    build.processes = 1
    assert share_count(build, 100) == 1


def test_shares_are_contiguous_and_of_about_equal_weight():
    items = list(range(1, 11))
    shares = cut(items, lambda n: n, sum(items), 2)
    assert [x for share in shares for x in share] == items
    assert shares == [[1, 2, 3, 4, 5, 6, 7], [8, 9, 10]]
    assert cut(items, lambda _n: 1, 10, 3) == [[1, 2, 3, 4], [5, 6, 7], [8, 9, 10]]
