"""Benchmark: an edition to N subscribers over SMTP, beside a digest to the same N.

Each run builds two fresh SQLite instances like bench/send.py's (N active daily
subscribers, default 100,000, and 10 articles): in one, bench/send.py's measured send
(`queue_digests` + `deliver`); in the other, an edition in editions/ (a letter of a few
paragraphs with the 5 newest articles as cards) started by `queue_editions` and sent by
the same `deliver`. Both go over the smtp transport to Postfix's smtp-sink on 127.0.0.1
(an aiosmtpd sink without it), each send in a child process. Prints messages/s end to
end (queue + deliver) for both and the ratio edition/digest (medians of --repeat runs,
the two interleaved so a busy moment of the machine hits both alike).

    .venv/bin/python bench/edition.py                 # 100,000 subscribers
    .venv/bin/python bench/edition.py -n 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

import send  # noqa: E402  (bench/send.py: the sink, the instance, the subscribers)

LETTER = """---
subject: Our winter letter
articles: latest 5
---
Dear readers,

This winter we tried something new: **a letter**, written by the desk, with the five
stories we liked best this week below. Tell us what you think: [write to us](
https://news.example.org/contact).

## What comes next

More letters, once a month, and nothing else changes.
"""


def edition_child(folder: str) -> None:
    """Start the edition and deliver it; prints JSON with times and peak RSS."""
    from publisher.config import load_settings
    from publisher.delivery import deliver_blocking, make_transport
    from publisher.editions import queue_editions
    from publisher.store import open_store

    settings = load_settings(Path(folder))
    store = open_store(settings.database_url)
    started = time.perf_counter()
    queued = queue_editions(settings, store, send.NOW).queued
    middle = time.perf_counter()
    report = deliver_blocking(settings, store, make_transport(settings), send.NOW)
    ended = time.perf_counter()
    print(json.dumps({"queued": queued, "sent": report.sent, "counts": store.ledger.counts(),
                      "queue_s": middle - started, "deliver_s": ended - middle,
                      "total_s": ended - started,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def one_run(args, port: int, kind: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="publisher-bench-") as tmp:
        folder = Path(tmp) / "site"
        send.make_instance(folder, port, False, args.connections)
        send.fill(folder, args.subscribers, 10)
        if kind == "edition":
            (folder / "editions").mkdir()
            (folder / "editions" / "winter-letter.md").write_text(LETTER, encoding="utf-8")
            command = [sys.executable, __file__, "--edition-child", str(folder)]
        else:
            command = [sys.executable, str(BENCH / "send.py"), "--child", str(folder)]
        output = subprocess.run(command, capture_output=True, text=True, check=False)
        if output.returncode:
            raise SystemExit(f"the {kind} send failed:\n{output.stderr}")
        result = json.loads(output.stdout.strip().splitlines()[-1])
    if result["sent"] != args.subscribers:
        raise SystemExit(f"{kind}: sent {result['sent']} of {args.subscribers}")
    result["rate"] = args.subscribers / result["total_s"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--subscribers", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--edition-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.edition_child:
        edition_child(args.edition_child)
        return
    reservation = send.reserve_port()  # held while the sink runs: no free-port race
    port = reservation.getsockname()[1]
    sink, sink_name = send.start_sink(port)
    runs: dict[str, list[dict]] = {"digest": [], "edition": []}
    try:
        for n in range(args.repeat):
            for kind in ("digest", "edition"):
                result = one_run(args, port, kind)
                runs[kind].append(result)
                print(f"run {n + 1}, {kind}: {result['rate']:,.0f} messages/s end to end "
                      f"(queue {result['queue_s']:.1f} s, deliver {result['deliver_s']:.1f} "
                      f"s), peak RSS {result['rss_mb']:.0f} MB", flush=True)
    finally:
        sink.terminate()
        sink.wait()
        reservation.close()
    digest = statistics.median(r["rate"] for r in runs["digest"])
    edition = statistics.median(r["rate"] for r in runs["edition"])
    print(f"\n{args.subscribers:,} subscribers, {args.connections} connections to "
          f"{sink_name}; medians of {args.repeat} runs")
    print(f"digest (bench/send.py's send): {digest:,.0f} messages/s")
    print(f"edition (queue_editions + deliver): {edition:,.0f} messages/s")
    print(f"ratio edition/digest: {edition / digest:.2f}")


if __name__ == "__main__":
    main()
