"""The proof of work ([web] challenge) in headless Chromium, against `publisher serve`:
the app's own form page (its Content-Security-Policy enforced: the script runs by its
hash, with no violation reported), the published index.html, the keyboard, a form
embedded on another origin as the README shows, and a browser without JavaScript.
Screenshots (light and dark, 375 px and wide) go to tmp_path."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from tests.support.web import Served, Site

pytestmark = pytest.mark.browser
README = Path(__file__).resolve().parent.parent / "README.md"
PLACEHOLDER = "https://news.example.org/"
# Reported on the console by the page itself: a CSP refusal would show up here too.
WATCH_CSP = ("document.addEventListener('securitypolicyviolation', e => console.error("
             "'CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));")


def readme_snippet() -> str:
    """The README's form embedded with the challenge (in the Web section)."""
    section = README.read_text(encoding="utf-8").split("- **A proof of work**", 1)[1]
    return re.search(r"```html\n(.*?)```", section, re.S)[1].replace("\n  ", "\n")


def embed_page(served_url: str) -> str:
    # The README's fetch handler, with the form that loads the challenge script.
    handler = re.search(r"<script>\n(.*?)</script>", README.read_text(encoding="utf-8")
                        .split("## Embedding the form", 1)[1], re.S)[1]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Our site</title>"
            "</head><body><h1>Our site</h1>"
            + readme_snippet().replace(PLACEHOLDER, served_url)
            + "<script>" + handler.replace(PLACEHOLDER, served_url) + "</script>"
            + "</body></html>")


@pytest.fixture
def served(tmp_path):
    instance = tmp_path / "site"
    init_instance(instance)
    (instance / "articles" / "world").mkdir()
    (instance / "articles" / "world" / "harbour.md").write_text(
        "---\ntitle: The Harbour Reopens\n---\nBoats are back.\n")
    other = Site()
    env = {"PUBLISHER_WEB__CHALLENGE": "true", "PUBLISHER_STORE__URL": "",
           "PUBLISHER_WEB__SUBSCRIBE_PER_MINUTE": "50",
           "PUBLISHER_WEB__ALLOWED_ORIGINS": other.origin}
    try:
        with Served(instance, env=env, before=["run"]) as running:
            other.html = embed_page(running.url)
            store = open_store(load_settings(instance, environ={}).database_url)
            try:
                yield running, store, other
            finally:
                store.close()
    finally:
        other.close()


class Watched:
    """Pages whose console errors, page errors and CSP violations are collected."""

    def __init__(self, browser):
        self.browser, self.errors = browser, []

    def page(self, width: int = 1000, scheme: str = "light", javascript: bool = True):
        context = self.browser.new_context(viewport={"width": width, "height": 900},
                                           color_scheme=scheme,
                                           java_script_enabled=javascript)
        context.add_init_script(WATCH_CSP)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page


def verified(page, form) -> dict:
    """Wait for the form's answer; returns it decoded."""
    form.locator('[data-challenge-status][data-state="done"]').wait_for(timeout=30_000)
    value = form.locator('input[name="altcha"]').input_value()
    return json.loads(base64.b64decode(value))


def test_the_page_solves_the_challenge_and_subscribes(chromium, served, tmp_path):
    running, store, other = served
    watched = Watched(chromium)

    # 1. The app's own page, CSP enforced: focusing the form starts the work.
    for width, scheme in ((1000, "light"), (375, "dark"), (375, "light"), (1000, "dark")):
        page = watched.page(width, scheme)
        page.goto(running.url + "subscribe")
        form = page.locator("form[data-challenge]")
        form.locator('input[name="email"]').focus()
        answer = verified(page, form)
        assert answer["algorithm"] == "SHA-256" and 0 <= answer["number"] <= 50_000
        print(f"solved {answer['number']:,} hashes in {answer['took']} ms")
        assert "Verified" in form.locator("[data-challenge-status]").inner_text()
        page.screenshot(path=str(tmp_path / f"form-{scheme}-{width}.png"), full_page=True)
        page.context.close()

    # 2. Sent at once with the mouse: the submit waits for the answer, then goes.
    page = watched.page()
    page.goto(running.url + "subscribe")
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_text("Check your inbox").wait_for(timeout=30_000)
    assert store.subscribers.by_email("ada@example.org").status == "pending"

    # 3. With the keyboard only: Tab to the field, type, Enter.
    page.goto(running.url + "subscribe")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.name") == "email":
            break
    page.keyboard.type("grace@example.org")
    page.keyboard.press("Enter")
    page.get_by_text("Check your inbox").wait_for(timeout=30_000)
    assert store.subscribers.by_email("grace@example.org").status == "pending"

    # 4. The published index.html (the script loaded as a file).
    for width, scheme in ((375, "dark"), (1000, "light")):
        page.goto(running.url)
        page.set_viewport_size({"width": width, "height": 900})
        page.emulate_media(color_scheme=scheme)
        form = page.locator("form[data-challenge]")
        form.locator('input[name="email"]').focus()
        verified(page, form)
        form.screenshot(path=str(tmp_path / f"index-form-{scheme}-{width}.png"))
    form.locator('input[name="email"]').fill("alan@example.org")
    form.locator('button[type="submit"]').click()
    page.get_by_text("Check your inbox").wait_for(timeout=30_000)
    assert store.subscribers.by_email("alan@example.org").status == "pending"
    page.context.close()

    # 5. Embedded on another origin with the README's fetch handler: twice, since an
    # answer is good once and the script solves a new one for the second send.
    page = watched.page()
    page.goto(other.url)
    signup = page.locator("#signup")
    for n, email in enumerate(("edsger@example.org", "barbara@example.org")):
        signup.locator('input[name="email"]').fill(email)
        signup.locator('button[type="submit"]').click()
        signup.locator("output").filter(has_text=email).wait_for(timeout=30_000)
        assert "confirmation link" in signup.locator("output").inner_text(), n
        assert store.subscribers.by_email(email).status == "pending"
    page.screenshot(path=str(tmp_path / "embedded.png"), full_page=True)
    page.context.close()

    assert not watched.errors, watched.errors  # no CSP violation, no script error

    # 6. Without JavaScript: the form says it needs it, and a post is refused.
    page = watched.page(375, "light", javascript=False)
    page.goto(running.url + "subscribe")
    notice = page.locator("noscript .alert")  # (Playwright's text search skips noscript)
    assert notice.is_visible() and "needs JavaScript" in notice.text_content()
    page.screenshot(path=str(tmp_path / "form-no-script-375.png"), full_page=True)
    page.get_by_label("Email address").fill("eve@example.org")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Subscribe").click()
    assert navigation.value.status == 400
    assert page.locator(".alert[role=alert]").inner_text().startswith(
        "This form needs JavaScript")
    assert store.subscribers.by_email("eve@example.org") is None
    page.screenshot(path=str(tmp_path / "refused-no-script-375.png"), full_page=True)
    page.context.close()
