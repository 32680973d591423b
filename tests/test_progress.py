"""Progress: plain lines when not on a terminal, a rich bar when on one."""

from __future__ import annotations

import io
import os
import pty
from datetime import timedelta

import pytest

from publisher.delivery import deliver_blocking, make_transport
from publisher.digests.planner import queue_digests
from publisher.feeds import build_feeds
from publisher.ingest.inbox import ingest
from publisher.ops.progress import progress
from publisher.subscribers import csv_io as subscriber_csv
from publisher.subscribers.csv_io import import_text
from tests.support import NOW


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_every_few_seconds_and_at_the_end():
    out, clock = io.StringIO(), FakeClock()
    with progress("import", total=1000, stream=out, clock=clock, every=5) as bar:
        for step in range(1000):
            if step in (300, 700):
                clock.now += 5
            bar.advance()
        clock.now += 1.5
    assert out.getvalue().splitlines() == [
        "import: 301/1,000 (30%)",
        "import: 701/1,000 (70%)",
        "import: done: 1,000/1,000 (100%) in 11.5s",
    ]


def test_plain_lines_without_a_total_and_on_failure():
    out, clock = io.StringIO(), FakeClock()
    with pytest.raises(RuntimeError), progress("send", stream=out, clock=clock) as bar:
        bar.advance(40)
        clock.now += 6
        bar.advance(2)
        raise RuntimeError("connection lost")
    assert out.getvalue().splitlines() == ["send: 42", "send: stopped at 42 in 6.0s"]


def test_quick_work_prints_nothing():
    out, clock = io.StringIO(), FakeClock()
    with progress("import", total=3, stream=out, clock=clock) as bar:
        bar.advance(3)
    with pytest.raises(ValueError), progress("import", stream=out, clock=clock):
        raise ValueError("bad file")
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    main, child = pty.openpty()
    with open(child, "w", closefd=True) as terminal, \
            progress("rebuild", total=3, stream=terminal) as bar:
        for _ in range(3):
            bar.advance()
    shown = b""
    while True:  # everything written, until the closed terminal reports EIO
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    shown = shown.decode(errors="replace")
    assert "rebuild" in shown and "3/3" in shown and "━" in shown  # the bar itself



def test_a_subscriber_import_shows_its_progress(settings, store, monkeypatch):
    monkeypatch.setattr(subscriber_csv, "BATCH", 2)
    out, clock = io.StringIO(), FakeClock()
    rows = "".join(f"reader{n}@example.org,Reader {n}\n" for n in range(5))

    def show(description, total=None):
        return progress(description, total, stream=out, clock=clock, every=0)

    report = import_text(settings, store, "email,name\n" + rows, "list.csv", NOW, show=show)
    assert report.added == 5
    assert out.getvalue().splitlines() == [
        "import: 2/5 (40%)", "import: 4/5 (80%)", "import: 5/5 (100%)",
        "import: done: 5/5 (100%) in 0.0s"]


def test_a_feeds_rebuild_shows_its_article_pages(settings, store):
    for n in range(3):
        (settings.path(settings.ingest.inbox) / f"a{n}.txt").write_text(
            f"Story number {n}\n\nBody {n}.\n")
    ingest(settings, store, NOW)
    out, clock = io.StringIO(), FakeClock()

    def show(description, total=None):
        return progress(description, total, stream=out, clock=clock, every=0)

    build_feeds(settings, store, NOW, show=show)
    assert out.getvalue().splitlines()[-1] == "article pages: done: 3/3 (100%) in 0.0s"
    out.seek(0)
    out.truncate()
    build_feeds(settings, store, NOW, show=show)  # nothing stale: nothing to show
    assert out.getvalue() == ""


def test_a_large_send_shows_its_progress(settings, store):
    for n in range(3):
        store.subscribers.add(f"reader{n}@example.org", NOW - timedelta(days=2),
                              status="active", frequency="instant")
    (settings.path(settings.ingest.inbox) / "a.txt").write_text("Storm\n\nBody.\n")
    ingest(settings, store, NOW)
    assert queue_digests(settings, store, NOW).queued == 3
    out, clock = io.StringIO(), FakeClock()

    def show(description, total=None):
        return progress(description, total, stream=out, clock=clock, every=0)

    report = deliver_blocking(settings, store, make_transport(settings), NOW, show=show)
    assert report.sent == 3
    assert out.getvalue().splitlines()[-1] == "send: done: 3/3 (100%) in 0.0s"
