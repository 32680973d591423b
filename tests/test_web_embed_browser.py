"""The README's embeddable form, driven in headless Chromium: a page on a second origin
(another 127.0.0.1 port) posts to `publisher serve`, as a plain form and with fetch; an
origin not in [web] allowed_origins is refused both ways. Screenshots go to tmp_path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from tests.support.servers import PATIENCE_SECONDS
from tests.support.web import Served, Site

pytestmark = pytest.mark.browser
README = Path(__file__).resolve().parent.parent / "README.md"
PLACEHOLDER = "https://news.example.org/"


def readme_snippets() -> list[str]:
    """The HTML blocks of the README's "Embedding the form" section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Embedding the form", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```html\n(.*?)```", section, re.S)


def page_html(served_url: str) -> str:
    snippets = [s.replace(PLACEHOLDER, served_url) for s in readme_snippets()]
    assert len(snippets) == 2, "the README's two snippets: a form, and fetch"
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width'><title>Our site</title>"
            "<style>body{font-family:sans-serif;margin:2rem}form{margin:1rem 0}</style>"
            "</head><body><h1>Our site</h1>" + "".join(snippets) + "</body></html>")


@pytest.fixture
def sites():
    made = [Site(), Site()]
    yield made
    for site in made:
        site.close()


def test_embedded_form_from_another_origin(chromium, sites, tmp_path):
    allowed, refused = sites
    instance = tmp_path / "site"
    init_instance(instance)
    env = {"PUBLISHER_WEB__ALLOWED_ORIGINS": allowed.origin, "PUBLISHER_STORE__URL": ""}
    with Served(instance, env=env) as served:
        allowed.html = refused.html = page_html(served.url)
        store = open_store(load_settings(instance, environ={}).database_url)
        try:
            drive(chromium, served, allowed, refused, store, tmp_path)
        finally:
            store.close()


def drive(browser, served, allowed, refused, store, tmp_path):
    errors: list[str] = []
    for width, scheme in ((1000, "light"), (375, "dark")):
        page = browser.new_page(viewport={"width": width, "height": 800},
                                color_scheme=scheme)
        page.on("console", lambda message: errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(allowed.url)
        page.screenshot(path=str(tmp_path / f"embed-{scheme}-{width}.png"), full_page=True)
        page.close()

    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.on("console", lambda message: errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))

    # 1. The plain form, from the allowed origin: the browser lands on our answer page.
    page.goto(allowed.url)
    plain = page.locator(f'form[action="{served.url}subscribe"]')
    plain.locator('input[name="email"]').fill("ada@example.org")
    plain.locator('input[name="name"]').fill("Ada Lovelace")
    plain.locator('select[name="frequency"]').select_option("weekly")
    plain.locator('button[type="submit"]').click()
    page.wait_for_load_state()
    assert page.url == served.url + "subscribe" and "Check your inbox" in page.content()
    page.screenshot(path=str(tmp_path / "embed-answer.png"), full_page=True)
    ada = store.subscribers.by_email("ada@example.org")
    assert (ada.status, ada.name, ada.frequency) == ("pending", "Ada Lovelace", "weekly")

    # 2. fetch from the allowed origin: the answer shows on the site's own page.
    page.goto(allowed.url)
    signup = page.locator("#signup")
    signup.locator('input[name="email"]').fill("grace@example.org")
    signup.locator('button[type="submit"]').click()
    output = signup.locator("output")
    output.filter(has_text="grace@example.org").wait_for(timeout=10_000)
    assert "confirmation link" in output.inner_text() and page.url == allowed.url
    assert store.subscribers.by_email("grace@example.org").status == "pending"
    signup.locator('input[name="email"]').fill("not-an-address@")
    page.evaluate("document.querySelector('#signup input').type = 'text'")
    signup.locator('button[type="submit"]').click()
    output.filter(has_not_text="grace@example.org").wait_for(timeout=10_000)
    assert "not-an-address@" not in {s.email for s in store.subscribers.stream()}
    page.screenshot(path=str(tmp_path / "embed-fetch.png"), full_page=True)

    # 3. The same page on an origin not allowed: fetch is blocked, the form gets 403.
    errors.clear()
    page.goto(refused.url)
    blocked = page.locator("#signup")
    blocked.locator('input[name="email"]').fill("eve@example.org")
    # The browser reports the blocked fetch on the console: wait for that message.
    with page.expect_console_message(
            lambda message: "CORS" in message.text or "Failed to fetch" in message.text,
            timeout=PATIENCE_SECONDS * 1000):
        blocked.locator('button[type="submit"]').click()
    assert any("Failed to fetch" in e or "CORS" in e for e in errors), errors
    assert blocked.locator("output").inner_text() == ""
    refused_form = page.locator(f'form[action="{served.url}subscribe"]')
    refused_form.locator('input[name="email"]').fill("eve@example.org")
    with page.expect_navigation() as navigation:
        refused_form.locator('button[type="submit"]').click()
    response = navigation.value
    assert response.status == 403 and "Form not accepted" in page.content()
    assert store.subscribers.by_email("eve@example.org") is None
    page.screenshot(path=str(tmp_path / "embed-refused.png"), full_page=True)
    page.close()
