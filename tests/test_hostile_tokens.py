"""Signed link tokens from a stranger: a valid signature over an absurd id is a 400, and
no log line ever prints a token in clear."""

from __future__ import annotations

import logging

import pytest

from publisher import tokens
from publisher.web import create_app
from tests.support import NOW
from tests.support.web import TestClient, path_of

ENDPOINTS = [("GET", "confirm"), ("POST", "confirm"), ("GET", "preferences"),
             ("POST", "preferences"), ("GET", "unsubscribe"), ("POST", "unsubscribe"),
             ("GET", "feed")]
ABSURD_IDS = [10**30, -(10**30), 2**63, -1, 0]


@pytest.fixture
def loose_client(web_settings, store):
    """A client that sees the 500 page instead of the server's exception."""
    with TestClient(create_app(web_settings, store), follow_redirects=False,
                    raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(("method", "purpose"), ENDPOINTS)
@pytest.mark.parametrize("number", ABSURD_IDS)
def test_a_signed_token_with_an_absurd_id_is_a_400(web_settings, store, loose_client, method,
                                                   purpose, number):
    for subscriber_id, version in ((number, 0), (1, number)):
        url = path_of(tokens.link(web_settings, purpose, subscriber_id, version, now=NOW))
        response = loose_client.request(method, url, headers={"Origin": "http://testserver"})
        assert response.status_code == 400, (subscriber_id, version, response.status_code)


def test_verify_refuses_ids_a_database_cannot_hold(web_settings):
    with pytest.raises(tokens.TokenError):
        token = tokens.sign(web_settings, "unsubscribe", 10**30, now=NOW)
        tokens.verify(web_settings, "unsubscribe", token, now=NOW)


def test_the_error_log_never_prints_a_token(web_settings, store, loose_client, caplog, monkeypatch):
    sub = store.subscribers.add("ada@example.org", NOW, status="active")
    token = tokens.sign(web_settings, "unsubscribe", sub.id, sub.token_version, now=NOW)

    def broken(*args):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(type(store.subscribers), "by_id", broken)
    with caplog.at_level(logging.DEBUG):
        response = loose_client.get(f"/unsubscribe/{token}?t={token}")
    assert response.status_code == 500
    logged = "\n".join(record.getMessage() + str(record.exc_info) for record in caplog.records
                       if not record.name.startswith("httpx"))  # the test client's own
    assert "/unsubscribe/" in logged
    assert token not in logged and token.split(".")[-1] not in logged

