"""The JSON API under /api/v1/: every route in the OpenAPI document answered with and
without a token, read-only and revoked tokens, problems, paging, idempotent creates,
per-token rate limits, and the `api-token` commands."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from openapi_spec_validator import validate

from publisher.clock import fixed
from publisher.config import load_settings
from publisher.delivery.memory import MemoryTransport
from publisher.schedule.pipeline import run_once
from publisher.web import create_app
from publisher.web.api.auth import create_token, hash_token
from tests.support import NOW
from tests.support.mail import write_articles
from tests.support.web import TestClient


class Clock:
    def __init__(self):
        self.now = NOW

    def __call__(self):
        return self.now


@pytest.fixture
def api(web_settings, store):
    """The app, a clock, and three tokens: read-write, read-only and revoked."""
    clock = Clock()
    _, write = create_token(store, "cms", False, NOW)
    _, read = create_token(store, "dashboard", True, NOW)
    _, revoked = create_token(store, "old", False, NOW)
    store.api_tokens.revoke("old", NOW)
    with TestClient(create_app(web_settings, store, clock=clock), follow_redirects=False) as client:
        client.clock = clock
        client.tokens = {"write": write, "read": read, "revoked": revoked}
        yield client


def auth(client, which: str = "write") -> dict:
    return {"Authorization": f"Bearer {client.tokens[which]}"}


def seed(settings, store):
    """Articles, a subscriber with a sent digest, and stage runs, for every read to show."""
    write_articles(settings, ("world", "Harbour Reopens"), ("science", "A Comet"))
    sub = store.subscribers.add("ada@example.org", NOW, name="Ada", status="active",
                                frequency="instant", cursor=0)
    run_once(settings, store, MemoryTransport(), fixed(NOW))
    return sub


def is_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


BODIES = {
    "createSubscriber": lambda n: {"email": f"new{n}@example.org", "name": "New Person",
                                   "double_opt_in": False},
    "updateSubscriber": lambda n: {"frequency": "weekly", "sections": ["world"]},
}


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def test_openapi_document_is_valid_and_public(api):
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"].startswith("3.1")
    assert len(list(operations(document))) >= 11


def test_every_documented_route_answers_by_token(api, web_settings, store):
    seed(web_settings, store)
    document = api.get("/api/v1/openapi.json").json()
    article = store.articles.latest(1)[0]
    for n, (path, method, operation) in enumerate(operations(document)):
        target = store.subscribers.add(f"target{n}@example.org", NOW, status="active")
        url = "/api/v1" + path.replace("{id}", str(target.id)).replace("{key}", article.slug)
        body = BODIES.get(operation["operationId"], lambda n: None)(n)
        write = "403" in operation["responses"]
        kwargs = {"json": body} if body is not None else {}

        is_problem(api.request(method, url, **kwargs), 401)
        is_problem(api.request(method, url, headers=auth(api, "revoked"), **kwargs), 401)
        as_reader = api.request(method, url, headers=auth(api, "read"), **kwargs)
        if write:
            is_problem(as_reader, 403)
            assert store.subscribers.by_id(target.id) == target  # nothing changed
        else:
            assert as_reader.status_code == 200, (path, as_reader.text)
        if body is not None:
            body = BODIES[operation["operationId"]](n + 1000)
            kwargs = {"json": body}
        answer = api.request(method, url, headers=auth(api), **kwargs)
        assert str(answer.status_code) in operation["responses"], (path, answer.text)
        assert answer.status_code < 300, (path, method, answer.text)
        assert answer.headers["content-type"] == "application/json"
        answer.json()


def test_subscribers_list_filters_and_keyset_pages(api, store):
    for n in range(7):
        store.subscribers.add(f"p{n}@example.org", NOW + timedelta(minutes=n),
                              status="active" if n % 2 else "pending",
                              sections=("world",) if n < 3 else ())
    seen, after = [], 0
    while after is not None:
        page = api.get(f"/api/v1/subscribers?limit=3&after={after}", headers=auth(api)).json()
        seen += [item["email"] for item in page["items"]]
        after = page["next_after"]
    assert seen == [f"p{n}@example.org" for n in range(7)]
    active = api.get("/api/v1/subscribers?status=active", headers=auth(api)).json()
    assert [item["email"] for item in active["items"]] == ["p1@example.org", "p3@example.org",
                                                           "p5@example.org"]
    science = api.get("/api/v1/subscribers?section=science", headers=auth(api)).json()
    assert [i["email"] for i in science["items"]] == [f"p{n}@example.org" for n in (3, 4, 5, 6)]
    since = (NOW + timedelta(minutes=5)).isoformat()
    late = api.get("/api/v1/subscribers", params={"created_after": since},
                   headers=auth(api)).json()
    assert [i["email"] for i in late["items"]] == ["p5@example.org", "p6@example.org"]
    one = api.get("/api/v1/subscribers?email=P2@Example.org", headers=auth(api)).json()
    assert [i["email"] for i in one["items"]] == ["p2@example.org"]
    is_problem(api.get("/api/v1/subscribers?status=gone", headers=auth(api)), 400)
    is_problem(api.get("/api/v1/subscribers?limit=0", headers=auth(api)), 400)
    is_problem(api.get("/api/v1/subscribers?created_after=yesterday", headers=auth(api)), 400)


def test_create_with_and_without_double_opt_in(api, store):
    pending = api.post("/api/v1/subscribers", headers=auth(api),
                       json={"email": "Ada@Example.org", "name": "Ada", "sections": ["World"]})
    assert pending.status_code == 201
    assert pending.headers["location"] == f"/api/v1/subscribers/{pending.json()['id']}"
    assert (pending.json()["status"], pending.json()["sections"]) == ("pending", ["world"])
    assert [m["kind"] for m in store.api.history(pending.json()["id"], 10)] == ["confirm"]
    active = api.post("/api/v1/subscribers", headers=auth(api),
                      json={"email": "grace@example.org", "double_opt_in": False})
    assert active.json()["status"] == "active" and active.json()["confirmed_at"]
    assert [m["kind"] for m in store.api.history(active.json()["id"], 10)] == ["welcome"]
    quiet = api.post("/api/v1/subscribers", headers=auth(api),
                     json={"email": "ida@example.org", "double_opt_in": False,
                           "welcome": False})
    assert quiet.json()["status"] == "active"
    assert store.api.history(quiet.json()["id"], 10) == []
    taken = is_problem(api.post("/api/v1/subscribers", headers=auth(api),
                                json={"email": "ada@example.org"}), 409)
    assert taken["subscriber_id"] == pending.json()["id"]
    bad = is_problem(api.post("/api/v1/subscribers", headers=auth(api),
                              json={"email": "not an address"}), 422)
    assert "not an address" in bad["detail"] or "@" in bad["detail"]
    is_problem(api.post("/api/v1/subscribers", headers=auth(api),
                        json={"email": "x@example.org", "colour": "red"}), 422)
    is_problem(api.post("/api/v1/subscribers", headers=auth(api), content=b"{nope",
                        ), 415)
    is_problem(api.post("/api/v1/subscribers", headers={**auth(api),
                        "Content-Type": "application/json"}, content=b"{nope"), 400)


def test_idempotency_key_replays_the_first_answer(api, store):
    headers = {**auth(api), "Idempotency-Key": "signup-123"}
    first = api.post("/api/v1/subscribers", headers=headers, json={"email": "a@example.org"})
    again = api.post("/api/v1/subscribers", headers=headers, json={"email": "a@example.org"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert store.subscribers.count_by_status() == {"pending": 1}
    assert len(store.api.history(first.json()["id"], 10)) == 1  # one confirmation
    other = is_problem(api.post("/api/v1/subscribers", headers=headers,
                                json={"email": "b@example.org"}), 422)
    assert "another request body" in other["detail"]
    # Another token's key space is its own.
    mine = api.post("/api/v1/subscribers", json={"email": "c@example.org"},
                    headers={"Authorization": f"Bearer {api.tokens['write']}x",
                             "Idempotency-Key": "signup-123"})
    is_problem(mine, 401)


def test_update_unsubscribe_and_delete_with_their_data(api, web_settings, store):
    sub = seed(web_settings, store)
    changed = api.patch(f"/api/v1/subscribers/{sub.id}", headers=auth(api),
                        json={"name": "Ada Lovelace", "timezone": "europe/london"})
    assert (changed.json()["name"], changed.json()["timezone"]) == \
        ("Ada Lovelace", "Europe/London")
    is_problem(api.patch(f"/api/v1/subscribers/{sub.id}", headers=auth(api),
                         json={"frequency": "hourly"}), 422)
    history = api.get(f"/api/v1/subscribers/{sub.id}/history", headers=auth(api)).json()
    [digest] = history["messages"]
    assert (digest["kind"], digest["state"], digest["articles"]) == ("digest", "sent", 2)
    assert [e["kind"] for e in history["events"]] == ["digest.sent"]
    gone = api.post(f"/api/v1/subscribers/{sub.id}/unsubscribe", headers=auth(api)).json()
    assert gone["status"] == "unsubscribed"
    again = api.post(f"/api/v1/subscribers/{sub.id}/unsubscribe", headers=auth(api))
    assert again.json()["status"] == "unsubscribed"
    deleted = api.delete(f"/api/v1/subscribers/{sub.id}", headers=auth(api)).json()
    assert deleted["deleted"] == {"subscriber": sub.id, "email": "ada@example.org",
                                  "digests": 1, "messages": 1}
    assert store.events.for_subscriber(sub.id) == []
    is_problem(api.get(f"/api/v1/subscribers/{sub.id}", headers=auth(api)), 404)
    is_problem(api.get("/api/v1/subscribers/abc", headers=auth(api)), 404)


def test_articles_status_and_runs(api, web_settings, store):
    seed(web_settings, store)
    page = api.get("/api/v1/articles?limit=1", headers=auth(api, "read")).json()
    # Stored in path order (science/ before world/), listed newest first.
    assert page["items"][0]["title"] == "Harbour Reopens" and page["next_before"]
    rest = api.get(f"/api/v1/articles?before={page['next_before']}",
                   headers=auth(api, "read")).json()
    assert [a["title"] for a in rest["items"]] == ["A Comet"]
    world = api.get("/api/v1/articles?section=world", headers=auth(api, "read")).json()
    assert [a["title"] for a in world["items"]] == ["Harbour Reopens"]
    slug = page["items"][0]["slug"]
    one = api.get(f"/api/v1/articles/{slug}", headers=auth(api, "read")).json()
    assert "Body of Harbour Reopens" in one["body_html"]
    assert one["url"] == f"http://testserver/articles/{slug}.html"
    is_problem(api.get("/api/v1/articles/nothing-here", headers=auth(api, "read")), 404)
    status = api.get("/api/v1/status", headers=auth(api, "read")).json()
    assert status["articles"] == 2 and status["subscribers"]["active"] == 1
    runs = api.get("/api/v1/runs?stage=delivery", headers=auth(api, "read")).json()
    assert [r["stage"] for r in runs["items"]] == ["delivery"] and runs["items"][0]["ok"]


def test_unknown_routes_and_methods_are_problems(api):
    is_problem(api.get("/api/v1/nothing", headers=auth(api)), 404)
    is_problem(api.put("/api/v1/subscribers", headers=auth(api)), 405)


def test_rate_limit_per_token_with_retry_after(instance, monkeypatch, store):
    monkeypatch.setenv("PUBLISHER_WEB__API_PER_MINUTE", "3")
    monkeypatch.setenv("PUBLISHER_SITE__URL", "http://testserver/")
    settings = load_settings(instance)
    _, one = create_token(store, "one", True, NOW)
    _, two = create_token(store, "two", True, NOW)
    with TestClient(create_app(settings, store, clock=fixed(NOW))) as client:
        for _ in range(3):
            assert client.get("/api/v1/status",
                              headers={"Authorization": f"Bearer {one}"}).status_code == 200
        over = client.get("/api/v1/status", headers={"Authorization": f"Bearer {one}"})
        body = is_problem(over, 429)
        assert int(over.headers["retry-after"]) >= 1 and "api_per_minute" in body["detail"]
        # Another token has its own budget.
        assert client.get("/api/v1/status",
                          headers={"Authorization": f"Bearer {two}"}).status_code == 200


def test_api_token_commands(run_cli, instance, store):
    made = run_cli("-C", instance, "api-token", "create", "crm", "--read-only")
    assert made.exit_code == 0
    secret = made.stdout.strip()
    assert secret.startswith("pub_") and len(secret) > 40
    assert "cannot be shown again" in made.stderr
    token = store.api_tokens.by_name("crm")
    assert token.read_only and store.api_tokens.by_hash(hash_token(secret)) == token
    database = instance / "publisher.db"
    if database.exists():  # SQLite: the secret itself is nowhere in the file
        assert secret.encode() not in database.read_bytes()
    listed = run_cli("-C", instance, "api-token", "list")
    assert "crm" in listed.stdout and "read " in listed.stdout
    twice = run_cli("-C", instance, "api-token", "create", "crm")
    assert twice.exit_code == 1 and "exists already" in twice.stderr
    assert run_cli("-C", instance, "api-token", "revoke", "crm").exit_code == 0
    assert store.api_tokens.by_name("crm").revoked_at is not None
    missing = run_cli("-C", instance, "api-token", "revoke", "crm")
    assert missing.exit_code == 1 and "no API token" in missing.stderr
    assert json.loads(json.dumps(run_cli("-C", instance, "api-token", "--help").exit_code)) == 0
