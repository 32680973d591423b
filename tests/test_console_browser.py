"""The console end to end in headless Chromium against `publisher serve` (a real
process, mail through aiosmtpd): log in, find a subscriber, open their history, send a
test digest, log out. Screenshots of every console page, light and dark, 375 px and
wide, go to $TMPDIR/publisher-console-shots/ to be looked at."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from publisher.bounces import event_of_message, handle
from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from publisher.web.admin.operators import add_operator
from tests.support import NOW
from tests.support.mail import parse, wait_for_mail
from tests.support.web import PUBLISHER, Served

pytestmark = pytest.mark.browser

SAMPLES = Path(__file__).parent / "bounce_samples"

PASSWORD = "a good long password"
SHOTS = Path(os.environ.get("TMPDIR", "/tmp")) / "publisher-console-shots"
PAGES = [("dashboard", ""), ("subscribers", "subscribers"),
         ("search", "subscribers?q=ada"), ("import", "subscribers/import"),
         ("outbox", "outbox"), ("bounces", "bounces"), ("bounces-hard", "bounces?kind=hard"),
         ("preview-sample", "preview"), ("settings", "settings"),
         ("accounts", "accounts"), ("audit", "audit"), ("password", "password")]


def make_instance(folder: Path, env: dict) -> None:
    init_instance(folder)
    for section, title in [("world", "The Harbour Reopens"), ("science", "A Comet This Week"),
                           ("world", "Bridges and Tunnels"), ("culture", "A Night at the Opera")]:
        (folder / "articles" / section).mkdir(exist_ok=True)
        slug = title.lower().replace(" ", "-")
        (folder / "articles" / section / f"{slug}.md").write_text(
            f"---\ntitle: {title}\n---\nFirst paragraph of {title}.\n\nMore text.\n")
    settings = load_settings(folder, environ=env)
    store = open_store(settings.database_url)
    try:
        add_operator(store, "owner@example.org", "owner", PASSWORD, NOW)
        for n, name in enumerate(["Bob Builder", "Carla Diaz", "Dmitri Ivanov", "Eve Ng"]):
            store.subscribers.add(f"{name.split()[0].lower()}@example.org",
                                  NOW - timedelta(days=10 * n), name=name, status="active",
                                  sections=("world",) if n % 2 else ())
        store.subscribers.add("pending@example.net", NOW, status="pending")
    finally:
        store.close()
    for command in (["run"], ["send", "--now"]):  # digests for everyone so far
        subprocess.run([str(PUBLISHER), "-C", str(folder), *command], env={**os.environ, **env},
                       check=True, capture_output=True)
    store = open_store(settings.database_url)
    try:  # Ada joins after: her next digest holds every article
        store.subscribers.add("ada@example.org", NOW, name="Ada Lovelace", status="active",
                              cursor=0)
        add_bounces(settings, store)
    finally:
        store.close()


def add_bounces(settings, store) -> None:
    """Reports from the sample corpus through the bounces stage, over the last days."""
    for address in ("gone.user@example.net", "annoyed.reader@yahoo.com",
                    "postfach.voll@example.de", "j.doe@contoso.example"):
        store.subscribers.add(address, NOW - timedelta(days=20), status="active")
    for hours, name in enumerate(["postfix-user-unknown.eml", "exim-quota.eml",
                                  "exchange-recipient-not-found.eml",
                                  "arf-yahoo-abuse.eml", "postfix-delayed.eml"]):
        data = (SAMPLES / name).read_bytes()
        handle(settings, store, event_of_message(data, "mail"),
               NOW - timedelta(hours=30 * hours))


def log_in(page, url: str) -> None:
    page.goto(url + "admin/")
    assert "/admin/login" in page.url
    page.get_by_label("Email address").fill("owner@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    assert page.url == url + "admin/", page.url


def test_console_end_to_end(chromium, smtp_server, tmp_path):
    instance = tmp_path / "site"
    env = {"PUBLISHER_MAIL__TRANSPORT": "smtp", "PUBLISHER_MAIL__SMTP_URL": smtp_server.url,
           "PUBLISHER_STORE__URL": ""}
    make_instance(instance, env)
    sent_before = len(smtp_server.handler.messages)
    assert sent_before == 4  # one digest each for Bob, Carla, Dmitri, Eve
    SHOTS.mkdir(parents=True, exist_ok=True)
    with Served(instance, env=env) as served:
        page = chromium.new_page(viewport={"width": 1200, "height": 900})
        log_in(page, served.url)
        assert "Dashboard" in page.content() and "<svg" in page.content()

        # Find a subscriber and open their history.
        page.get_by_role("link", name="Subscribers").first.click()
        page.get_by_label("Search").fill("ada")
        page.get_by_role("button", name="Find").click()
        page.wait_for_load_state()
        page.get_by_role("link", name="ada@example.org").click()
        page.wait_for_load_state()
        assert "Joined the list" in page.content()
        bob = served.url + "admin/subscribers?q=bob"
        page.goto(bob)
        page.get_by_role("link", name="bob@example.org").click()
        page.wait_for_load_state()
        assert "<strong>Digest " in page.content() and "The Harbour Reopens" in page.content()

        # Ada's next digest, and a test of it to me.
        page.goto(served.url + "admin/subscribers?q=ada")
        page.get_by_role("link", name="ada@example.org").click()
        page.get_by_role("link", name="Preview next digest").click()
        page.wait_for_load_state()
        frame = page.frame_locator("iframe.mail")
        assert frame.get_by_text("A Night at the Opera").count() >= 1
        page.get_by_role("button", name="Send a test to me").click()
        page.wait_for_load_state()
        assert "Test sent to owner@example.org" in page.content()
        _sender, recipients, data = wait_for_mail(smtp_server.handler, sent_before + 1)
        message = parse(data)
        assert recipients == ["owner@example.org"]
        assert message["Subject"].startswith("[TEST] ")
        ada_pages = {"subscriber": page.url.rsplit("/preview", 1)[0].split("/admin/")[1],
                     "preview": page.url.split("/admin/")[1]}

        # The bounces: a complaint's raw report as plain text, a bounced person's history.
        page.get_by_role("link", name="Bounces").first.click()
        page.get_by_label("Kind").select_option("complaint")
        page.get_by_role("button", name="Show").click()
        page.wait_for_load_state()
        assert page.locator("td[data-label=Kind]").all_inner_texts() == ["complaint"]
        with page.expect_navigation() as shown:
            page.get_by_role("link", name="raw report").click()
        assert shown.value.headers["content-type"] == "text/plain; charset=utf-8"
        assert "Feedback-Type: abuse" in page.inner_text("body")
        page.goto(served.url + "admin/bounces")
        page.get_by_role("link", name="gone.user@example.net").click()
        page.wait_for_load_state()
        assert "Hard bounce" in page.content()
        ada_pages["bounced-person"] = page.url.split("/admin/")[1]

        shoot_every_page(chromium, served.url, page.context.cookies(), ada_pages)

        page.get_by_role("button", name="Log out").click()
        page.wait_for_load_state()
        assert "/admin/login" in page.url and "You are logged out" in page.content()
        page.goto(served.url + "admin/subscribers")
        assert "/admin/login" in page.url
    shots = sorted(p.name for p in SHOTS.glob("*.png"))
    assert len(shots) == 4 * (len(PAGES) + 5)


def shoot_every_page(chromium, url: str, cookies: list, extra: dict) -> None:
    pages = [*PAGES, *extra.items()]
    for scheme in ("light", "dark"):
        for width in (375, 1200):
            context = chromium.new_context(viewport={"width": width, "height": 800},
                                           color_scheme=scheme)
            context.add_cookies(cookies)
            page = context.new_page()
            for name, path in pages:
                page.goto(url + "admin/" + path)
                assert "/admin/login" not in page.url
                page.screenshot(path=str(SHOTS / f"{name}-{scheme}-{width}.png"),
                                full_page=True)
                if name == "preview":
                    # A page screenshot leaves the sandboxed (out-of-process) frame blank;
                    # the frame's own screenshot shows what it holds.
                    page.frame_locator("iframe.mail").get_by_text("A Night at the Opera") \
                        .first.wait_for()
                    page.locator("iframe.mail").screenshot(
                        path=str(SHOTS / f"preview-frame-{scheme}-{width}.png"))
            context.close()
            context = chromium.new_context(viewport={"width": width, "height": 800},
                                           color_scheme=scheme)
            login = context.new_page()
            login.goto(url + "admin/login")
            login.screenshot(path=str(SHOTS / f"login-{scheme}-{width}.png"), full_page=True)
            context.close()
