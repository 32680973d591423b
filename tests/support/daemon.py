"""A `publisher daemon` subprocess for tests: start it, read its log lines, stop it."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import feedparser

from tests.support.servers import PATIENCE_SECONDS  # tests wait for events, never on time


class DaemonProcess:
    def __init__(self, instance: Path, *args: str, env: dict[str, str] | None = None):
        self.lines: list[dict] = []
        self.new_lines: queue.Queue[dict] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "publisher", "-C", str(instance), "daemon",
             "--log-format", "json", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self) -> None:
        for raw in self.process.stderr:
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"not_json": raw}
            self.lines.append(line)
            self.new_lines.put(line)

    def wait_for_log(self, predicate: Callable[[dict], bool], what: str,
                     after: dict | None = None) -> dict:
        """The first log line that matches, after the line `after` if given; waits for
        it if it has not come yet."""
        seen = list(self.lines)
        start = next(i for i, line in enumerate(seen) if line is after) + 1 if after else 0
        for line in seen[start:]:
            if predicate(line):
                return line
        deadline = time.monotonic() + PATIENCE_SECONDS  # clock-ok: bounds the wait
        while time.monotonic() < deadline:  # clock-ok
            try:
                line = self.new_lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line not in seen and predicate(line):
                return line
        raise AssertionError(f"the daemon never logged {what}; it logged:\n"
                             + "\n".join(json.dumps(line) for line in self.lines))

    def wait_started(self) -> None:
        self.wait_for_log(lambda line: line.get("event") == "started", "that it started")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout=PATIENCE_SECONDS)
        finally:
            self.kill()
        self.reader.join(timeout=5)
        return code

    def stop_by_itself(self) -> int:
        """Wait for the daemon to exit on its own; its exit code."""
        try:
            code = self.process.wait(timeout=PATIENCE_SECONDS)
        finally:
            self.kill()
        self.reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def wait_until(condition: Callable[[], object], what: str) -> object:
    """Poll `condition` until it is truthy; fail, saying `what`, after the patience."""
    deadline = time.monotonic() + PATIENCE_SECONDS  # clock-ok: bounds the wait
    while time.monotonic() < deadline:  # clock-ok
        result = condition()
        if result:
            return result
        time.sleep(0.05)  # polls the condition
    raise AssertionError(f"timed out waiting for {what}")


def drop(instance, name: str, title: str) -> None:
    """Put a file in the inbox the way writers should: write aside, then rename."""
    hidden = instance / "articles" / f".{name}"
    hidden.write_text(f"{title}\n\nA paragraph about {title.lower()}.\n", encoding="utf-8")
    hidden.rename(instance / "articles" / name)


def feed_titles(instance) -> set[str]:
    """Entry titles of the site's Atom feed, read back with feedparser."""
    atom = instance / "feeds" / "atom.xml"
    return {entry.title for entry in feedparser.parse(str(atom)).entries} \
        if atom.exists() else set()


def titles(store) -> set[str]:
    return {article.title for article in store.articles.latest(100)}
