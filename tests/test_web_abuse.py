"""Subscription bombing: forwarded addresses trusted only from configured proxies, IPv6
clients counted by /64, global and per-domain caps on confirmation mails, and pending
subscribers that expire."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import httpx
import pytest
from starlette.requests import Request

from publisher.clock import fixed
from publisher.ops.metrics import CONFIRMATIONS_REFUSED
from publisher.subscribers.rules import expire_pending
from publisher.web import create_app
from publisher.web.guard import RateLimiter, client_key
from tests.support import NOW
from tests.support.web import Served, TestClient, subscribe


def post_from(url: str, n: int, forwarded: str) -> int:
    return httpx.post(url + "subscribe",
                      data={"email": f"bomb{n}@example.org", "frequency": "daily"},
                      headers={"X-Forwarded-For": forwarded}, timeout=10).status_code


@pytest.mark.slow  # a `publisher serve` process
@pytest.mark.parametrize(("trusted", "expected"), [
    ("", [200, 200, 200, 429, 429]),  # the default: X-Forwarded-For is the client's word
    ("127.0.0.1", [200] * 5),          # a proxy on this host: it names each client
])
def test_forwarded_for_counts_only_from_a_trusted_proxy(instance, store, trusted, expected):
    env = {"PUBLISHER_WEB__SUBSCRIBE_PER_MINUTE": "3",
           **({"PUBLISHER_WEB__TRUSTED_PROXIES": trusted} if trusted else {})}
    with Served(instance, env=env) as served:
        codes = [post_from(served.url, n, f"198.51.100.{n}") for n in range(5)]
    assert codes == expected


def request_from(host: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/subscribe", "headers": [],
                    "client": (host, 4242)})


def test_an_ipv6_client_is_one_client_for_its_whole_64():
    assert client_key(request_from("2001:db8:1:2::1")) == \
        client_key(request_from("2001:db8:1:2:ffff:1:2:3")) == "2001:db8:1:2::/64"
    assert client_key(request_from("2001:db8:1:3::1")) != client_key(
        request_from("2001:db8:1:2::1"))
    assert client_key(request_from("192.0.2.7")) == "192.0.2.7"
    assert client_key(request_from("::ffff:192.0.2.7")) == "192.0.2.7"


class Recorder:
    """A confirmation sender that keeps what it was asked to send."""

    def __init__(self):
        self.queued: list[str] = []

    def queue(self, subscriber, now) -> None:
        self.queued.append(subscriber.email)

    async def deliver(self, now) -> None:
        pass


@pytest.fixture
def capped(web_settings, store):
    settings = replace(web_settings, web=replace(web_settings.web, confirmations_per_hour=4,
                                                 confirmations_per_domain_hour=2))
    recorder = Recorder()
    app = create_app(settings, store, clock=fixed(NOW), confirmations=recorder)
    app.state.web.subscribe_limiter = RateLimiter(100)
    with TestClient(app, follow_redirects=False) as client:
        yield client, recorder


def refused(domain: str) -> float:
    return CONFIRMATIONS_REFUSED.labels(cap=domain)._value.get()


def test_confirmations_are_capped_per_domain_and_in_all(capped, store, caplog):
    client, recorder = capped
    before = refused("domain"), refused("all")
    caplog.set_level(logging.WARNING, logger="publisher.web.caps")
    assert [subscribe(client, f"{n}@one.example").status_code for n in range(4)] == \
        [200, 200, 429, 429]
    page = subscribe(client, "9@one.example")
    assert "Too many confirmation messages to one.example addresses" in page.text
    assert store.subscribers.by_email("9@one.example") is None  # refused before storing
    assert [subscribe(client, f"a@{d}.example").status_code
            for d in ("two", "three", "four")] == [200, 200, 429]
    assert "Too many sign-ups this hour" in subscribe(client, "a@five.example").text
    assert recorder.queued == ["0@one.example", "1@one.example", "a@two.example",
                               "a@three.example"]
    assert (refused("domain") - before[0], refused("all") - before[1]) == (3, 2)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # once per cap reached, not once per refusal
    assert "one.example" in warnings[0] and "confirmations_per_domain_hour" in warnings[0]


def test_pending_subscribers_expire_after_pending_days(settings, store):
    days = settings.web.pending_days
    old = store.subscribers.add("old@example.org", NOW - timedelta(days=days, hours=1))
    young = store.subscribers.add("young@example.org", NOW - timedelta(days=days - 1))
    active = store.subscribers.add("on@example.org", NOW - timedelta(days=days * 3),
                                   status="active")
    # Once active, then unsubscribed, then asked again by a stranger: kept (its history).
    back = store.subscribers.add("back@example.org", NOW - timedelta(days=days * 3),
                                 status="active")
    store.subscribers.unsubscribe(back.id, NOW - timedelta(days=days * 2))
    store.subscribers.change(back.id, NOW - timedelta(days=days * 2), status="pending")
    assert expire_pending(settings, store, NOW) == 1
    assert store.subscribers.by_id(old.id) is None
    assert all(store.subscribers.by_id(s.id) for s in (young, active, back))
    assert expire_pending(settings, store, NOW) == 0


def test_a_run_expires_pending_subscribers(instance, store, run_cli):
    store.subscribers.add("old@example.org", NOW - timedelta(days=7300))  # long before any clock
    assert run_cli("run", "-C", instance).exit_code == 0
    assert store.subscribers.by_email("old@example.org") is None
