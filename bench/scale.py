"""Benchmark: how the passes grow with the site, at 1,000, 10,000 and 100,000 articles.

For each size, a fresh instance gets that many generated Markdown articles (one file
each, 20 sections as inbox folders, front matter with a date spread over ten years in no
order, 5-10 paragraphs: 2-5 KB a file, as real articles are), and this prints:

- ingest: articles per CPU second (the parsing workers' CPU counted in) of an `ingest` of
  the last --ingest-sample files (the ones before
  them are stored directly, as set-up, so the scan sees the whole inbox);
- full build: seconds for the first `publisher feeds` (every page, feed and archive page);
- no-op run: one `publisher run` pass with nothing new (every stage), and its feeds stage
  alone (what the feeds side costs: the rest is mostly the inbox scan);
- one new file: one `publisher run` pass after one new file lands (ingest it, its page,
  the feeds, the digests), and the feeds stage of such a pass alone;

each in CPU seconds (this process and its forked children: on a shared machine wall
time mostly measures the neighbours), the median of --repeat passes, in this process
(no process start), beside the same figure at the smallest size (the baseline,
measured in the same run) as a ratio. The
store's bytes per archived article (the archive_entries table, SQLite's dbstat) come last.

With --latency, the daemon's file -> feed and file -> instant mail latency at the biggest
size with --subscribers instant subscribers (of another section, so the planner weighs
them all and one reader gets the mail), measured as bench/latency.py measures it.

    .venv/bin/python bench/scale.py --sizes 1000,10000 --latency
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.article import make_article, stable_id
from publisher.clock import fixed
from publisher.config import load_settings
from publisher.delivery import make_transport
from publisher.feeds import build_feeds
from publisher.ingest.inbox import ingest
from publisher.ingest.scan import stat_of
from publisher.instance import init_instance
from publisher.schedule.pipeline import run_once
from publisher.store import open_store
from publisher.store.articles import FilePlan

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SECTIONS = ("world", "science", "culture", "sport", "business", "politics", "health",
            "travel", "food", "books", "music", "film", "tech", "climate", "education",
            "local", "opinion", "weather", "transport", "history")
WORDS = ("harbour", "council", "storm", "rail", "library", "festival", "comet", "election",
         "market", "bridge", "river", "school", "hospital", "budget", "vote", "minister",
         "mayor", "police", "court", "weather", "the", "of", "and", "a", "to", "in")


def article_fields(rng: random.Random, n: int) -> dict:
    published = datetime(2016, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(5_256_000))
    title = " ".join(rng.choice(WORDS) for _ in range(7)).capitalize() + f" {n}"
    paragraphs = tuple(" ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90)))
                       .capitalize() + "." for _ in range(rng.randint(5, 10)))
    return {"title": title, "published": published, "author": f"Desk {n % 37}",
            "paragraphs": paragraphs}


def article_text(fields: dict) -> str:
    return (f"---\ntitle: {fields['title']}\ndate: {fields['published'].isoformat()}\n"
            f"author: {fields['author']}\n---\n\n" + "\n\n".join(fields["paragraphs"]) + "\n")


def generate(inbox: Path, start: int, count: int, seed: int = 1,
             store=None) -> None:
    """Write articles start..start+count-1 into the inbox. With `store` (set-up of a big
    site, not measured), also store them as ingest would, without parsing them."""
    rng = random.Random(seed + start)
    plans = []
    for n in range(start, start + count):
        section = SECTIONS[n % len(SECTIONS)]
        folder = inbox / section
        folder.mkdir(parents=True, exist_ok=True)
        fields = article_fields(rng, n)
        data = article_text(fields).encode()
        path = folder / f"{n:07d}.md"
        path.write_bytes(data)
        if store is not None:
            key = f"{section}/{n:07d}.md"
            new = make_article(id=stable_id("bench", key), source=key, source_index=0,
                               sections=(section,), **fields)
            # With its stat, as an earlier pass would have recorded it: otherwise the
            # measured ingest would read and hash every set-up file once more.
            plans.append(FilePlan(key, hashlib.sha256(data).hexdigest(), 1,
                                  stat=stat_of(path.lstat()), new=[new]))
            if len(plans) == 2000:
                store.articles.save_files(plans, NOW)
                plans = []
    if plans:
        store.articles.save_files(plans, NOW)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (a full build's forked shares,
    a big ingest's parsing workers):
    on a shared machine far steadier than wall time, which counts other people's work."""
    # process_time: this process to the nanosecond (os.times counts in 10 ms ticks, as
    # coarse as the no-op pass itself); os.times for the children, whose passes are long.
    times = os.times()
    return time.process_time() + times.children_user + times.children_system


