"""`publisher status` and the Prometheus metrics, read from a real store."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

import httpx
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.routing import Route

from publisher.clock import fixed
from publisher.config import load_settings
from publisher.ops.metrics import metrics_app, record_message, registry_for, serve_metrics
from publisher.schedule.pipeline import run_once
from publisher.store import Store, make_engine
from publisher.store.schema import outbox
from publisher.web import create_app
from tests.support import NOW
from tests.support.feeds import configure, item, rss
from tests.support.web import TestClient


def queue_messages(store, states: dict[str, int]) -> None:
    """Outbox rows in the given states (the digests stage makes real ones)."""
    rows = [{"kind": "confirm", "recipient": f"{state}{n}@example.org",
             "message_id": f"<{state}{n}@example.org>", "payload": {}, "state": state,
             "attempts": 0, "next_attempt_at": NOW, "created_at": NOW - timedelta(hours=n)}
            for state, count in states.items() for n in range(1, count + 1)]
    with store.writing() as conn:
        conn.execute(insert(outbox), rows)


def populated(instance, store, upstream_server):
    """An instance with articles, subscribers, queued mail and a good and a bad source."""
    (instance / "articles" / "a.txt").write_text("Harbour opens\n\nBody.\n")
    good = upstream_server.serve("/good.xml", rss(item("Upstream story", guid="1")))
    bad = upstream_server.serve("/bad.xml", "gone", status=410, content_type="text/plain")
    settings = configure(instance, {"url": good, "name": "good"},
                         {"url": bad, "name": "bad", "unhealthy_after": 1})
    for n, status in enumerate(["active", "active", "pending", "unsubscribed"]):
        store.subscribers.add(f"reader{n}@example.org", NOW, status=status)
    run_once(settings, store, None, fixed(NOW))
    queue_messages(store, {"queued": 2, "sent": 3, "failed": 1})  # after the pass sends
    return settings


def test_status_reports_every_part(instance, store, upstream_server, run_cli):
    populated(instance, store, upstream_server)

    result = run_cli("-C", instance, "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[2].startswith("articles: 2 (newest stored ")
    assert "subscribers: 1 pending, 2 active, 1 unsubscribed, 0 bounced, 0 complained" in lines
    assert lines[4].startswith("outbox: 2 queued, 0 sending, 0 deferred, 3 sent, 1 failed "
                               "(oldest waiting since 2026-11-24 10:00:00 UTC")
    ingest_line = next(line for line in lines if line.startswith("  ingest "))
    assert "ok" in ingest_line and "new 1" in ingest_line
    bad = next(line for line in lines if line.startswith("  bad "))
    assert "unhealthy" in bad and "1 failure in a row: HTTP 410 Gone" in bad
    good = next(line for line in lines if line.startswith("  good"))
    assert "ok" in good and "1 article" in good and "1 articles" not in good

    data = json.loads(run_cli("-C", instance, "status", "--json").output)
    assert data["articles"] == 2
    assert data["subscribers"] == {"pending": 1, "active": 2, "unsubscribed": 1, "bounced": 0,
                                   "complained": 0}
    assert data["outbox"] == {"queued": 2, "sending": 0, "deferred": 0, "sent": 3, "failed": 1}
    stages = {run["stage"]: run for run in data["stages"]}
    assert set(stages) >= {"ingest", "sources"}
    assert stages["sources"]["ok"] is True and stages["sources"]["summary"]["failed"] == 1
    assert stages["ingest"]["seconds"] >= 0
    sources = {s["name"]: s for s in data["sources"]}
    assert sources["bad"]["health"] == "unhealthy" and sources["bad"]["failures"] == 1
    assert sources["good"] | {"last_ok_at": None, "next_fetch_at": None} == {
        "name": "good", "url": upstream_server.url + "/good.xml", "health": "ok", "failures": 0,
        "last_error": None, "last_ok_at": None, "next_fetch_at": None, "articles": 1}
    assert data["healthy"] is False


def test_status_of_a_fresh_instance(instance, run_cli):
    result = run_cli("-C", instance, "status")
    assert result.exit_code == 0
    assert "articles: 0" in result.output and "last runs: none yet" in result.output
    data = json.loads(run_cli("-C", instance, "status", "--json").output)
    assert data["stages"] == [] and data["sources"] == [] and data["healthy"] is True


def scrape(registry) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry).decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_metrics_show_events_and_store_state(instance, store, upstream_server):
    settings = load_settings(instance)
    registry = registry_for(settings, store)
    before = scrape(registry)
    settings = populated(instance, store, upstream_server)
    record_message("sent", 250)
    record_message("deferred", 421)
    record_message("failed", 550)
    record_message("deferred", None)
    registry = registry_for(settings, store)
    after = scrape(registry)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("publisher_articles_ingested_total", origin="inbox") == 1
    assert grew("publisher_articles_ingested_total", origin="feed") == 1
    assert grew("publisher_source_errors_total", source="bad") == 1
    assert grew("publisher_stage_duration_seconds_count", stage="ingest") == 1
    assert grew("publisher_stage_runs_total", stage="sources", outcome="ok") == 1
    assert grew("publisher_messages_total", outcome="sent", reply_class="2xx") == 1
    assert grew("publisher_messages_total", outcome="deferred", reply_class="4xx") == 1
    assert grew("publisher_messages_total", outcome="deferred", reply_class="none") == 1
    assert grew("publisher_messages_total", outcome="failed", reply_class="5xx") == 1
    assert after[("publisher_outbox_messages", (("state", "queued"),))] == 2
    assert after[("publisher_outbox_depth", ())] == 2
    assert after[("publisher_articles", ())] == 2
    assert after[("publisher_subscribers", (("status", "active"),))] == 2
    assert after[("publisher_source_failures", (("source", "bad"),))] == 1
    assert after[("publisher_store_up", ())] == 1


def test_metrics_over_http_port_and_asgi(instance, store, monkeypatch):
    settings = load_settings(instance)
    # Port 0 (in settings, "off"): the kernel picks a free port and the server reports it.
    server = serve_metrics(replace(settings, daemon=replace(settings.daemon, metrics_port=0)),
                           store)
    try:
        response = httpx.get(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    assert "publisher_outbox_depth 0.0" in response.text
    assert "publisher_stage_duration_seconds" in response.text

    async def get_mounted() -> httpx.Response:
        app = Starlette(routes=[Route("/metrics", metrics_app(settings, store))])
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://publisher") as client:
            return await client.get("/metrics")

    response = asyncio.run(get_mounted())
    assert response.status_code == 200 and "publisher_articles 0.0" in response.text


def test_a_scrape_answers_when_the_store_does_not(tmp_path):
    settings = load_settings(tmp_path, environ={})
    unreachable = Store(make_engine(f"sqlite:///{tmp_path}/no/such/folder/publisher.db"))
    samples = scrape(registry_for(settings, unreachable))
    assert samples[("publisher_store_up", ())] == 0
    assert ("publisher_outbox_depth", ()) not in samples
    assert ("process_cpu_seconds_total", ()) in samples  # the rest is still served


def test_serve_has_metrics_at_slash_metrics(client, web_settings, store, monkeypatch):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "publisher_articles 0.0" in response.text
    assert response.headers["content-type"].startswith("text/plain")

    monkeypatch.setenv("PUBLISHER_WEB__METRICS", "false")
    with TestClient(create_app(load_settings(web_settings.instance), store)) as private:
        assert private.get("/metrics").status_code == 404
