"""Benchmark: `publisher bounces read` over N bounce messages (default 1,000) in a Maildir.

The messages are the sample corpus (tests/bounce_samples: DSNs, Exim/qmail/Exchange/
Yahoo reports, ARF complaints, auto-replies, people's replies) repeated with a distinct
address and VERP tag each, so every message names a subscriber of a fresh SQLite store
and none is a duplicate. Timed, medians of --repeat runs:

- baseline: read each file and parse it with Python's email package (compat32), the
  least any reader of these messages does;
- classify: that plus our classification (DSN/ARF fields, auto-reply rules,
  flufl.bounce's detectors), no store;
- read: the whole command's work (read_paths): classification, finding the subscriber
  (VERP tag, report fields, Message-ID), storing the event with its raw message and
  applying the policy, one transaction per message, into a fresh store.

Prints ms per 1,000 messages for each and the ratios against the baseline.
"""

from __future__ import annotations

import argparse
import mailbox
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.bounces import read_paths
from publisher.bounces.classify import classify
from publisher.config import load_settings
from publisher.delivery.verp import Verp
from publisher.instance import init_instance
from publisher.store import open_store

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "bounce_samples"
ADDRESS = re.compile(rb"[\w.+-]+@(example\.(net|com|co\.uk|info|de)|contoso\.example|"
                     rb"fabrikam\.example|northwind\.example|gmail\.com|yahoo\.com|"
                     rb"hotmail\.com)")


def write_maildir(folder: Path, count: int, verp: Verp) -> list[str]:
    """`count` messages from the corpus, each for its own address; returns the addresses."""
    samples = [p.read_bytes() for p in sorted(SAMPLES.glob("*.eml"))]
    box = mailbox.Maildir(folder)
    addresses = []
    for n in range(count):
        address = f"reader{n}@example.net"
        data = ADDRESS.sub(address.encode(), samples[n % len(samples)])
        tag = verp.address(n + 1, n + 1).encode()
        data = data.replace(b"bounces@news.example.org", tag, 1)
        box.add(data)
        addresses.append(address)
    return addresses


def timed(work, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="messages (default 1,000)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        init_instance(root / "site")
        settings = load_settings(root / "site", environ={
            "PUBLISHER_MAIL__BOUNCE": "bounces@news.example.org"})
        verp = Verp(settings, "bounces@news.example.org")
        addresses = write_maildir(root / "Maildir", args.n, verp)
        files = sorted((root / "Maildir" / "new").iterdir())
        parse = BytesParser(policy=compat32).parsebytes

        baseline = timed(lambda: [parse(f.read_bytes()) for f in files], args.repeat)
        classified = timed(lambda: [classify(f.read_bytes()) for f in files], args.repeat)

        def read_all() -> None:
            folder = Path(tempfile.mkdtemp(dir=tmp))
            store = open_store(f"sqlite:///{folder / 'publisher.db'}")
            for address in addresses:  # ids 1..n, as the VERP tags say
                store.subscribers.add(address, NOW, status="active")
            started = time.perf_counter()
            lines = list(read_paths(settings, store, [str(root / "Maildir")], NOW))
            read_all.seconds.append(time.perf_counter() - started)
            read_all.kinds = {}
            for _, outcome, _ in lines:
                kind = outcome.kind if outcome else "unreadable"
                read_all.kinds[kind] = read_all.kinds.get(kind, 0) + 1
            store.close()

        read_all.seconds = []
        for _ in range(args.repeat):
            read_all()
        read = statistics.median(read_all.seconds)

    per = 1000 / args.n
    print(f"{args.n} messages ({', '.join(f'{n} {k}' for k, n in sorted(read_all.kinds.items()))})")
    print(f"baseline (read + email parse): {baseline * 1000 * per:8.1f} ms per 1,000")
    print(f"classify:                      {classified * 1000 * per:8.1f} ms per 1,000  "
          f"({classified / baseline:.1f}x baseline)")
    print(f"bounces read (with the store): {read * 1000 * per:8.1f} ms per 1,000  "
          f"({read / baseline:.1f}x baseline)")


if __name__ == "__main__":
    main()
