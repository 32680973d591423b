"""Benchmark: parse and ingest N generated articles in the scraped format.

Prints articles/s for parse alone and for `ingest` into a fresh SQLite store (medians
of --repeat runs), and, as the baseline measured in the same run, the naive way of
storing: one transaction per article through the same store (a sample of 1,000).
Target: >= 5,000 articles/s stored on a 2-core machine.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.config import load_settings
from publisher.ingest.inbox import inbox_files, ingest, parse_bytes
from publisher.ingest.scraped import format_scraped, join_articles
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.store.articles import FilePlan

WORDS = ("harbour", "council", "storm", "rail", "library", "festival", "comet", "election",
         "market", "bridge", "river", "school", "hospital", "budget", "vote", "minister",
         "mayor", "police", "court", "weather")
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def generate(inbox: Path, total: int, per_file: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    for start in range(0, total, per_file):
        texts = []
        for n in range(start, min(start + per_file, total)):
            title = f"{sentence(rng, 6)[:-1]} {n}"
            caption = f"{sentence(rng, 12)} (AP)" if n % 3 else None
            paragraphs = [sentence(rng, rng.randint(15, 40)) for _ in range(rng.randint(4, 12))]
            texts.append(format_scraped(title, paragraphs, caption))
        section = WORDS[(start // per_file) % 5]
        folder = inbox / section
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"dump-{start:07d}.txt").write_text(join_articles(texts), encoding="utf-8")


def time_parse(settings, inbox: Path) -> tuple[float, int]:
    started = time.perf_counter()
    count = sum(len(parse_bytes(p.read_bytes(), p.relative_to(inbox).as_posix(), settings))
                for p in inbox_files(inbox))
    return time.perf_counter() - started, count


def time_ingest(folder: Path, per_file: int, total: int) -> tuple[float, int]:
    settings = load_settings(folder, environ={})
    store = open_store(settings.database_url)
    started = time.perf_counter()
    report = ingest(settings, store, NOW)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed, report.new


def time_naive(folder: Path, sample: int) -> float:
    """Baseline: each article stored in a transaction of its own."""
    settings = load_settings(folder, environ={})
    store = open_store(settings.database_url)
    inbox = settings.path("articles")
    articles = []
    for path in inbox_files(inbox):
        articles += parse_bytes(path.read_bytes(), path.relative_to(inbox).as_posix(), settings)
        if len(articles) >= sample:
            break
    articles = articles[:sample]
    started = time.perf_counter()
    for article in articles:
        plan = FilePlan(f"{article.source}#{article.id}", "-", 1, new=[article])
        store.articles.save_files([plan], NOW)
    elapsed = time.perf_counter() - started
    store.close()
    return sample / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--articles", type=int, default=10_000)
    parser.add_argument("--per-file", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    parse_rates, ingest_rates, naive_rates = [], [], []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "site"
            init_instance(folder)
            generate(folder / "articles", args.articles, args.per_file, seed=run)
            settings = load_settings(folder, environ={})
            elapsed, count = time_parse(settings, folder / "articles")
            parse_rates.append(count / elapsed)
            elapsed, stored = time_ingest(folder, args.per_file, args.articles)
            assert stored == args.articles, (stored, args.articles)
            ingest_rates.append(stored / elapsed)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "site"
            init_instance(folder)
            generate(folder / "articles", 1_000, args.per_file, seed=run)
            naive_rates.append(time_naive(folder, 1_000))
        print(f"run {run + 1}: parse {parse_rates[-1]:,.0f}/s, ingest {ingest_rates[-1]:,.0f}/s, "
              f"naive {naive_rates[-1]:,.0f}/s", flush=True)

    parse_rate, ingest_rate = statistics.median(parse_rates), statistics.median(ingest_rates)
    naive_rate = statistics.median(naive_rates)
    print(f"articles: {args.articles:,} in files of {args.per_file}; medians of {args.repeat} runs")
    print(f"parse alone:       {parse_rate:10,.0f} articles/s")
    print(f"ingest (stored):   {ingest_rate:10,.0f} articles/s   target >= 5,000: "
          f"{'met' if ingest_rate >= 5000 else 'NOT met'}")
    print(f"baseline (one transaction per article): {naive_rate:,.0f} articles/s; "
          f"ratio {ingest_rate / naive_rate:.1f}x")


if __name__ == "__main__":
    main()
