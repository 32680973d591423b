"""End to end in headless Chromium: subscribe on index.html, confirm from the mail,
change preferences, unsubscribe with the button. Screenshots go to the test's tmp folder.

Runs `publisher serve` as a real process, with [mail] transport smtp pointing at an
aiosmtpd server, and drives Debian's /usr/bin/chromium through Playwright (never
`playwright install`: there is no browser download here).
"""

from __future__ import annotations

import pytest

from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from tests.support.mail import link_in, wait_for_mail
from tests.support.web import Served

pytestmark = pytest.mark.browser


def test_subscribe_confirm_preferences_unsubscribe(chromium, smtp_server, tmp_path):
    # One run, on SQLite: the store's behaviour on PostgreSQL is covered elsewhere.
    instance = tmp_path / "site"
    init_instance(instance)
    (instance / "articles" / "world").mkdir()
    (instance / "articles" / "world" / "harbour.md").write_text(
        "---\ntitle: The Harbour Reopens\n---\nBoats are back.\n")
    (instance / "articles" / "science").mkdir()
    (instance / "articles" / "science" / "comet.md").write_text(
        "---\ntitle: A Comet This Week\n---\nLook west after sunset.\n")
    env = {"PUBLISHER_MAIL__TRANSPORT": "smtp", "PUBLISHER_MAIL__SMTP_URL": smtp_server.url,
           "PUBLISHER_STORE__URL": ""}
    with Served(instance, env=env, before=["run"]) as served:
        index = instance / "feeds" / "index.html"
        assert index.exists(), "publisher run wrote no index.html"
        page = chromium.new_page(viewport={"width": 1000, "height": 900})
        shots = iter(range(1, 100))

        def shot(name: str) -> None:
            page.screenshot(path=str(tmp_path / f"{next(shots):02d}-{name}.png"),
                            full_page=True)

        page.goto(served.url)
        shot("index")
        form = page.locator(f'form[action="{served.url}subscribe"]')
        form.locator('input[name="email"]').fill("ada@example.org")
        form.locator('input[name="name"]').fill("Ada Lovelace")
        form.locator('[name="frequency"]').first.wait_for()
        frequency = form.locator('[name="frequency"]')
        if frequency.first.evaluate("e => e.tagName") == "SELECT":
            frequency.select_option("weekly")
        else:
            form.locator('input[name="frequency"][value="weekly"]').check()
        form.locator('button[type="submit"], input[type="submit"]').first.click()
        page.wait_for_load_state()
        assert "Check your inbox" in page.content()
        shot("subscribed")

        store = open_store(load_settings(instance, environ={}).database_url)
        try:
            pending = store.subscribers.by_email("ada@example.org")
            assert (pending.status, pending.name, pending.frequency) == \
                ("pending", "Ada Lovelace", "weekly")

            _sender, recipients, data = wait_for_mail(smtp_server.handler, 1)
            assert recipients == ["ada@example.org"]
            page.goto(link_in(data, "confirm"))
            assert store.subscribers.by_email("ada@example.org").status == "pending"
            shot("confirm")
            page.get_by_role("button", name="Confirm my subscription").click()
            page.wait_for_load_state()
            assert "You are subscribed" in page.content()
            assert store.subscribers.by_email("ada@example.org").status == "active"
            shot("confirmed")

            page.get_by_role("link", name="Choose sections and delivery time").click()
            page.wait_for_load_state()
            shot("preferences")
            page.get_by_label("Once a day").check()
            page.get_by_label("Science").check()
            page.get_by_label("Time zone").select_option("Europe/Berlin")
            page.get_by_role("button", name="Save preferences").click()
            page.wait_for_load_state()
            assert "Your preferences are saved." in page.content()
            shot("preferences-saved")
            saved = store.subscribers.by_email("ada@example.org")
            assert (saved.frequency, saved.sections, saved.timezone) == \
                ("daily", ("science",), "Europe/Berlin")

            page.get_by_role("button", name="Unsubscribe from").click()
            page.wait_for_load_state()
            assert "You are unsubscribed" in page.content()
            shot("unsubscribed")
            assert store.subscribers.by_email("ada@example.org").status == "unsubscribed"
        finally:
            store.close()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "01-index.png", "02-subscribed.png", "03-confirm.png", "04-confirmed.png",
        "05-preferences.png", "06-preferences-saved.png", "07-unsubscribed.png"]
