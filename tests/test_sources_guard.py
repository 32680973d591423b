"""Upstream sources that misbehave: a server that trickles bytes is cut off at the source's
timeout (the whole fetch), the others are stored meanwhile, and redirects and addresses
are held to the source's own host."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import pytest

from publisher.errors import ConfigError
from publisher.ingest.source_http import refused_address
from publisher.ingest.sources import fetch_sources, source_health
from tests.support import NOW
from tests.support.feeds import configure, item, rss

FEED = rss(item("Slow news", guid="slow-1")).encode()


class Trickler:
    """A raw TCP server on 127.0.0.1 that sends its response one byte every `pause`
    seconds: from the status line on (`head`), or after the headers (`body`)."""

    def __init__(self, part: str, pause: float = 0.25):
        self.part, self.pause = part, pause
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/feed.xml"
        self.stop = threading.Event()
        self.server = threading.Thread(target=self.serve, daemon=True)
        self.server.start()

    def serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn: socket.socket) -> None:
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                b"Content-Length: %d\r\n\r\n" % len(FEED))
        with conn:
            conn.recv(65536)
            if self.part == "body":
                conn.sendall(head)
            data = FEED if self.part == "body" else head + FEED
            for index in range(len(data)):
                if self.stop.wait(self.pause):
                    return
                try:
                    conn.sendall(data[index:index + 1])
                except OSError:  # the client gave up, as it should
                    return

    def close(self) -> None:
        self.stop.set()
        self.server.join()  # out of accept() first: closing under it raises EBADF there
        self.listener.close()


@pytest.fixture
def trickler(request):
    server = Trickler(request.param)
    yield server
    server.close()


def in_thread(work):
    """Run `work` in a thread; returns (thread, results list filled when it returns)."""
    results: list = []
    thread = threading.Thread(target=lambda: results.append(work()), daemon=True)
    thread.start()
    return thread, results


@pytest.mark.parametrize("trickler", ["head", "body"], indirect=True)
def test_a_trickling_source_is_cut_off_at_its_timeout(instance, store, upstream_server,
                                                      trickler):
    """One byte every 0.25 s never trips a per-read timeout; the whole fetch's deadline
    ends it, while the healthy source's entries are stored as soon as they arrive."""
    good = upstream_server.serve("/good.xml", rss(item("Good news", guid="good-1")))
    settings = configure(instance, {"url": good, "name": "good"},
                         {"url": trickler.url, "name": "stuck", "timeout": 3})
    thread, results = in_thread(lambda: fetch_sources(settings, store, NOW))
    stored_while_stuck = False
    while thread.is_alive() and not stored_while_stuck:
        stored_while_stuck = store.articles.count() == 1
        time.sleep(0.02)  # polls the store while the pass runs
    thread.join(timeout=60)  # the trickle alone would take over 100 s
    assert not thread.is_alive(), "a trickling source held the pass past its timeout"
    assert stored_while_stuck, "the healthy source waited for the stuck one"
    (report,) = results
    assert (report.fetched, report.failed, report.new) == (1, 1, 1)
    state = store.sources.states()["stuck"]
    assert state.last_error == "timed out after 3s (the whole fetch)"
    assert source_health(settings.sources[1], state) == "failing"


def test_a_redirect_to_another_port_of_the_host_is_refused(instance, store, upstream_server):
    other = Trickler("head", pause=0)  # an internal service on another port
    try:
        url = upstream_server.serve("/feed.xml", "", status=302, Location=other.url)
        settings = configure(instance, {"url": url, "name": "up"})
        assert fetch_sources(settings, store, NOW).failed == 1
        assert store.sources.states()["up"].last_error == (
            f"refused a redirect to {other.url}: not on the source's own host "
            '(follow_redirects = "any" allows it)')
        assert store.articles.count() == 0
    finally:
        other.close()


def test_follow_redirects_any_follows_to_another_port(instance, store, upstream_server):
    other = Trickler("head", pause=0)
    try:
        url = upstream_server.serve("/feed.xml", "", status=301, Location=other.url)
        settings = configure(instance, {"url": url, "name": "up",
                                        "follow_redirects": "any"})
        assert fetch_sources(settings, store, NOW).new == 1
    finally:
        other.close()


def test_a_redirect_on_the_same_host_is_followed(instance, store, upstream_server):
    upstream_server.serve("/new.xml", rss(item("Moved", guid="m")))
    url = upstream_server.serve("/old.xml", "", status=301, Location="/new.xml")
    settings = configure(instance, {"url": url, "name": "up"})
    assert fetch_sources(settings, store, NOW).new == 1


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml"])
def test_a_redirect_off_http_is_refused_even_with_any(instance, store, upstream_server, target):
    url = upstream_server.serve("/feed.xml", "", status=302, Location=target)
    settings = configure(instance, {"url": url, "name": "up", "follow_redirects": "any"})
    assert fetch_sources(settings, store, NOW).failed == 1
    assert store.sources.states()["up"].last_error.startswith(
        f"refused a redirect to {target}: only http and https")


def test_follow_redirects_takes_host_or_any(instance):
    with pytest.raises(ConfigError, match="follow_redirects"):
        configure(instance, {"url": "http://127.0.0.1/f", "name": "x",
                             "follow_redirects": "sometimes"})


@pytest.mark.parametrize(("address", "own_private", "refused"), [
    ("127.0.0.1", False, True),
    ("10.1.2.3", False, True),
    ("192.168.0.5", False, True),
    ("169.254.169.254", False, True),  # cloud metadata
    ("::1", False, True),
    ("fd00::1", False, True),
    ("::ffff:127.0.0.1", False, True),
    ("100.64.0.1", False, True),  # carrier-grade NAT
    ("0.0.0.0", False, True),
    ("93.184.216.34", False, False),
    ("2606:2800:220:1::1", False, False),
    ("127.0.0.1", True, False),  # a source that is itself local may stay local
    ("10.1.2.3", True, False),
])
def test_private_and_loopback_addresses_are_refused_unless_the_source_is_one(
        address, own_private, refused):
    assert refused_address(ipaddress.ip_address(address), own_private) is refused


# Slow: it waits out real timeouts in threads, and under libfaketime (the CI clock guard
# runs the fast tests there) the faked condition-variable waits never time out, so the
# guard's run hung here for pytest-timeout's 300 s. The full suite runs it.
@pytest.mark.slow
def test_a_slow_name_lookup_counts_against_the_timeout(instance, store, monkeypatch):
    """A resolver that hangs (simulated: getaddrinfo sleeps) cannot hold the pass."""
    resolved = threading.Event()

    def slow_getaddrinfo(*args, **kwargs):
        resolved.wait(30)  # released when the test ends
        raise OSError("no answer")

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    settings = configure(instance, {"url": "http://feeds.example/feed.xml", "name": "dns",
                                    "timeout": 1})
    thread, _ = in_thread(lambda: fetch_sources(settings, store, NOW))
    thread.join(timeout=20)
    resolved.set()
    assert not thread.is_alive(), "a hanging name lookup held the pass"
    assert store.sources.states()["dns"].last_error == "timed out after 1s (the whole fetch)"