def timed(work) -> float:
    started = cpu_seconds()
    work()
    return cpu_seconds() - started


def archive_bytes(database: Path) -> tuple[int, int]:
    """(bytes of the archive_entries table and its index, rows) in the SQLite file."""
    with sqlite3.connect(database) as conn:
        size = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'archive_entries' "
                            "OR name LIKE 'sqlite_autoindex_archive_entries%'").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM archive_entries").fetchone()[0]
    return size or 0, rows


def measure(size: int, repeat: int, root: Path, ingest_sample: int) -> dict:
    folder = root / f"site-{size}"
    init_instance(folder)
    settings = load_settings(folder)
    inbox = settings.path(settings.ingest.inbox)
    for stale in inbox.rglob("*"):  # the instance's welcome article: only ours count
        if stale.is_file():
            stale.unlink()
    store = open_store(settings.database_url)
    transport = make_transport(settings)
    clock_at = [NOW]
    figures: dict = {"size": size}
    # The ingest rate from (at most) the first `ingest_sample` files; the rest of a big
    # site is stored directly (set-up: at this machine's ingest rate 100,000 files take
    # most of an hour, and making ingest fast is another part of the issue).
    sample = min(size, ingest_sample)
    print(f"[{size:,}] generating, ingest of the last {sample:,}", file=sys.stderr, flush=True)
    if size > sample:
        generate(inbox, 0, size - sample, store=store)
    generate(inbox, size - sample, sample)
    figures["ingest_rate"] = sample / timed(lambda: ingest(settings, store, NOW))
    print(f"[{size:,}] full build", file=sys.stderr, flush=True)
    figures["full_build"] = timed(lambda: build_feeds(settings, store, NOW))
    run_once(settings, store, transport, fixed(NOW))  # the rest of a first pass
    noop, noop_feeds, one, one_feeds = [], [], [], []
    for n in range(repeat):
        clock_at[0] += timedelta(minutes=1)
        noop.append(timed(lambda: run_once(settings, store, transport, fixed(clock_at[0]))))
        noop_feeds.append(timed(lambda: build_feeds(settings, store, clock_at[0])))
        # One new file: the whole pass, then (another file) the feeds stage alone.
        generate(inbox, size + 2 * n, 1, seed=99)
        clock_at[0] += timedelta(minutes=1)
        one.append(timed(lambda: run_once(settings, store, transport, fixed(clock_at[0]))))
        generate(inbox, size + 2 * n + 1, 1, seed=99)
        clock_at[0] += timedelta(minutes=1)
        ingest(settings, store, clock_at[0])
        one_feeds.append(timed(lambda: build_feeds(settings, store, clock_at[0])))
    figures.update(noop_run=statistics.median(noop), noop_feeds=statistics.median(noop_feeds),
                   one_run=statistics.median(one), one_feeds=statistics.median(one_feeds))
    store.close()
    database = settings.path("publisher.db")
    if database.exists():
        figures["archive_bytes"], figures["archived"] = archive_bytes(database)
        pages = settings.path(settings.feeds.folder) / "archive"
        figures["page_bytes"] = sum(p.stat().st_size for p in pages.glob("*.xml"))
    figures["folder"] = folder
    return figures


ROWS = (("ingest_rate", "ingest (articles/CPU s)", "{:,.0f}"),
        ("full_build", "full build (CPU s)", "{:.2f}"),
        ("noop_run", "no-op run (CPU s)", "{:.3f}"),
        ("noop_feeds", "  feeds stage of it", "{:.4f}"),
        ("one_run", "one new file, run (CPU s)", "{:.3f}"),
        ("one_feeds", "  feeds stage of it", "{:.4f}"))


