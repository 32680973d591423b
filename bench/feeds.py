"""Benchmark: build every feed and page of a 100,000-article store, then build again.

A fresh SQLite store gets N articles in 20 sections through the store's own insert path
(no text parsing). The first build renders every RFC 5005 archive entry and keeps it in
the store, as a site's builds do as articles age out of the live window; it is timed and
printed on its own ("first build"). Then, --repeat times: a full build into an empty
publish folder (the live and section feeds with the archive pages, timed together since
they overlap, and the HTML pages), and a second build with nothing changed. Targets: the
feeds of a full build in <= 1 s; 0 files written by the second build.

Each build gets a folder of its own, and every folder is deleted only at the end: on a
file system without a journal, ext4 passes over inodes deleted in the last minute when
it creates a file, so deleting the last run's 100,000 files right before a build would
put that on the build's clock. For scale, each run also writes the full build's archive
pages again with nothing but open/write/close ("write floor"): what this machine charges
for those bytes alone.

Baseline, measured in the same run: the naive way. feedgen with its defaults, one
FeedGenerator and fresh entries per feed document (add_entry prepends, so entries go in
oldest first), articles read with the store's plain `latest()`, every file rewritten, and
the pages rendered and rewritten every time, so its second build costs what its first
did. Medians of the runs; the machine is shared, so expect noise.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feedgen.feed import FeedGenerator

from publisher.article import make_article, stable_id
from publisher.config import load_settings
from publisher.feeds import start_build
from publisher.feeds.build import (
    paused_collector,
    publish_feeds,
    publish_live_feeds,
    publish_pages,
)
from publisher.feeds.model import Site, make_entry
from publisher.feeds.pages import Pages
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.store.articles import FilePlan
from publisher.templating import template_env

WORDS = ("harbour", "council", "storm", "rail", "library", "festival", "comet", "election",
         "market", "bridge", "river", "school", "hospital", "budget", "vote", "minister",
         "mayor", "police", "court", "weather")
SECTIONS = tuple(f"{word}-desk" for word in WORDS)  # 20 sections
START = datetime(2020, 1, 1, tzinfo=UTC)
BATCH = 2000


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def generate(store, total: int, seed: int = 1) -> None:
    """N articles, stored BATCH at a time as ingest would, 5 minutes apart."""
    rng = random.Random(seed)
    batch: list = []
    for n in range(total):
        sections = (SECTIONS[n % 20],) + ((SECTIONS[(n * 7) % 20],) if n % 10 == 0 else ())
        captioned = n % 3 == 0
        batch.append(make_article(
            id=stable_id("bench", str(n)), title=f"{sentence(rng, 6)[:-1]} {n}",
            paragraphs=tuple(sentence(rng, rng.randint(15, 40))
                             for _ in range(rng.randint(4, 12))),
            source=f"bench/{n // 1000:03d}.txt", source_index=n % 1000,
            sections=tuple(dict.fromkeys(sections)),
            captions=(f"{sentence(rng, 12)} (AP)",) if captioned else (),
            credit="AP" if captioned else None,
            author=f"Reporter {n % 50}" if n % 2 else None,
            image=f"https://images.example.org/{n}.jpg" if n % 5 == 0 else None,
            published=START + timedelta(minutes=5 * n)))
        if len(batch) == BATCH or n == total - 1:
            store.articles.save_files([FilePlan(f"bench/{n}", "-", len(batch), new=batch)],
                                      START + timedelta(minutes=5 * n + 1))
            batch = []


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the build's forked shares):
    less sensitive than wall time to other work on a shared machine."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed_build(settings, store) -> dict:
    """One build, pass by pass (what `build_feeds` does, with a clock in between)."""
    marks, cpu = [time.perf_counter()], [cpu_seconds()]
    with paused_collector():
        build = start_build(settings, store)
        for work in (publish_feeds, publish_pages):
            work(build)
            marks.append(time.perf_counter())
            cpu.append(cpu_seconds())
        build.output.save()
    marks.append(time.perf_counter())
    feeds, pages, save = (b - a for a, b in itertools.pairwise(marks))
    return {"feeds": feeds, "pages": pages + save, "feeds_cpu": cpu[1] - cpu[0],
            "written": len(build.output.written), "unchanged": build.output.unchanged,
            "shares": dict(build.shares_used)}


def live_feeds_alone(settings, store) -> float:
    """Seconds for the live and section feeds alone (no archive pages), into an empty
    folder: the figure for readers of the target who count archive pages as pages."""
    started = time.perf_counter()
    with paused_collector():
        publish_live_feeds(start_build(settings, store))
    return time.perf_counter() - started


def write_floor(built: Path, folder: Path) -> float:
    """Seconds to write the archive pages under `built` again into `folder` with bare
    open/write/close: the machine's own cost for those bytes."""
    pages = [(path.name, path.read_bytes()) for path in (built / "archive").iterdir()]
    folder.mkdir(parents=True)
    started = time.perf_counter()
    for name, data in pages:
        with open(folder / name, "wb") as file:
            file.write(data)
    return time.perf_counter() - started


