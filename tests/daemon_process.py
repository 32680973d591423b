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

# Generous: the machine may be shared and slow. Tests wait for events, never on time.
PATIENCE_SECONDS = 60


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

    def wait_for_log(self, predicate: Callable[[dict], bool], what: str) -> dict:
        """The first log line (from now on, or already seen) that matches."""
        for line in list(self.lines):
            if predicate(line):
                return line
        deadline = time.monotonic() + PATIENCE_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self.new_lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if predicate(line):
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
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
