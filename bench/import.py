"""Benchmark: import N generated subscribers from CSV (default 100,000).

Prints rows/s for `subscribers import` into a fresh SQLite store, for importing the same
file again (every row unchanged), and for reading and checking the rows alone (the floor:
email-validator, time zones, sections), medians of --repeat runs. The baseline measured
in the same run is the naive way of storing: one transaction per subscriber through the
same store (a sample of 1,000). Target: >= 10,000 rows/s (listmonk's published figure).
`--url` runs against another database (e.g. PostgreSQL) instead of a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import sys
import tempfile
import time
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.store.schema import metadata
from publisher.subscribers.csv_io import COLUMNS, ImportReport, checked_rows, import_file
from publisher.subscribers.rules import Preferences, add_subscriber

NOW = datetime(2026, 11, 24, tzinfo=UTC)
FIRST = ("Ada", "Grace", "José", "Zoë", "Amira", "Wei", "Olu", "Sanna", "Ivan", "Maya")
LAST = ("Lovelace", "Hopper", "Martí", "Okafor", "Haddad", "Chen", "Nilsen", "Kowalski")
DOMAINS = ("example.org", "mail.example.com", "post.example.net", "inbox.example.de",
           "例え.jp")
ZONES = ("", "Europe/London", "America/New_York", "Asia/Tokyo", "Africa/Lagos",
         "Europe/Berlin", "America/Havana")
SECTIONS = ("", "world", "science", "culture", "world;science", "culture;world")


def ascii_name(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def generate(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for n in range(rows):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            # Most real local parts are ASCII; one in a hundred here is not (josé.17@...).
            local = first.lower() if n % 100 == 0 else ascii_name(first)
            writer.writerow((
                f"{local}.{ascii_name(last)}.{n}@{rng.choice(DOMAINS)}",
                f"{first} {last}",
                rng.choice(("daily", "daily", "weekly", "instant")),
                rng.choice(SECTIONS), rng.choice(ZONES),
                "unsubscribed" if n % 50 == 0 else "active",
                (NOW - timedelta(minutes=n)).isoformat(),
            ))


def time_checking(path: Path) -> float:
    started = time.perf_counter()
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    columns = next(reader)
    count = sum(1 for _ in checked_rows(reader, columns, ImportReport()))
    return count / (time.perf_counter() - started)


def fresh_database(url: str | None, folder: Path) -> str:
    if not url:
        return f"sqlite:///{folder / 'publisher.db'}"
    store = open_store(url)
    with store.writing() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS schema_version")
    store.close()
    return url


def time_import(folder: Path, url: str, path: Path, rows: int) -> tuple[float, float]:
    settings = load_settings(folder, environ={"PUBLISHER_STORE__URL": url})
    store = open_store(settings.database_url)
    rates = []
    for expect_added in (rows, 0):
        started = time.perf_counter()
        report = import_file(settings, store, path, NOW)
        rates.append(rows / (time.perf_counter() - started))
        assert report.added == expect_added and not report.bad, report.line()
    store.close()
    return rates[0], rates[1]


def time_naive(folder: Path, url: str, sample: int) -> float:
    """Baseline: each subscriber checked and stored in a transaction of its own."""
    settings = load_settings(folder, environ={"PUBLISHER_STORE__URL": url})
    store = open_store(settings.database_url)
    started = time.perf_counter()
    for n in range(sample):
        add_subscriber(settings, store, f"naive.{n}@example.org",
                       Preferences(name="Naive Person", sections=("world",)), NOW, True)
    elapsed = time.perf_counter() - started
    store.close()
    return sample / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", help="database URL instead of a fresh SQLite file "
                        "(its tables are dropped first)")
    args = parser.parse_args()

    check_rates, import_rates, again_rates, naive_rates = [], [], [], []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "site"
            init_instance(folder)
            path = Path(tmp) / "list.csv"
            generate(path, args.rows, seed=run)
            check_rates.append(time_checking(path))
            url = fresh_database(args.url, folder)
            first, again = time_import(folder, url, path, args.rows)
            import_rates.append(first)
            again_rates.append(again)
            url = fresh_database(args.url, folder / "naive")
            (folder / "naive").mkdir(exist_ok=True)
            naive_rates.append(time_naive(folder, url, 1_000))
        print(f"run {run + 1}: check {check_rates[-1]:,.0f}/s, import {import_rates[-1]:,.0f}/s,"
              f" again {again_rates[-1]:,.0f}/s, naive {naive_rates[-1]:,.0f}/s", flush=True)

    import_rate, naive_rate = statistics.median(import_rates), statistics.median(naive_rates)
    print(f"rows: {args.rows:,} ({'given database' if args.url else 'SQLite'}); "
          f"medians of {args.repeat} runs")
    print(f"read and check alone:      {statistics.median(check_rates):10,.0f} rows/s")
    print(f"import (fresh list):       {import_rate:10,.0f} rows/s   target >= 10,000: "
          f"{'met' if import_rate >= 10_000 else 'NOT met'}")
    print(f"import again (unchanged):  {statistics.median(again_rates):10,.0f} rows/s")
    print(f"baseline (one transaction per subscriber): {naive_rate:,.0f} rows/s; "
          f"ratio {import_rate / naive_rate:.1f}x")


if __name__ == "__main__":
    main()