def naive_build(settings, store, folder: Path) -> dict:
    """The baseline: plain feedgen per document, every file rewritten."""
    site = Site.from_settings(settings)
    items = settings.feeds.items
    started = time.perf_counter()
    written = 0
    scopes = [("", None)] + [(f"sections/{s}/", s) for s in store.articles.section_counts()]
    for prefix, section in scopes:
        articles = store.articles.latest(items, section)
        feed = naive_feed(site, prefix, reversed(articles))
        (folder / prefix).mkdir(parents=True, exist_ok=True)
        feed.rss_file(str(folder / prefix / "rss.xml"))
        feed.atom_file(str(folder / prefix / "atom.xml"))
        (folder / prefix / "feed.json").write_text(json.dumps({
            "version": "https://jsonfeed.org/version/1.1", "title": site.title,
            "items": [{"id": site.permalink(a.slug), "title": a.title,
                       "content_html": a.body_html,
                       "date_published": a.published.isoformat()} for a in articles]}))
        written += 3
    stamps = store.articles.stamps()
    archived = [s.seq for s in stamps[:max(len(stamps) - items, 0)]]
    (folder / "archive").mkdir(exist_ok=True)
    for number, start in enumerate(range(0, len(archived), items), start=1):
        page = list(store.articles.published(archived[start:start + items]))
        naive_feed(site, "", page).atom_file(str(folder / "archive" / f"{number}.xml"))
        written += 1
    feeds_done = time.perf_counter()
    pages = Pages(template_env(settings), site)
    (folder / "articles").mkdir(exist_ok=True)
    for article in store.articles.published(s.seq for s in stamps):
        entry = make_entry(article, site)
        (folder / "articles" / f"{entry.slug}.html").write_bytes(pages.article(entry))
        written += 1
    return {"feeds": feeds_done - started, "pages": time.perf_counter() - feeds_done,
            "written": written}


