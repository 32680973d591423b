"""Real servers for tests, on 127.0.0.1, each on a socket bound here to port 0: the
kernel picks a free port and the server reports it, so no other process can take the
port between choosing it and listening on it (as it could with a "free port" probe)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import uvicorn
from aiosmtpd.controller import Controller

HOST = "127.0.0.1"
PATIENCE_SECONDS = 180  # a bound, not a timing: a shared machine at load 30 took 60+ s


def listening_socket() -> socket.socket:
    """A TCP socket on 127.0.0.1, bound to a port the kernel chose, already listening."""
    return socket.create_server((HOST, 0))


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 where connections are refused: bound (so nothing else can take
    it while the test runs) but never listening."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


def port_reservation() -> socket.socket:
    """A socket holding a port for a server in another process (see reserved_port);
    close it once that server has stopped."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    return sock


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A port for a server in another process, which must be told its port in advance.

    The port is held by a socket bound here with SO_REUSEADDR and never listening, for as
    long as the block runs: the kernel hands it to no one asking for a free port, while a
    server that sets SO_REUSEADDR itself (uvicorn, http.server, prometheus_client) can
    still bind and listen on it (Linux allows that while the holder does not listen)."""
    with port_reservation() as sock:
        yield sock.getsockname()[1]


class SMTPController(Controller):
    """aiosmtpd's threaded Controller on a socket bound to port 0; `.port` is the port."""

    def __init__(self, handler, **kwargs):
        self.sock = listening_socket()
        super().__init__(handler, hostname=HOST, port=self.sock.getsockname()[1], **kwargs)

    def _create_server(self):
        # aiosmtpd binds hostname:port itself; hand it the socket bound here instead.
        return self.loop.create_server(self._factory_invoker, sock=self.sock,
                                       ssl=self.ssl_context)


@contextlib.contextmanager
def smtp_server(handler, **server_kwargs) -> Iterator[SimpleNamespace]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1; server_kwargs go to aiosmtpd
    (tls_context, ssl_context, authenticator, auth_require_tls ...)."""
    controller = SMTPController(handler, **server_kwargs)
    controller.start()
    scheme = "smtps" if server_kwargs.get("ssl_context") else "smtp"
    try:
        yield SimpleNamespace(host=HOST, port=controller.port, handler=handler,
                              url=f"{scheme}://{HOST}:{controller.port}")
    finally:
        controller.stop()


class RecordingHandler:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []  # (mail from, rcpt to, data)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                              envelope.original_content or envelope.content))
        return "250 Message accepted"


class UpstreamServer:
    """Routes for a real HTTP server on 127.0.0.1: path -> (status, headers, body).

    A route with an ETag or Last-Modified answers a matching conditional GET with 304,
    as a well-behaved feed host does; `requests` records (path, headers) of every GET.
    `delay` makes every answer that many seconds late (a slow host, for timeout tests).
    """

    def __init__(self, port: int):
        self.url = f"http://{HOST}:{port}"
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

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        self.requests.append((handler.path, dict(handler.headers)))
        time.sleep(self.delay)  # a slow host, not a wait for something
        status, headers, body = self.routes.get(
            handler.path, (404, {"Content-Type": "text/plain"}, b"not found"))
        etag, modified = headers.get("ETag"), headers.get("Last-Modified")
        if status == 200 and ((etag and handler.headers.get("If-None-Match") == etag) or (
                modified and handler.headers.get("If-Modified-Since") == modified)):
            status, body = 304, b""
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        # The client may have given up already (a timeout test): nothing to report.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.wfile.write(body)


@contextlib.contextmanager
def upstream_host() -> Iterator[UpstreamServer]:
    """A real HTTP server (http.server, threaded) serving UpstreamServer.routes."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state.answer(self)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer((HOST, 0), Handler)
    httpd.daemon_threads = True
    state = UpstreamServer(httpd.server_address[1])
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


class LiveServer:
    """An ASGI app under uvicorn in a thread, on a socket bound to port 0; `.url` is its
    base address."""

    def __init__(self, app):
        self.sock = listening_socket()
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}/"
        config = uvicorn.Config(app, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run,
                                       kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + PATIENCE_SECONDS  # clock-ok: bounds the wait
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():  # clock-ok
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)  # polls `started`; uvicorn offers no event to wait on
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
