"""Embedding the subscribe form: [web] allowed_origins lets the site's other origins post
to /subscribe (form or JSON, with CORS), others still get 403, and the same per-client
and per-address limits hold whatever the origin."""

from __future__ import annotations

import pytest

from publisher.clock import fixed
from publisher.config import load_settings
from publisher.errors import ConfigError
from publisher.web import create_app
from publisher.web.guard import RateLimiter
from tests.support import NOW
from tests.support.web import TestClient

ALLOWED = "https://www.example.org"
REFUSED = "https://evil.example.net"


@pytest.fixture
def embed(instance, monkeypatch, store):
    monkeypatch.setenv("PUBLISHER_SITE__URL", "http://testserver/")
    monkeypatch.setenv("PUBLISHER_WEB__ALLOWED_ORIGINS", f"{ALLOWED}, https://shop.example.org")
    monkeypatch.setenv("PUBLISHER_WEB__SUBSCRIBE_PER_MINUTE", "3")
    (instance / "articles" / "world").mkdir()  # an inbox folder: a section that exists
    with TestClient(create_app(load_settings(instance), store, clock=fixed(NOW)),
                    follow_redirects=False) as client:
        yield client


def preflight(client, origin: str):
    return client.options("/subscribe", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})


def test_preflight_from_allowed_and_refused_origins(embed):
    allowed = preflight(embed, ALLOWED)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "content-type" in allowed.headers["access-control-allow-headers"].lower()
    refused = preflight(embed, REFUSED)
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers


def test_form_post_from_allowed_and_refused_origins(embed, store):
    ok = embed.post("/subscribe", data={"email": "ada@example.org"},
                    headers={"Origin": ALLOWED})
    assert ok.status_code == 200 and "Check your inbox" in ok.text
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert store.subscribers.by_email("ada@example.org").status == "pending"
    no = embed.post("/subscribe", data={"email": "eve@example.org"},
                    headers={"Origin": REFUSED})
    assert no.status_code == 403 and "access-control-allow-origin" not in no.headers
    assert store.subscribers.by_email("eve@example.org") is None
    by_referer = embed.post("/subscribe", data={"email": "bob@example.org"},
                            headers={"Referer": ALLOWED + "/about/"})
    assert by_referer.status_code == 200


def test_json_post_gets_json_answers(embed, store):
    ok = embed.post("/subscribe", json={"email": "Ada@Example.org", "name": "Ada",
                                        "sections": ["World"]}, headers={"Origin": ALLOWED})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
    assert "ada@example.org" in ok.json()["message"]
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert store.subscribers.by_email("ada@example.org").sections == ("world",)
    bad = embed.post("/subscribe", json={"email": "nope"}, headers={"Origin": ALLOWED})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["detail"]
    refused = embed.post("/subscribe", json={"email": "eve@example.org"},
                         headers={"Origin": REFUSED})
    assert refused.status_code == 403 and refused.json()["status"] == 403


def test_limits_are_the_same_whatever_the_origin(embed, store):
    origins = [ALLOWED, "http://testserver", "https://shop.example.org"]
    for n, origin in enumerate(origins):
        assert embed.post("/subscribe", data={"email": f"p{n}@example.org"},
                          headers={"Origin": origin}).status_code == 200
    over = embed.post("/subscribe", json={"email": "p9@example.org"},
                      headers={"Origin": ALLOWED})
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
    # Per address: at most three confirmations an hour, from any mix of origins.
    embed.app.state.web.subscribe_limiter = RateLimiter(100)
    for origin in origins * 2:
        embed.post("/subscribe", data={"email": "victim@example.org"},
                   headers={"Origin": origin})
    victim = store.subscribers.by_email("victim@example.org")
    assert len(store.api.history(victim.id, 20)) == 3


def test_allowed_origins_are_checked_at_load(instance, monkeypatch):
    monkeypatch.setenv("PUBLISHER_WEB__ALLOWED_ORIGINS", "https://www.example.org/signup")
    with pytest.raises(ConfigError, match=r"web\.allowed_origins"):
        load_settings(instance)
