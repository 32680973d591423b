"""Fixtures for the web tests: the app under Starlette's TestClient, and under a real
uvicorn server on 127.0.0.1 for clients that need a socket (feedparser, browsers)."""

from __future__ import annotations

import threading
import time
import warnings
from urllib.parse import urlsplit

import pytest
import uvicorn

with warnings.catch_warnings():
    # Starlette 1.x nudges toward httpx2 for its TestClient; httpx still works.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

from publisher.clock import fixed
from publisher.config import load_settings
from publisher.web import create_app


@pytest.fixture
def web_settings(instance, monkeypatch):
    """Settings whose [site] url is the TestClient's own host, so links work as given."""
    monkeypatch.setenv("PUBLISHER_SITE__URL", "http://testserver/")
    monkeypatch.setenv("PUBLISHER_WEB__SUBSCRIBE_PER_MINUTE", "3")
    return load_settings(instance)


@pytest.fixture
def client(web_settings, store):
    from tests.conftest import NOW  # conftest imports this module

    with TestClient(create_app(web_settings, store, clock=fixed(NOW)),
                    follow_redirects=False) as test_client:
        yield test_client


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class LiveServer:
    """The app under uvicorn in a thread; `.url` is its base address."""

    def __init__(self, app):
        from tests.conftest import free_port  # conftest imports this module

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
