"""Benchmark: the console's subscriber list on a store of N subscribers (default 1,000,000).

Pages through each kind of list the console shows (newest first, filtered by status,
frequency, section, searched by address and by name), timing every page two ways:
the store call the page makes (`store.browse.page`) and the whole HTTP request through
the app (session check, query, template) with Starlette's TestClient. Prints each
list's median and p95 per page. The baseline, measured in the same run, is OFFSET
paging (what a naive "page 10,000" does) at the same depths; the target is <= 100 ms a
page at 1,000,000 subscribers.

    python bench/console.py                 # builds /tmp/publisher-console-bench.db once
    python bench/console.py --rows 100000   # a smaller store
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select

from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.store.browse import Filters, encode_cursor
from publisher.store.schema import subscribers

NOW = datetime(2026, 11, 24, tzinfo=UTC)
FIRST = ("Ada", "Grace", "José", "Zoë", "Amira", "Wei", "Olu", "Sanna", "Ivan", "Maya")
LAST = ("Lovelace", "Hopper", "Martí", "Okafor", "Haddad", "Chen", "Nilsen", "Kowalski")
DOMAINS = ("example.org", "mail.example.com", "post.example.net", "inbox.example.de")
SECTIONS = ((), (), (), ("world",), ("science",), ("culture",), ("world", "science"))
PASSWORD = "benchmark password"


def fill(store, rows: int) -> None:
    """Add `rows` generated subscribers through the store's import batch."""
    rng = random.Random(7)
    batch = 20_000
    for start in range(0, rows, batch):
        new = []
        for n in range(start, min(rows, start + batch)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            roll = rng.random()
            status = "active" if roll < 0.9 else "unsubscribed" if roll < 0.96 else \
                "pending" if roll < 0.98 else "bounced"
            new.append({"email": f"{first.lower()}.{last.lower()}.{n}@{rng.choice(DOMAINS)}",
                        "name": f"{first} {last}", "status": status,
                        "frequency": rng.choice(("daily",) * 6 + ("weekly",) * 3
                                                + ("instant",)),
                        "sections": rng.choice(SECTIONS), "timezone": "", "cursor": 0,
                        "confirmed_at": NOW if status == "active" else None,
                        "created_at": NOW - timedelta(seconds=rows - n)})
        store.subscribers.merge_batch([row["email"] for row in new],
                                      lambda _stored, rows=new: (rows, []), NOW)
        print(f"\r  stored {min(rows, start + batch):,} subscribers", end="", flush=True)
    print()


LISTS = [
    ("newest first", Filters()),
    ("status bounced", Filters(status="bounced")),
    ("active + weekly", Filters(status="active", frequency="weekly")),
    ("section science", Filters(section="science")),
    ("address 'grace.'", Filters(query="grace.")),
    ("address 'zz' (none)", Filters(query="zz")),
    ("name 'maya ch'", Filters(query="maya ch", by="name")),
]


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (f"median {statistics.median(ordered) * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms  "
            f"max {ordered[-1] * 1000:6.1f}")


def page_through(store, filters: Filters, pages: int, start: str | None = None):
    times, after = [], start
    for _ in range(pages):
        began = time.perf_counter()
        page = store.browse.page(filters, after)
        times.append(time.perf_counter() - began)
        after = page.after
        if after is None:
            break
    return times


def http_through(client, filters: Filters, pages: int, start: str | None = None):
    times = []
    params = {"q": filters.query, "by": filters.by, "status": filters.status,
              "frequency": filters.frequency, "section": filters.section}
    params = {k: v for k, v in params.items() if v}
    if start:
        params["after"] = start
    url = "/admin/subscribers?" + urlencode(params)
    for _ in range(pages):
        began = time.perf_counter()
        answer = client.get(url)
        times.append(time.perf_counter() - began)
        assert answer.status_code == 200, answer.status_code
        if 'rel="next" href="' not in answer.text:
            break
        url = "/admin/subscribers" + answer.text.split('rel="next" href="/admin/subscribers')[1] \
            .split('"')[0].replace("&amp;", "&")
    return times


def offset_pages(store, depths: list[int]) -> list[float]:
    """The baseline: the same newest-first page read with OFFSET at each depth."""
    times = []
    for depth in depths:
        query = select(subscribers).order_by(subscribers.c.id.desc()).limit(51).offset(depth)
        began = time.perf_counter()
        with store.reading() as conn:
            conn.execute(query).all()
        times.append(time.perf_counter() - began)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=20, help="pages read of each list")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/publisher-console-bench"))
    args = parser.parse_args()

    folder = args.folder / str(args.rows)
    if not (folder / "publisher.toml").exists():
        init_instance(folder)
    settings = load_settings(folder, environ={})
    store = open_store(settings.database_url)
    have = sum(store.subscribers.count_by_status().values())
    if have != args.rows:
        print(f"building a store of {args.rows:,} subscribers in {folder} (once)")
        fill(store, args.rows - have)
    print(f"{args.rows:,} subscribers, {store.dialect}; {args.pages} pages of 50 per list\n")

    from publisher.web import create_app
    from publisher.web.admin.operators import add_operator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    if store.accounts.by_email("bench@example.org") is None:
        add_operator(store, "bench@example.org", "owner", PASSWORD, NOW)
    # As a context manager the client keeps one event loop for every request, as a
    # server does (without it, each request would start and stop one).
    with TestClient(create_app(settings, store, clock=lambda: NOW)) as client:
        token = client.get("/admin/login").text.split('name="form_token" value="')[1] \
            .split('"')[0]
        client.post("/admin/login", data={"email": "bench@example.org", "password": PASSWORD,
                                          "form_token": token}, follow_redirects=False)
        measure(store, client, args)
    store.close()


def measure(store, client, args) -> None:
    worst = 0.0
    print(f"{'list':<24} {'store call per page':<44} {'HTTP page (query + template)'}")
    for name, filters in LISTS:
        store_times = page_through(store, filters, args.pages)
        http_times = http_through(client, filters, args.pages)
        worst = max(worst, *http_times)
        print(f"{name:<24} {summary(store_times):<44} {summary(http_times)}")
    deep = encode_cursor([args.rows // 2])
    store_times = page_through(store, Filters(), args.pages, deep)
    http_times = http_through(client, Filters(), args.pages, deep)
    print(f"{'newest, from the middle':<24} {summary(store_times):<44} {summary(http_times)}")

    depths = [args.rows // 2 + 50 * n for n in range(args.pages)]
    baseline = offset_pages(store, depths)
    print(f"\nbaseline: OFFSET paging at the middle of the list: {summary(baseline)}")
    print(f"keyset page from the middle vs OFFSET: "
          f"{statistics.median(baseline) / statistics.median(store_times):,.0f}x faster")
    print(f"slowest HTTP page of all: {worst * 1000:.1f} ms (target <= 100 ms)")


if __name__ == "__main__":
    main()
