"""Helpers for the console tests: the two operator accounts, a movable clock, logging in
and the CSRF token of a page. (The `console` fixture is in conftest.)"""

from __future__ import annotations

import re
from datetime import datetime

from tests.support.web import TestClient

PASSWORD = "correct horse battery"
OWNER, EDITOR = "owner@example.org", "editor@example.org"


class Clock:
    """A clock the test moves by setting `.now`."""

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


def logged_in(console, email: str = OWNER, password: str = PASSWORD):
    """A second client on the same app, logged in as `email`."""
    client = TestClient(console.app, follow_redirects=False)
    assert login(client, email, password).status_code == 303
    return client
