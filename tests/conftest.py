"""Shared fixtures: a fresh instance folder, a store on every backend, the CLI runner."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine

from publisher.cli import cli
from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.store.schema import metadata

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SEED = SHARED / "seeds" / "000_40c4cd09925972a5.txt"
PG_URL = os.environ.get("PUBLISHER_TEST_PG_URL", "")
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True, scope="session")
def publisher_time():
    """Every publisher process the tests start (the CLI in-process, `run`, `daemon`) runs
    on a clock that starts at NOW, so test data built around NOW means the same thing on
    any day the suite runs. Tests that need another instant pass --time themselves."""
    saved = os.environ.get("PUBLISHER_TIME")
    os.environ["PUBLISHER_TIME"] = NOW.isoformat()
    yield NOW
    if saved is None:
        os.environ.pop("PUBLISHER_TIME", None)
    else:
        os.environ["PUBLISHER_TIME"] = saved


@pytest.fixture
def seed_bytes() -> bytes:
    if not SEED.exists():
        pytest.skip(f"{SEED} is absent (the shared seed folder is not beside the repo)")
    return SEED.read_bytes()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database on each backend; PostgreSQL skips when no server runs."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'publisher.db'}"
    if not PG_URL:
        pytest.skip("PostgreSQL leg skipped: PUBLISHER_TEST_PG_URL is not set "
                    "(.ci/services.sh starts a server and sets it)")
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS schema_version")
    engine.dispose()
    return PG_URL


@pytest.fixture
def instance(tmp_path, database_url, monkeypatch) -> Path:
    """An instance made by `publisher init`, its store on the backend under test."""
    folder = tmp_path / "site"
    init_instance(folder)
    monkeypatch.setenv("PUBLISHER_STORE__URL", database_url)
    return folder


@pytest.fixture
def settings(instance):
    return load_settings(instance)


@pytest.fixture
def store(settings):
    store = open_store(settings.database_url)
    yield store
    store.close()


@pytest.fixture
def run_cli():
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr).

    Each call's clock starts a second after the one before (NOW, NOW + 1 s, ...), as if
    a person typed the commands one after another: a retry queued by one call is due in
    the next. `env` may give PUBLISHER_TIME itself."""
    runner = CliRunner()
    calls = itertools.count()

    def invoke(*args: str, env: dict | None = None):
        start = NOW + timedelta(seconds=next(calls))
        env = {"PUBLISHER_TIME": start.isoformat(), **(env or {})}
        return runner.invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)

    return invoke


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingHandler:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []  # (mail from, rcpt to, data)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.original_content or envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1; `.handler.messages` holds what arrived."""
    from types import SimpleNamespace

    from aiosmtpd.controller import Controller

    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield SimpleNamespace(host="127.0.0.1", port=port, handler=handler,
                          url=f"smtp://127.0.0.1:{port}")
    controller.stop()


class UpstreamServer:
    """Routes for a real HTTP server on 127.0.0.1: path -> (status, headers, body).

    A route with an ETag or Last-Modified answers a matching conditional GET with 304,
    as a well-behaved feed host does; `requests` records (path, headers) of every GET.
    """

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}"
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.delay = 0.0

    def serve(self, path: str, body: bytes | str, status: int = 200,
              content_type: str = "application/rss+xml", **headers: str) -> str:
        data = body.encode() if isinstance(body, str) else body
        names = {"etag": "ETag", "last_modified": "Last-Modified"}
        self.routes[path] = (status, {"Content-Type": content_type,
                                      **{names.get(k, k): v for k, v in headers.items()}},
                             data)
        return self.url + path


@pytest.fixture
def upstream_server():
    """A real HTTP server (http.server, threaded) serving feeds from UpstreamServer.routes."""
    import contextlib
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    port = free_port()
    server_state = UpstreamServer(port)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            server_state.requests.append((self.path, dict(self.headers)))
            time.sleep(server_state.delay)
            status, headers, body = server_state.routes.get(
                self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
            etag, modified = headers.get("ETag"), headers.get("Last-Modified")
            if status == 200 and ((etag and self.headers.get("If-None-Match") == etag) or (
                    modified and self.headers.get("If-Modified-Since") == modified)):
                status, body = 304, b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # The client may have given up already (a timeout test): nothing to report.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server_state
    httpd.shutdown()
    httpd.server_close()

# The web app's fixtures (site, client) live beside the LiveServer helper.
from tests.console_support import console  # noqa: E402,F401
from tests.daemon_process import daemons  # noqa: E402,F401
from tests.webapp import client, web_settings  # noqa: E402,F401
