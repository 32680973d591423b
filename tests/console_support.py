"""Fixtures for the console tests: an app on a fixed, movable clock, with an owner and
an editor account, mail going to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from types import SimpleNamespace

import pytest

from publisher.web import create_app
from publisher.web.admin.operators import add_operator
from tests.conftest import NOW
from tests.webapp import TestClient

PASSWORD = "correct horse battery"
OWNER, EDITOR = "owner@example.org", "editor@example.org"


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]


def login(client, email: str = OWNER, password: str = PASSWORD):
    page = client.get("/admin/login")
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)[1]
    return client.post("/admin/login", data={"email": email, "password": password,
                                             "form_token": token, "next": "/admin/"})


@pytest.fixture
def console(web_settings, store, smtp_server):
    settings = replace(web_settings, mail=replace(web_settings.mail, transport="smtp",
                                                  smtp_url=smtp_server.url))
    add_operator(store, OWNER, "owner", PASSWORD, NOW)
    add_operator(store, EDITOR, "editor", PASSWORD, NOW)
    clock = Clock(NOW)
    app = create_app(settings, store, clock=clock)
    with TestClient(app, follow_redirects=False) as client:
        yield SimpleNamespace(client=client, clock=clock, store=store, settings=settings,
                              app=app, mail=smtp_server.handler.messages)


def logged_in(console, email: str = OWNER, password: str = PASSWORD):
    """A second client on the same app, logged in as `email`."""
    client = TestClient(console.app, follow_redirects=False)
    assert login(client, email, password).status_code == 303
    return client
