"""The console's doors: sessions, CSRF, login limits, roles, revocation (TestClient)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from publisher.store.schema import admin_sessions
from publisher.web import admin
from publisher.web.admin.auth import COOKIE
from tests.support import NOW
from tests.support.console import (
    EDITOR,
    OWNER,
    PASSWORD,
    csrf_of,
    logged_in,
    login,
)
from tests.support.mail import add_subscriber
from tests.support.web import TestClient


def admin_urls(method: str) -> list[str]:
    """Every console route for `method`, its parameters filled in."""
    paths = []
    for route in admin.routes():
        if method in route.methods and route.path not in ("/admin/login", "/admin"):
            paths.append(route.path.replace("{subscriber_id}", "1")
                         .replace("{account_id}", "1").replace("{event_id}", "1")
                         .replace("{rest:path}", "no-such"))
    return paths


def test_nothing_under_admin_answers_without_a_session(console):
    sub = add_subscriber(console.store, "ada@example.org", NOW)
    assert sub.id == 1
    gets, posts = admin_urls("GET"), admin_urls("POST")
    assert len(gets) >= 16 and len(posts) >= 14
    for path in [*gets, "/admin/subscribers?q=a&status=active"]:
        answer = console.client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/admin/login?next=%2Fadmin"), path
    for path in posts:
        answer = console.client.post(path, data={"csrf": "x", "email": "eve@example.org",
                                                 "confirm_email": "ada@example.org"})
        assert answer.status_code == 403, path
    assert console.store.subscribers.by_id(1).status == "active"
    assert console.store.subscribers.by_email("eve@example.org") is None


def test_login_sets_a_hashed_session_cookie(console):
    answer = login(console.client)
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin/" in cookie
    assert "Secure" not in cookie  # the site is http://testserver/
    token = console.client.cookies[COOKIE]
    with console.store.reading() as conn:
        stored = list(conn.execute(select(admin_sessions.c.token_hash)).scalars())
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]  # never the token itself
    page = console.client.get("/admin/")
    assert page.status_code == 200 and OWNER in page.text
    assert "<svg" in page.text and "<script" not in page.text
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    bare = console.client.get("/admin")
    assert bare.status_code == 308 and bare.headers["location"] == "/admin/"
    assert console.client.get("/admin/no-such-page").status_code == 404


def test_secure_cookie_when_the_site_is_https(console):
    from dataclasses import replace

    from publisher.web import create_app

    settings = replace(console.settings, site=replace(console.settings.site,
                                                      url="https://testserver/"))
    with TestClient(create_app(settings, console.store, clock=console.clock),
                    base_url="https://testserver", follow_redirects=False) as client:
        answer = login(client)
    assert answer.status_code == 303 and "Secure" in answer.headers["set-cookie"]


def test_wrong_password_and_unknown_address_get_the_same_answer(console):
    wrong = login(console.client, OWNER, "not the password at all")
    unknown = login(console.client, "nobody@example.org", PASSWORD)
    assert wrong.status_code == unknown.status_code == 400
    assert "do not match an account" in wrong.text and "do not match an account" in unknown.text
    assert COOKIE not in console.client.cookies


def test_logins_are_limited_per_account(console):
    for _ in range(10):
        assert login(console.client, OWNER, "wrong password 123").status_code == 400
    # The right password does not help while the account is locked...
    assert login(console.client, OWNER, PASSWORD).status_code == 429
    # ... from another client either.
    other = logged_in_or_status(console, OWNER)
    assert other == 429
    # Fifteen minutes later (the app's clock), the failures have aged out.
    console.clock.now = NOW + timedelta(minutes=15, seconds=1)
    assert login(console.client, OWNER, PASSWORD).status_code == 303


def logged_in_or_status(console, email):
    client = TestClient(console.app, follow_redirects=False,
                        client=("203.0.113.9", 5000))
    return login(client, email).status_code


def test_logins_are_limited_per_client(console):
    for n in range(10):
        assert login(console.client, f"guess{n}@example.org", "whatever it is").status_code \
            == 400
    assert login(console.client, EDITOR, PASSWORD).status_code == 429
    # Another client may still log in to the same account.
    assert logged_in_or_status(console, EDITOR) == 303


def test_csrf_token_is_required_and_checked(console):
    sub = add_subscriber(console.store, "ada@example.org", NOW)
    login(console.client)
    page = console.client.get(f"/admin/subscribers/{sub.id}")
    token = csrf_of(page.text)
    url = f"/admin/subscribers/{sub.id}/unsubscribe"
    assert console.client.post(url, data={}).status_code == 403
    assert console.client.post(url, data={"csrf": "0" * 64}).status_code == 403
    # Another session's token is not this session's.
    other = logged_in(console, OWNER)
    other_token = csrf_of(other.get(f"/admin/subscribers/{sub.id}").text)
    assert other_token != token
    assert console.client.post(url, data={"csrf": other_token}).status_code == 403
    assert console.store.subscribers.by_id(sub.id).status == "active"
    done = console.client.post(url, data={"csrf": token})
    assert done.status_code == 303
    assert console.store.subscribers.by_id(sub.id).status == "unsubscribed"
    entry = console.store.accounts.audit_page(None, 1)[0]
    assert (entry.actor, entry.action, entry.target, entry.at) == \
        (OWNER, "subscriber.unsubscribe", f"subscriber {sub.id}", NOW)


def test_login_form_needs_its_token_and_this_origin(console):
    answer = console.client.post("/admin/login", data={"email": OWNER, "password": PASSWORD})
    assert answer.status_code == 400 and COOKIE not in console.client.cookies
    page = console.client.get("/admin/login")
    token = page.text.split('name="form_token" value="')[1].split('"')[0]
    cross = console.client.post("/admin/login", headers={"Origin": "https://evil.example"},
                                data={"email": OWNER, "password": PASSWORD,
                                      "form_token": token})
    assert cross.status_code == 403


def test_logout_revokes_the_session(console):
    login(console.client)
    token = console.client.cookies[COOKIE]
    csrf = csrf_of(console.client.get("/admin/").text)
    assert console.client.post("/admin/logout", data={"csrf": csrf}).status_code == 303
    console.client.cookies.set(COOKIE, token, path="/admin/")  # replaying the old cookie
    assert console.client.get("/admin/").status_code == 303
    assert console.client.post("/admin/outbox/retry", data={"csrf": csrf}).status_code == 403


def test_sessions_expire_on_the_apps_clock(console):
    login(console.client)
    console.clock.now = NOW + timedelta(hours=11, minutes=59)
    assert console.client.get("/admin/").status_code == 200
    console.clock.now = NOW + timedelta(hours=12)
    assert console.client.get("/admin/").status_code == 303


def test_a_password_change_ends_every_session_of_the_account(console):
    first, second = logged_in(console, OWNER), logged_in(console, OWNER)
    editor = logged_in(console, EDITOR)
    csrf = csrf_of(first.get("/admin/password").text)
    short = first.post("/admin/password", data={"csrf": csrf, "current": PASSWORD,
                                                "password": "short", "again": "short"})
    assert short.status_code == 400 and "too short" in short.text
    new = "a much longer new password"
    done = first.post("/admin/password", data={"csrf": csrf, "current": PASSWORD,
                                               "password": new, "again": new})
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/login")
    assert first.get("/admin/").status_code == 303
    assert second.get("/admin/").status_code == 303
    assert editor.get("/admin/").status_code == 200  # other accounts keep theirs
    assert login(console.client, OWNER, PASSWORD).status_code == 400
    assert login(console.client, OWNER, new).status_code == 303


@pytest.mark.parametrize("path", ["/admin/accounts", "/admin/settings", "/admin/audit"])
def test_an_editor_cannot_reach_accounts_or_settings(console, path):
    editor = logged_in(console, EDITOR)
    assert editor.get(path).status_code == 403
    assert editor.get("/admin/subscribers").status_code == 200
    page = editor.get("/admin/")
    assert 'href="/admin/accounts"' not in page.text
    csrf = csrf_of(page.text)
    added = editor.post("/admin/accounts/add", data={
        "csrf": csrf, "email": "mallory@example.org", "role": "owner",
        "password": "mallory's password"})
    assert added.status_code == 403
    assert console.store.accounts.by_email("mallory@example.org") is None


def test_owner_manages_accounts(console):
    login(console.client)
    csrf = csrf_of(console.client.get("/admin/accounts").text)
    added = console.client.post("/admin/accounts/add", data={
        "csrf": csrf, "email": "New@Example.org", "role": "editor",
        "password": "their own password"})
    assert added.status_code == 303
    account = console.store.accounts.by_email("new@example.org")
    assert account.role == "editor" and "argon2id" in account.password_hash
    newcomer = logged_in(console, "new@example.org", "their own password")
    console.client.post(f"/admin/accounts/{account.id}/remove", data={"csrf": csrf})
    assert console.store.accounts.by_email("new@example.org") is None
    assert newcomer.get("/admin/").status_code == 303  # removed: their session is gone
    owner = console.store.accounts.by_email(OWNER)
    refused = console.client.post(f"/admin/accounts/{owner.id}/remove", data={"csrf": csrf})
    assert "last owner" in refused.headers["location"].replace("+", " ")
    actions = [e.action for e in console.store.accounts.audit_page(None, 10)]
    assert actions[:3] == ["account.remove", "login", "account.add"]


def test_next_never_leaves_the_console(console):
    page = console.client.get("/admin/login?next=https://evil.example/")
    token = page.text.split('name="form_token" value="')[1].split('"')[0]
    for wanted in ("https://evil.example/", "//evil.example/admin/", "/subscribe"):
        answer = console.client.post("/admin/login", data={
            "email": OWNER, "password": PASSWORD, "form_token": token, "next": wanted})
        assert answer.headers["location"] == "/admin/"


def test_passwords_are_hashed_at_rfc_9106_parameters(store):
    """The `console` fixture hashes at the cheapest parameters; the program itself uses
    RFC 9106's second recommended profile (argon2-cffi's default)."""
    from argon2 import extract_parameters, profiles

    from publisher.web.admin.operators import add_operator

    account = add_operator(store, "new@example.org", "editor", PASSWORD, NOW)
    used, wanted = extract_parameters(account.password_hash), profiles.RFC_9106_LOW_MEMORY
    assert (used.type, used.time_cost, used.memory_cost, used.parallelism) == \
        (wanted.type, wanted.time_cost, wanted.memory_cost, wanted.parallelism)