def naive_feed(site: Site, prefix: str, articles) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(site.url_of(prefix + "atom.xml"))
    feed.title(site.title)
    feed.description(site.description)
    feed.link(href=site.url_of(prefix), rel="alternate")
    for article in articles:
        entry = feed.add_entry()
        entry.id(site.permalink(article.slug))
        entry.title(article.title)
        entry.link(href=site.permalink(article.slug))
        entry.summary(article.summary)
        entry.content(article.body_html, type="html")
        entry.published(article.published)
        entry.updated(article.updated)
    return feed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--articles", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive baseline")
    parser.add_argument("--processes", type=int, help="[feeds] processes for the builds "
                        "(default: the setting's default)")
    parser.add_argument("--folder", type=Path, help="make the publish folders under DIR "
                        "(default: in the instance, on the same disk as the store)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(tmp) / "site"
        init_instance(instance)
        base = Path(tempfile.mkdtemp(dir=args.folder)) if args.folder else Path(tmp)
        environ = {"PUBLISHER_FEEDS__FOLDER": str(base / "feeds")}
        if args.processes:
            environ["PUBLISHER_FEEDS__PROCESSES"] = str(args.processes)
        settings = load_settings(instance, environ=environ)
        store = open_store(settings.database_url)
        started = time.perf_counter()
        generate(store, args.articles)
        print(f"store: {args.articles:,} articles in {len(SECTIONS)} sections, made in "
              f"{time.perf_counter() - started:.1f} s; [feeds] processes "
              f"{settings.feeds.processes}, {os.cpu_count()} cores", flush=True)
        base_feeds = environ["PUBLISHER_FEEDS__FOLDER"]

        def settings_for(name: str):
            return load_settings(instance, environ={
                **environ, "PUBLISHER_FEEDS__FOLDER": f"{base_feeds}/{name}"})

        first = timed_build(settings_for("first"), store)
        print(f"first build (every archive entry rendered and kept): feeds "
              f"{first['feeds']:.2f} s (cpu {first['feeds_cpu']:.2f} s), pages "
              f"{first['pages']:.1f} s; the store is now "
              f"{store_size(settings) / 1e6:,.0f} MB", flush=True)
        full, second, naive, loads, floors, lives = [], [], [], [], [], []
        for run in range(args.repeat):
            run_settings = settings_for(f"full-{run}")
            loads.append(os.getloadavg()[0])
            full.append(timed_build(run_settings, store))
            second.append(timed_build(run_settings, store))
            floors.append(write_floor(run_settings.path(run_settings.feeds.folder),
                                      base / f"floor-{run}"))
            lives.append(live_feeds_alone(settings_for(f"live-{run}"), store))
            line = (f"run {run + 1} (load {loads[-1]:.1f}): full build feeds "
                    f"{full[-1]['feeds']:.2f} s (cpu {full[-1]['feeds_cpu']:.2f} s, "
                    f"processes {full[-1]['shares']}), pages {full[-1]['pages']:.1f} s, "
                    f"{full[-1]['written']:,} files; second build "
                    f"{second[-1]['feeds'] + second[-1]['pages']:.2f} s, "
                    f"{second[-1]['written']} files written; write floor {floors[-1]:.2f} s; "
                    f"live and section feeds alone {lives[-1]:.2f} s")
            if not args.no_baseline:
                naive.append(naive_build(settings, store, base / f"naive-{run}"))
                line += (f"; naive feeds {naive[-1]['feeds']:.2f} s, "
                         f"pages {naive[-1]['pages']:.1f} s")
            print(line, flush=True)
        store.close()
        if args.folder:
            shutil.rmtree(base)
    report(args, full, second, naive, loads, floors, lives)


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def store_size(settings) -> int:
    """Bytes of the SQLite store (with its write-ahead log)."""
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def report(args, full: list[dict], second: list[dict], naive: list[dict],
           loads: list[float], floors: list[float], lives: list[float]) -> None:
    feeds = median(full, "feeds")
    print(f"\n{args.articles:,} articles, medians of {args.repeat} runs (shared machine: "
          f"1-minute load average {min(loads):.1f} to {max(loads):.1f} at the runs' starts, "
          f"now {os.getloadavg()[0]:.1f}, on {os.cpu_count()} cores)")
    print(f"full build:   feeds {feeds:.2f} s (live, section and archive feeds; cpu "
          f"{median(full, 'feeds_cpu'):.2f} s), pages {median(full, 'pages'):.2f} s, "
          f"files written {int(median(full, 'written')):,}")
    print(f"              write floor: the archive pages' bytes alone, bare writes "
          f"{statistics.median(floors):.2f} s")
    print(f"              live and section feeds alone (no archive pages): "
          f"{statistics.median(lives):.2f} s")
    again = median(second, "feeds") + median(second, "pages")
    written = int(max(run["written"] for run in second))
    print(f"second build: feeds {median(second, 'feeds'):.2f} s, pages "
          f"{median(second, 'pages'):.2f} s, total {again:.2f} s; files written "
          f"{written} (target 0: {'met' if written == 0 else 'NOT met'})")
    ratio = ""
    if naive:
        naive_feeds, naive_pages = median(naive, "feeds"), median(naive, "pages")
        print(f"baseline (plain feedgen, every file rewritten): feeds {naive_feeds:.2f} s, "
              f"pages {naive_pages:.1f} s, files written {int(median(naive, 'written')):,} "
              "on every build")
        print(f"ratio: full-build feeds {naive_feeds / feeds:.1f}x faster; second build "
              f"{(naive_feeds + naive_pages) / again:.0f}x faster")
        ratio = f"; baseline {naive_feeds:.2f} s, {naive_feeds / feeds:.1f}x faster"
    print(f"TARGET full-build feeds (live, section and archive feeds) <= 1 s: "
          f"{'met' if feeds <= 1 else 'NOT met'} ({feeds:.2f} s{ratio})")


if __name__ == "__main__":
    main()
