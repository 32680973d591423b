"""The first hour in headless Chromium: the subscribe form near the top of the index and
at the end of article pages, the time zone taken from the browser (by the one script
the CSP allows), a delivery time chosen on the form, the favicon; screenshots in light
and dark, 375 px and wide, in the test's tmp folder."""

from __future__ import annotations

import httpx
import pytest

from publisher import tokens
from publisher.config import load_settings
from publisher.instance import init_instance
from publisher.store import open_store
from tests.support import NOW
from tests.support.web import Served

pytestmark = pytest.mark.browser

SIZES = {"375": {"width": 375, "height": 800}, "wide": {"width": 1200, "height": 900}}


@pytest.fixture
def served(tmp_path, smtp_server):
    instance = tmp_path / "site"
    init_instance(instance)
    for section, slug, title in (("world", "harbour", "The Harbour Reopens"),
                                 ("science", "comet", "A Comet This Week")):
        (instance / "articles" / section).mkdir()
        (instance / "articles" / section / f"{slug}.md").write_text(
            f"---\ntitle: {title}\nimage: https://images.invalid/{slug}.jpg\n---\n"
            "Boats are back in the harbour after the storm.\n\nA second paragraph.\n")
    env = {"PUBLISHER_MAIL__TRANSPORT": "smtp", "PUBLISHER_MAIL__SMTP_URL": smtp_server.url,
           "PUBLISHER_STORE__URL": ""}
    with Served(instance, env=env, before=["run"]) as running:
        yield running, instance


def stored(instance, email):
    store = open_store(load_settings(instance, environ={}).database_url)
    try:
        return store.subscribers.by_email(email)
    finally:
        store.close()


def test_subscribe_page_takes_the_browsers_zone_and_a_delivery_time(chromium, served,
                                                                    tmp_path):
    running, instance = served
    errors = []
    context = chromium.new_context(timezone_id="America/New_York", viewport=SIZES["wide"])
    page = context.new_page()
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.goto(running.url + "subscribe")
    # The script ran: the CSP allowed it by its hash, and it chose the browser's zone.
    assert page.locator("#timezone").input_value() == "America/New_York"
    assert not errors, errors
    page.get_by_label("Email address").fill("ada@example.org")
    page.get_by_label("Delivery time").select_option("18:00")
    page.screenshot(path=str(tmp_path / "subscribe-form.png"), full_page=True)
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert "Check your inbox" in page.content()
    ada = stored(instance, "ada@example.org")
    assert (ada.timezone, ada.deliver_at) == ("America/New_York", "18:00")
    context.close()


def test_without_scripts_the_menu_still_works(chromium, served):
    running, instance = served
    context = chromium.new_context(java_script_enabled=False, timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.goto(running.url + "subscribe")
    assert page.locator("#timezone").input_value() == ""  # the default, until chosen
    page.get_by_label("Email address").fill("bo@example.org")
    page.get_by_label("Time zone").select_option("Europe/Lisbon")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert stored(instance, "bo@example.org").timezone == "Europe/Lisbon"
    context.close()


def test_index_form_near_the_top_and_article_form_at_the_end(chromium, served, tmp_path):
    running, instance = served
    context = chromium.new_context(timezone_id="Asia/Tokyo", viewport=SIZES["wide"])
    page = context.new_page()
    page.goto(running.url)
    form_top = page.locator("section.subscribe").bounding_box()["y"]
    first_article = page.locator("li.teaser").first.bounding_box()["y"]
    assert form_top < first_article < page.locator("section.follow").bounding_box()["y"]
    icon = page.locator('link[rel="icon"]').get_attribute("href")
    assert httpx.get(icon).headers["content-type"].startswith("image/svg+xml")
    page.goto(running.url + "articles/the-harbour-reopens.html")
    body = page.locator("div.body").bounding_box()
    assert page.locator("section.subscribe").bounding_box()["y"] > body["y"] + body["height"]
    assert page.locator("img").get_attribute("alt") == "The Harbour Reopens"
    assert page.locator(".author").count() == 0  # no "By" line: no author known
    page.locator('section.subscribe input[name="email"]').fill("cy@example.org")
    page.locator("section.subscribe button").click()
    page.wait_for_load_state()
    assert "Check your inbox" in page.content()
    assert stored(instance, "cy@example.org").timezone == "Asia/Tokyo"
    context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("size", SIZES)
def test_screenshots_of_site_and_forms(chromium, served, tmp_path, scheme, size):
    running, instance = served
    settings = load_settings(instance, environ={"PUBLISHER_SITE__URL": running.url})
    store = open_store(settings.database_url)
    ada = store.subscribers.add("ada@example.org", NOW, status="active",
                                sections=("world",), deliver_at="18:00")
    store.close()
    preferences = tokens.link(settings, "preferences", ada.id, now=NOW)
    context = chromium.new_context(color_scheme=scheme, viewport=SIZES[size],
                                   timezone_id="Europe/Berlin")
    page = context.new_page()
    for name, path in (("index", ""), ("article", "articles/a-comet-this-week.html"),
                       ("subscribe", "subscribe"),
                       ("preferences", preferences.removeprefix(running.url))):
        page.goto(running.url + path)
        # Nothing wider than the window (375 px phones scroll only vertically).
        assert page.evaluate("document.documentElement.scrollWidth") <= SIZES[size]["width"]
        page.screenshot(path=str(tmp_path / f"{name}-{scheme}-{size}.png"), full_page=True)
    context.close()
