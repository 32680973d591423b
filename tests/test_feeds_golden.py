"""Golden files: fixed articles, stored and edited at fixed times, build exactly the files
in tests/golden/feeds/, byte for byte, on every backend.

After an intended change to the output, regenerate them and review the diff:

    PUBLISHER_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_feeds_golden.py -k sqlite
    git diff tests/golden/

With the variable set the test rewrites the files and then fails, so a run that
regenerated them can never pass by accident.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from publisher.feeds import build_feeds
from tests.support.feeds import (
    NASTY,
    article,
    edit_article,
    publish_folder,
    store_articles,
    with_feeds,
    with_site,
)

GOLDEN = Path(__file__).parent / "golden" / "feeds"
STORED = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)
EDITED = STORED + timedelta(days=1, hours=2)


def golden_site(settings, store):
    settings = with_feeds(with_site(settings, url="https://news.example.org/",
                                    title="The Example News", author="News Desk",
                                    description="Stories from Example & around.",
                                    timezone="Europe/Lisbon"),
                          items=2)
    store_articles(store, [
        article(1, title="Harbour Cities Agree on a Flood Warning Network",
                sections=("world",), captions=("Sandbags on the quay. (Demo Wire)",),
                credit="Demo Wire"),
        article(2, title=NASTY, sections=("world", "science"), author="Ada & Co",
                image="https://images.example.org/comet.jpg",
                paragraphs=(f"{NASTY} in a body.", "A second paragraph.")),
        article(3, title="Night Trains Return", sections=("culture",),
                link="https://upstream.example.org/night-trains"),
        article(4, title="Council Keeps the Library Open", sections=()),
        article(5, title="مجلس المدينة يصوت", sections=("world",),
                published=None),  # no date: the store's clock gives it one
    ], STORED)
    edit_article(store, article(1, title="Harbour Cities Agree on a Flood Warning Network",
                                sections=("world",),
                                captions=("Sandbags on the quay. (Demo Wire)",),
                                credit="Demo Wire",
                                paragraphs=("First paragraph, corrected.",
                                            "Second paragraph of article 1.")), EDITED)
    return settings


def published_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.startswith(".")}


def test_feeds_match_the_golden_files(settings, store):
    settings = golden_site(settings, store)
    build_feeds(settings, store, EDITED + timedelta(hours=1))
    built = published_files(publish_folder(settings))
    assert "archive/1.xml" in built and "sections/science/atom.xml" in built
    if os.environ.get("PUBLISHER_UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, data in built.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_bytes(data)
        pytest.fail(f"rewrote {len(built)} golden files in {GOLDEN}: review `git diff "
                    "tests/golden` and run again without PUBLISHER_UPDATE_GOLDEN")
    expected = published_files(GOLDEN)
    assert sorted(built) == sorted(expected)
    for name, data in expected.items():
        assert built[name] == data, f"{name} differs from tests/golden/feeds/{name}"
