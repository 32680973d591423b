"""The first hour on the web: sections checked, the delivery time and time zone on the
forms, one style for site, forms and mail, a favicon."""

from __future__ import annotations

from tests.test_web_links import subscribe


def test_web_form_refuses_a_section_that_does_not_exist(client, store):
    response = subscribe(client, sections=["sports"])
    assert response.status_code == 400
    assert ("no section &#39;sports&#39;: the sections are culture, science, world"
            in response.text)
    assert store.subscribers.by_email("ada@example.org") is None
