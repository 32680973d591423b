"""`publisher serve` as a real process: it starts, serves, stops; a bad secret stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

PUBLISHER = Path(sys.executable).with_name("publisher")


class Served:
    """`publisher -C FOLDER serve` on a free port; stopped with SIGINT like Ctrl-C."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None,
                 before: list[str] | None = None):
        self.before = before  # a command to run first, with the same environment
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, "PUBLISHER_SITE__URL": self.url, **(env or {})}
        self.folder = folder
        self.log = folder / "serve.log"

    def __enter__(self):
        if self.before:
            subprocess.run([str(PUBLISHER), "-C", str(self.folder), *self.before],
                           env=self.env, check=True, capture_output=True)
        self.process = subprocess.Popen(
            [str(PUBLISHER), "-C", str(self.folder), "serve", "--host", "127.0.0.1",
             "--port", str(self.port)],
            env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60  # a loaded CI machine takes its time to import
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"publisher serve exited: {self.log.read_text()}")
            try:
                httpx.get(self.url + "subscribe", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"publisher serve did not answer: {self.log.read_text()}")

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def test_serve_serves_the_folder_and_the_pages(instance):
    (instance / "feeds" / "feed.json").write_text(
        '{"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": []}')
    with Served(instance) as served:
        page = httpx.get(served.url + "subscribe")
        assert page.status_code == 200 and "Subscribe to" in page.text
        assert f'action="{served.url}subscribe"' in page.text
        feed = httpx.get(served.url + "feed.json")
        assert feed.headers["content-type"] == "application/feed+json; charset=utf-8"
        assert httpx.get(served.url + "feed.json", headers={
            "If-None-Match": feed.headers["etag"]}).status_code == 304
        assert httpx.get(served.url + "unsubscribe/SECRET-TOKEN").status_code == 400
    assert served.process.returncode == 0
    log = served.log.read_text()
    assert "serving" in log and "GET /feed.json HTTP/1.1\" 304" in log
    # Whoever reads the log must not be able to use the links in it.
    assert "GET /unsubscribe/… HTTP/1.1\" 400" in log and "SECRET-TOKEN" not in log


def test_serve_without_a_secret_is_one_line(run_cli, tmp_path):
    (tmp_path / "publisher.toml").write_text('[web]\nsecret = "short"\n')
    result = run_cli("-C", tmp_path, "serve", "--port", str(free_port()))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "publisher: setting web.secret = 'short' is not valid: expected a random string of "
        "at least 16 characters (publisher init writes one)"]


@pytest.fixture(autouse=True)
def _needs_the_script():
    if not PUBLISHER.exists():
        pytest.skip(f"{PUBLISHER} is not installed (pip install -e .)")
