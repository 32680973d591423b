"""Outgoing webhooks: events recorded with their changes, posted to a real HTTP server on
127.0.0.1, signed (a forged signature is detectable), retried with backoff when the
receiver fails, and never in the way of mail."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from publisher.clock import fixed
from publisher.config import load_settings
from publisher.delivery.memory import MemoryTransport
from publisher.delivery.transport import PERMANENT, Result
from publisher.schedule.pipeline import run_once
from publisher.schedule.status import collect_status, status_lines
from publisher.subscribers.rules import confirm
from publisher.webhooks import (
    FIRST_RETRY,
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    deliver_webhooks,
    sign,
    verify_signature,
)
from tests.support import NOW
from tests.support.daemon import wait_until
from tests.support.mail import write_articles

SECRET = "a-long-shared-secret-for-tests"


class Receiver:
    """A webhook receiver on 127.0.0.1 that records every request; `statuses` scripts
    its answers (then 200)."""

    def __init__(self, statuses=()):
        self.requests: list[tuple[dict, bytes]] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for one in made:
        one.close()


def configure(instance, *urls: str, events: str = ""):
    hooks = "".join(f'\n[[webhooks]]\nurl = "{url}"\nsecret = "{SECRET}"\ntimeout = 5.0\n'
                    + (f"events = {events}\n" if events else "") for url in urls)
    config = instance / "publisher.toml"
    config.write_text(config.read_text() + hooks)
    return load_settings(instance)


def test_events_are_signed_and_delivered(instance, store, receiver):
    hook = receiver()
    settings = configure(instance, hook.url)
    deliver_webhooks(settings, store, NOW)  # first sight: the receiver starts here
    write_articles(settings, ("world", "Harbour Reopens"))
    ada = store.subscribers.add("ada@example.org", NOW, name="Ada", status="pending",
                                frequency="instant", cursor=0)
    confirm(settings, store, ada, NOW)
    bob = store.subscribers.add("bob@example.org", NOW, status="active", frequency="instant",
                                cursor=0)
    # A 5xx to bob's digest marks him bounced ([mail] bounce_after = 1 here).
    settings = replace(settings, mail=replace(settings.mail, bounce_after=1))
    bounce = MemoryTransport(lambda env: Result(PERMANENT, 550, "no such user", bounce=True)
                             if "bob@" in str(env.recipients) else Result("sent", 250, "ok"))
    report = run_once(settings, store, bounce, fixed(NOW))
    store.subscribers.unsubscribe(ada.id, NOW)
    later = deliver_webhooks(settings, store, NOW + timedelta(seconds=1))
    kinds = [event["type"] for event in hook.events()]
    assert "subscriber.confirmed" in kinds and "digest.sent" in kinds
    assert "subscriber.bounced" in kinds and kinds[-1] == "subscriber.unsubscribed"
    assert report.webhooks.sent + later.sent == len(hook.requests) == 4
    sent = next(e for e in hook.events() if e["type"] == "digest.sent")
    assert sent["data"]["subscriber"]["email"] == "ada@example.org"
    assert sent["data"]["digest"]["articles"] == 1
    bounced = next(e for e in hook.events() if e["type"] == "subscriber.bounced")
    assert bounced["data"]["subscriber"] == {"id": bob.id, "email": "bob@example.org",
                                             "name": "", "status": "bounced"}
    for headers, body in hook.requests:
        assert headers["Content-Type"] == "application/json"
        assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body,
                                NOW + timedelta(seconds=1))
        assert headers["Publisher-Event"] == json.loads(body)["type"]
    # Nothing new: nothing posted again.
    deliver_webhooks(settings, store, NOW + timedelta(seconds=2))
    assert len(hook.requests) == 4


def test_a_forged_signature_is_detectable():
    body = b'{"type":"subscriber.confirmed"}'
    header = sign(SECRET, int(NOW.timestamp()), body)
    assert verify_signature(SECRET, header, body, NOW)
    assert not verify_signature("another-secret-of-some-length", header, body, NOW)
    assert not verify_signature(SECRET, header, body.replace(b"confirmed", b"bounced"), NOW)
    assert not verify_signature(SECRET, header.replace("v1=", "v1=0"), body, NOW)
    forged_time = header.replace(f"t={int(NOW.timestamp())}", f"t={int(NOW.timestamp()) + 1}")
    assert not verify_signature(SECRET, forged_time, body, NOW)
    assert not verify_signature(SECRET, header, body, NOW + timedelta(hours=1))  # replayed
    assert not verify_signature(SECRET, "garbage", body, NOW)


def test_a_failing_receiver_is_retried_with_backoff(instance, store, receiver):
    flaky = receiver(statuses=[500, 503])
    settings = configure(instance, flaky.url)
    deliver_webhooks(settings, store, NOW)
    sub = store.subscribers.add("ada@example.org", NOW, status="pending")
    confirm(settings, store, sub, NOW)
    first = deliver_webhooks(settings, store, NOW)
    assert (first.sent, first.retrying) == (0, 1) and len(flaky.requests) == 1
    [row] = store.events.deliveries(flaky.url)
    assert (row["state"], row["attempts"], row["last_code"]) == ("queued", 1, 500)
    assert row["next_attempt_at"] == NOW + FIRST_RETRY
    assert deliver_webhooks(settings, store, NOW + timedelta(seconds=10)).retrying == 0
    assert len(flaky.requests) == 1  # not due yet
    second = deliver_webhooks(settings, store, NOW + FIRST_RETRY)
    assert second.retrying == 1
    [row] = store.events.deliveries(flaky.url)
    assert row["next_attempt_at"] == NOW + FIRST_RETRY + 2 * FIRST_RETRY  # doubled
    third = deliver_webhooks(settings, store, NOW + 3 * FIRST_RETRY)
    assert third.sent == 1 and len(flaky.requests) == 3
    bodies = {body for _, body in flaky.requests}
    assert len({json.loads(b)["id"] for b in bodies}) == 1  # the same event each time
    [row] = store.events.deliveries(flaky.url)
    assert (row["state"], row["attempts"], row["last_code"]) == ("sent", 3, 200)


def test_a_dead_receiver_holds_up_neither_mail_nor_other_receivers(instance, store, receiver,
                                                                   refused_port):
    good = receiver()
    dead = f"http://127.0.0.1:{refused_port}/nobody-listens"
    settings = configure(instance, dead, good.url)
    deliver_webhooks(settings, store, NOW)
    write_articles(settings, ("world", "One"), ("world", "Two"))
    for n in range(3):
        store.subscribers.add(f"p{n}@example.org", NOW, status="active", frequency="instant",
                              cursor=0)
    transport = MemoryTransport()
    report = run_once(settings, store, transport, fixed(NOW))
    assert len(transport.sent) == 3 and report.delivery.sent == 3
    assert report.webhooks.sent == 3 and len(good.requests) == 3
    # The dead one failed once and waits; its other deliveries were not even tried.
    states = [(r["state"], r["attempts"]) for r in store.events.deliveries(dead)]
    assert states == [("queued", 1), ("queued", 0), ("queued", 0)]
    assert "ConnectError" in store.events.deliveries(dead)[0]["last_error"]
    status = collect_status(settings, store, NOW)
    assert status.webhooks == {"queued": 3, "sent": 3, "failed": 0}
    assert "webhooks: 3 queued, 3 sent, 0 failed" in status_lines(status)
    # Taken out of the settings: its waiting deliveries go, so its events can be pruned.
    deliver_webhooks(replace(settings, webhooks=settings.webhooks[1:]), store, NOW)
    assert store.events.deliveries(dead) == [] and len(store.events.deliveries(good.url)) == 3


def test_gives_up_after_max_attempts_and_events_filter(instance, store, receiver):
    hook = receiver(statuses=[500] * MAX_ATTEMPTS)
    settings = configure(instance, hook.url, events='["subscriber.unsubscribed"]')
    deliver_webhooks(settings, store, NOW)
    sub = store.subscribers.add("ada@example.org", NOW, status="active")
    confirm(settings, store, store.subscribers.change(sub.id, NOW, status="pending"), NOW)
    store.subscribers.unsubscribe(sub.id, NOW)
    now = NOW
    for _ in range(MAX_ATTEMPTS):
        report = deliver_webhooks(settings, store, now)
        now += timedelta(hours=7)
    assert report.failed == 1
    assert [e["type"] for e in hook.events()] == ["subscriber.unsubscribed"] * MAX_ATTEMPTS
    [row] = store.events.deliveries(hook.url)
    assert (row["state"], row["attempts"]) == ("failed", MAX_ATTEMPTS)


@pytest.mark.slow
def test_the_daemon_delivers_webhooks(instance, store, receiver, daemons):
    hook = receiver()
    configure(instance, hook.url)
    daemon = daemons(instance)
    daemon.wait_started()
    # The receiver is registered by the daemon's first webhooks pass.
    wait_until(lambda: any(run["stage"] == "webhooks"
                           for run in store.runs.last_of_each_stage()), "a webhooks pass")
    sub = store.subscribers.add("ada@example.org", NOW, status="pending")
    confirm(load_settings(instance), store, sub, NOW)
    wait_until(lambda: hook.requests, "the delivery")
    wait_until(lambda: store.events.deliveries(hook.url)[0]["state"] == "sent", "its record")
    assert daemon.stop() == 0
    assert [e["type"] for e in hook.events()] == ["subscriber.confirmed"]


def test_old_events_are_pruned_unless_a_receiver_waits(instance, store, receiver):
    hook = receiver(statuses=[500] * 3)
    settings = configure(instance, hook.url)
    deliver_webhooks(settings, store, NOW)
    sub = store.subscribers.add("ada@example.org", NOW, status="pending")
    confirm(settings, store, sub, NOW)
    store.subscribers.unsubscribe(sub.id, NOW)
    deliver_webhooks(settings, store, NOW)  # both wait: the receiver failed
    month = NOW + timedelta(days=settings.mail.keep_days + 1)
    assert deliver_webhooks(settings, store, month).retrying == 1  # fails again
    assert len(store.events.for_subscriber(sub.id)) == 2  # kept: the receiver waits
    deliver_webhooks(replace(settings, webhooks=()), store, month)
    assert store.events.for_subscriber(sub.id) == []  # no receiver waits any more