def report(results: list[dict]) -> None:
    base = results[0]
    print(f"{'':<26}" + "".join(f"{r['size']:>22,}" for r in results))
    for key, label, form in ROWS:
        cells = []
        for r in results:
            ratio = r[key] / base[key] if base[key] else float("nan")
            cells.append(f"{form.format(r[key])} ({ratio:.2f}x)")
        print(f"{label:<26}" + "".join(f"{c:>22}" for c in cells))
    for r in results:
        if r.get("archived"):
            print(f"archive entries at {r['size']:,}: {r['archive_bytes'] / r['archived']:,.0f} "
                  f"bytes per archived article in SQLite ({r['archived']:,} rows, "
                  f"{r['archive_bytes'] / 1e6:.1f} MB); the archive pages: "
                  f"{r['page_bytes'] / r['archived']:,.0f} bytes per article")


def latency(folder: Path, subscribers: int, drops: int) -> None:
    """The daemon on the biggest instance, as bench/latency.py drives it."""
    from sqlalchemy import insert

    import bench.latency
    from bench.latency import Arrivals, one_drop, start_daemon
    from publisher.addresses import normalize_address
    from publisher.store.schema import subscribers as table
    from tests.support.servers import SMTPController

    arrivals = Arrivals()
    controller = SMTPController(arrivals)  # bound to port 0: no free-port race
    controller.start()
    port = controller.port
    os.environ["PUBLISHER_MAIL__TRANSPORT"] = "smtp"
    os.environ["PUBLISHER_MAIL__SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    settings = load_settings(folder)
    store = open_store(settings.database_url)
    now = bench.latency.NOW  # the daemon's clock starts here (start_daemon)
    cursor = store.articles.max_seq()
    for start in range(0, subscribers, 20_000):  # set-up: a bulk insert, as an import
        with store.writing() as conn:
            conn.execute(insert(table), [
                {"email": f"reader{n}@example.net", "name": "", "status": "active",
                 "frequency": "instant", "sections": ["history"], "timezone": "",
                 "cursor": cursor, "bounce_count": 0, "created_at": now,
                 "updated_at": now, "token_version": 0}
                for n in range(start, min(start + 20_000, subscribers))])
    store.subscribers.add(normalize_address("probe@example.org"), now, status="active",
                          frequency="instant", cursor=cursor)
    store.close()
    daemon = start_daemon(folder, {"PUBLISHER_DAEMON__WATCH": "events"})
    try:
        bench.latency.PATIENCE = 180.0
        results = []
        for n in range(drops):
            try:
                results.append(one_drop(folder, arrivals, f"probe-{n}"))
            except RuntimeError as exc:  # missed: say so, and how far each part got
                feed_ok = f"Latency probe probe-{n}" in bench.latency.feed_titles(
                    folder / "feeds" / "atom.xml")
                print(f"{exc} (in the feed by then: {feed_ok})", flush=True)
                results.append((float("inf") if not feed_ok else 180.0, float("inf")))
            print(f"drop {n}: feed {results[-1][0]:.3f} s, mail {results[-1][1]:.3f} s",
                  flush=True)
            time.sleep(0.5)
    finally:
        daemon.stop()
        controller.stop()
    feed = statistics.median(f for f, _ in results)
    mail = statistics.median(m for _, m in results)
    print(f"daemon at this size with {subscribers:,} instant subscribers: file -> feed "
          f"{feed:.3f} s, file -> instant mail {mail:.3f} s (medians of {drops} drops; "
          f"targets 2 s / 5 s: {'met' if feed <= 2 and mail <= 5 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="article counts, the first the baseline (default 1000,10000,100000)")
    parser.add_argument("--repeat", type=int, default=5, help="passes per figure (median)")
    parser.add_argument("--latency", action="store_true",
                        help="also the daemon's latency at the biggest size")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--ingest-sample", type=int, default=10_000,
                        help="files ingested (timed) at each size; the rest are stored "
                             "directly as set-up (default 10,000)")
    parser.add_argument("--drops", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for size in sizes:
            results.append(measure(size, args.repeat, Path(tmp), args.ingest_sample))
            report(results)  # as it goes: the biggest size takes long
            print(flush=True)
        if args.latency:
            latency(results[-1]["folder"], args.subscribers, args.drops)


if __name__ == "__main__":
    main()
