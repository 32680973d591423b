"""Benchmark: how soon a file dropped in articles/ reaches the feeds and the inbox of an
instant subscriber, with `publisher daemon` running.

A temp instance gets one instant subscriber and the smtp transport pointed at an aiosmtpd
server in this process. The daemon runs as a subprocess; each drop is a file renamed
into articles/, timed until the site's Atom feed lists its title (read back with
feedparser) and until the subscriber's message holding it reaches the SMTP server.
Prints the median of --drops drops for the daemon watching the inbox by file events
(targets: feeds <= 2 s, mail <= 5 s) and, as the baseline measured in the same run, for
the daemon polling the inbox every [daemon] poll_seconds (the default 2 s), as it does
where file events are unavailable. (Under cron, add up to a minute of waiting.)

Time is an input here as in the tests: the subscriber joins a day before NOW and the
daemon's clock starts at NOW (PUBLISHER_TIME) and runs on, whatever the day of the run.
"""

from __future__ import annotations

import argparse
import email
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from publisher.addresses import normalize_address
from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from tests.support.daemon import DaemonProcess
from tests.support.servers import SMTPController

PATIENCE = 60.0
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # the daemon's clock starts here


class Arrivals:
    """aiosmtpd handler noting when each message arrived and the text it carries."""

    def __init__(self):
        self.messages: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        arrived = time.monotonic()
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        text = " ".join(part.get_payload(decode=True).decode("utf-8", "replace")
                        for part in message.walk() if not part.is_multipart())
        with self.lock:
            self.messages.append((arrived, text))
        return "250 Message accepted"

    def arrival_of(self, title: str) -> float | None:
        with self.lock:
            return next((at for at, text in self.messages if title in text), None)


def make_instance(folder: Path, smtp_port: int) -> Path:
    init_instance(folder)
    os.environ["PUBLISHER_MAIL__TRANSPORT"] = "smtp"
    os.environ["PUBLISHER_MAIL__SMTP_URL"] = f"smtp://127.0.0.1:{smtp_port}"
    settings = load_settings(folder)
    store = open_store(settings.database_url)
    store.subscribers.add(normalize_address("reader@example.org"), NOW - timedelta(days=1),
                          status="active", frequency="instant")
    store.close()
    return folder


def start_daemon(folder: Path, env: dict[str, str]) -> DaemonProcess:
    """The daemon, once its start-up passes are done (so a drop is timed on its own)."""
    daemon = DaemonProcess(folder, env={"PUBLISHER_TIME": NOW.isoformat(), **env})
    daemon.wait_for_log(lambda line: line.get("event") == "leading", "that it leads")
    for stage in ("ingest", "feeds"):
        daemon.wait_for_log(lambda line, stage=stage: line["msg"].startswith(f"{stage}: "),
                            f"the start-up {stage} pass")
    return daemon


def feed_titles(atom: Path) -> set[str]:
    return {entry.title for entry in feedparser.parse(str(atom)).entries} \
        if atom.exists() else set()


def one_drop(folder: Path, arrivals: Arrivals, label: str) -> tuple[float, float]:
    """Seconds from the rename to the feed, and to the mail."""
    title = f"Latency probe {label}"
    hidden = folder / "articles" / f".{label}.txt"
    hidden.write_text(f"{title}\n\nA paragraph for {label}.\n", encoding="utf-8")
    atom = folder / "feeds" / "atom.xml"
    started = time.monotonic()
    hidden.rename(folder / "articles" / f"{label}.txt")
    in_feed = in_mail = None
    seen_mtime = None
    while time.monotonic() - started < PATIENCE and (in_feed is None or in_mail is None):
        if in_feed is None and atom.exists() and atom.stat().st_mtime_ns != seen_mtime:
            seen_mtime = atom.stat().st_mtime_ns
            if title in feed_titles(atom):
                in_feed = time.monotonic() - started
        if in_mail is None and (arrived := arrivals.arrival_of(title)) is not None:
            in_mail = arrived - started
        time.sleep(0.005)
    if in_feed is None or in_mail is None:
        raise RuntimeError(f"{label}: not in the feed or the mail after {PATIENCE:.0f}s")
    return in_feed, in_mail


def measure(mode: str, drops: int, arrivals: Arrivals, smtp_port: int) -> list[tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_instance(Path(tmp) / "site", smtp_port)
        daemon = start_daemon(folder, {"PUBLISHER_DAEMON__WATCH": mode})
        try:
            results = []
            for n in range(drops):
                mark = daemon.lines[-1]
                results.append(one_drop(folder, arrivals, f"{mode}-{n}"))
                # The pass that took the drop is over before the next drop is timed.
                daemon.wait_for_log(lambda line: line["msg"].startswith("digests: "),
                                    "the pass that took the drop", after=mark)
            return results
        finally:
            daemon.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drops", type=int, default=7, help="drops per mode (default 7)")
    args = parser.parse_args()
    arrivals = Arrivals()
    controller = SMTPController(arrivals)
    controller.start()
    port = controller.port
    try:
        figures = {mode: measure(mode, args.drops, arrivals, port)
                   for mode in ("events", "poll")}
    finally:
        controller.stop()
    medians = {mode: (statistics.median(f for f, _ in results),
                      statistics.median(m for _, m in results))
               for mode, results in figures.items()}
    for mode, (feed, mail) in medians.items():
        label = "file events" if mode == "events" else "polling every 2 s (baseline)"
        print(f"{label:<30} feeds {feed:6.3f} s   instant mail {mail:6.3f} s   "
              f"(medians of {args.drops} drops)")
    feed, mail = medians["events"]
    base_feed, base_mail = medians["poll"]
    print(f"targets: feeds <= 2 s: {'met' if feed <= 2 else 'MISSED'}; "
          f"instant mail <= 5 s: {'met' if mail <= 5 else 'MISSED'}")
    print(f"ratio baseline/events: feeds {base_feed / feed:.1f}x, mail {base_mail / mail:.1f}x")


if __name__ == "__main__":
    main()
