"""The first hour on the web: sections checked, the delivery time and time zone on the
forms, one style for site, forms and mail, a favicon."""

from __future__ import annotations

from tests.support import NOW
from tests.support.web import form_token_of, link, subscribe


def test_web_form_refuses_a_section_that_does_not_exist(client, store):
    response = subscribe(client, sections=["sports"])
    assert response.status_code == 400
    assert ("no section &#39;sports&#39;: the sections are culture, science, world"
            in response.text)
    assert store.subscribers.by_email("ada@example.org") is None


def test_preferences_keep_a_delivery_time_and_a_vanished_section(client, store, web_settings):
    sub = store.subscribers.add("ada@example.org", NOW, status="active",
                                sections=("gone",), deliver_at="07:30")
    url = link(web_settings, "preferences", sub)
    page = client.get(url)
    assert '<option value="07:30" selected>07:30</option>' in page.text  # kept on the menu
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    saved = client.post(url, data={"form_token": form_token_of(page.text),
                                   "frequency": "daily", "sections": ["gone", "world"],
                                   "deliver_at": "18:00", "action": "save"})
    assert saved.status_code == 303
    after = store.subscribers.by_id(sub.id)
    # Their own old section may stay ticked; a new one must exist.
    assert (after.deliver_at, after.sections) == ("18:00", ("gone", "world"))
    bad = client.post(url, data={"form_token": form_token_of(page.text), "frequency": "daily",
                                 "sections": ["sports"], "deliver_at": "18:00"})
    assert bad.status_code == 400 and "no section &#39;sports&#39;" in bad.text


def test_an_older_database_gets_the_delivery_time_column(tmp_path):
    from sqlalchemy import create_engine, text

    from publisher.store import open_store

    url = f"sqlite:///{tmp_path / 'old.db'}"
    open_store(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:  # as a version-2 database was made
        conn.execute(text("ALTER TABLE subscribers DROP COLUMN deliver_at"))
        conn.execute(text("DELETE FROM schema_version WHERE version > 2"))
    engine.dispose()
    store = open_store(url)
    assert store.subscribers.add("ada@example.org", NOW).deliver_at == ""
    store.close()


def test_the_zone_script_is_on_the_subscribe_page_only(client, store, web_settings):
    from publisher.templating import ZONE_SCRIPT
    assert ZONE_SCRIPT in client.get("/subscribe").text
    sub = store.subscribers.add("ada@example.org", NOW, status="active")
    page = client.get(link(web_settings, "preferences", sub)).text
    # "Default" stays chosen: the browser's zone must not replace a person's choice.
    assert "<script" not in page and '<option value="" selected>Default (UTC)' in page
