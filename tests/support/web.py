"""Helpers for the web tests: the app's paths, and `publisher serve` as a real process.
(The app under uvicorn in a thread is servers.LiveServer; the fixtures `web_settings`
and `client` are in conftest.)"""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from publisher import tokens
from tests.support import NOW
from tests.support.servers import PATIENCE_SECONDS, reserved_port

with warnings.catch_warnings():
    # Starlette 1.x nudges toward httpx2 for its TestClient; httpx still works.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient  # noqa: F401  (tests import it from here)

PUBLISHER = Path(sys.executable).with_name("publisher")
CHROMIUM = os.environ.get("PUBLISHER_CHROMIUM", "/usr/bin/chromium")
FLAGS = os.environ.get("PUBLISHER_CHROMIUM_FLAGS", "--headless --no-sandbox --disable-gpu "
                       "--disable-background-networking --disable-component-update "
                       "--disable-sync --no-first-run --disable-quic").split()


SAME_SITE = {"Origin": "http://testserver"}  # what a browser sends from the site itself


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def form_token_of(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html)[1]


def subscribe(client, email="ada@example.org", headers=SAME_SITE, **fields):
    """POST the public subscribe form (weekly, as Ada) through a TestClient."""
    data = {"email": email, "name": "Ada", "frequency": "weekly", **fields}
    return client.post("/subscribe", data=data, headers=headers)


def link(web_settings, purpose, sub):
    """The path of a signed link for `sub`, made at NOW."""
    return path_of(tokens.link(web_settings, purpose, sub.id, sub.token_version, now=NOW))


class Served:
    """`publisher -C FOLDER serve` on a port reserved for it (servers.reserved_port: the
    site's public address must name the port before the server starts); stopped with
    SIGINT like Ctrl-C."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None,
                 before: list[str] | None = None):
        self.before = before  # a command to run first, with the same environment
        self.extra_env = env or {}
        self.folder = folder
        self.log = folder / "serve.log"
        self.reservation = reserved_port()

    def __enter__(self):
        self.port = self.reservation.__enter__()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.env = {**os.environ, "PUBLISHER_SITE__URL": self.url, **self.extra_env}
        if self.before:
            subprocess.run([str(PUBLISHER), "-C", str(self.folder), *self.before],
                           env=self.env, check=True, capture_output=True)
        self.process = subprocess.Popen(
            [str(PUBLISHER), "-C", str(self.folder), "serve", "--host", "127.0.0.1",
             "--port", str(self.port)],
            env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + PATIENCE_SECONDS  # clock-ok: bounds the wait
        while time.monotonic() < deadline:  # clock-ok
            if self.process.poll() is not None:
                break
            try:
                httpx.get(self.url + "subscribe", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)  # polls until it answers
        self.__exit__(None, None, None)
        raise RuntimeError(f"publisher serve did not answer: {self.log.read_text()}")

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reservation.__exit__(None, None, None)


class Site:
    """Another origin: one page (`.html`, set once the app's address is known), on a
    port of its own."""

    def __init__(self):
        self.html = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = site.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.origin + "/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def confirm_path(data: bytes) -> str:
    message = email.message_from_bytes(data, policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    return path_of(re.search(r"https?://\S+/confirm/\S+", text)[0])
