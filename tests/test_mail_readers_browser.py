"""In headless Chromium, with `publisher serve` as a real process and mail through a real
SMTP server: confirm in the browser, the welcome mail arrives; a digest with the editor's
note and the postal address; its "view in your browser" page. Screenshots of the three,
light and dark, 375 px and wide, go to $TMPDIR/publisher-mail-shots."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from publisher.instance import init_instance
from tests.support.mail import link_in, parse, wait_for_mail
from tests.support.web import PUBLISHER, Served

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("TMPDIR", "/tmp")) / "publisher-mail-shots"
POSTAL = "Publisher demo, 1 Harbour Street, Springfield"
NOTE = """---
until: 2026-11-30
---
**A note from the desk:** we are off on Friday; the next digest comes on
Monday. [Read about our schedule](https://news.example.org/schedule).
"""


def html_of(data: bytes) -> str:
    return parse(data).get_body(preferencelist=("html",)).get_content()


def shoot(chromium, name: str, show) -> None:
    """Four screenshots of what `show(page)` opens: light and dark, 375 px and wide; the
    sheet is dark in dark mode and nothing is wider than a phone's screen."""
    for scheme in ("light", "dark"):
        for width in (375, 1100):
            context = chromium.new_context(viewport={"width": width, "height": 900},
                                           color_scheme=scheme)
            page = context.new_page()
            show(page)
            page.screenshot(path=str(SHOTS / f"{name}-{scheme}-{width}.png"), full_page=True)
            background = page.evaluate(
                "getComputedStyle(document.querySelector('.sheet')).backgroundColor")
            assert background == ("rgb(255, 255, 255)" if scheme == "light"
                                  else "rgb(35, 35, 33)"), (name, scheme, background)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
            context.close()


def test_welcome_digest_with_note_and_its_web_page(chromium, smtp_server, tmp_path):
    SHOTS.mkdir(exist_ok=True)
    instance = tmp_path / "site"
    init_instance(instance)
    for section, slug, title, body in (
            ("world", "harbour", "The Harbour Reopens", "Boats are back at the quay."),
            ("science", "comet", "A Comet This Week", "Look west after sunset."),
            ("culture", "choir", "The Choir Festival Returns", "Twelve towns sing.")):
        (instance / "articles" / section).mkdir()
        (instance / "articles" / section / f"{slug}.md").write_text(
            f"---\ntitle: {title}\nauthor: Mara Okafor\n---\n{body}\n")
    (instance / "editions").mkdir()
    (instance / "editions" / "note.md").write_text(NOTE)
    env = {"PUBLISHER_MAIL__TRANSPORT": "smtp", "PUBLISHER_MAIL__SMTP_URL": smtp_server.url,
           "PUBLISHER_STORE__URL": "", "PUBLISHER_MAIL__POSTAL_ADDRESS": POSTAL,
           "PUBLISHER_DIGEST__FIRST_DIGEST_RECENT": "10"}
    with Served(instance, env=env, before=["run"]) as served:
        httpx.post(served.url + "subscribe", headers={"Origin": served.url.rstrip("/")},
                   data={"email": "ada@example.org", "name": "Ada Lovelace"})
        _, _, confirmation = wait_for_mail(smtp_server.handler, 1)
        page = chromium.new_page()
        page.goto(link_in(confirmation, "confirm"))
        page.get_by_role("button", name="Confirm my subscription").click()
        page.wait_for_load_state()
        _, recipients, welcome = wait_for_mail(smtp_server.handler, 2)
        assert recipients == ["ada@example.org"]
        assert parse(welcome)["Subject"] == "Welcome to Publisher demo"
        subprocess.run([str(PUBLISHER), "-C", str(instance), "send", "--now"],
                       env=served.env, check=True, capture_output=True)
        _, _, digest = wait_for_mail(smtp_server.handler, 3)
        assert parse(digest)["Subject"] == "Publisher demo: 3 new articles"
        view_url = link_in(digest, "view")

        shoot(chromium, "welcome", lambda page: page.set_content(html_of(welcome)))
        shoot(chromium, "digest", lambda page: page.set_content(html_of(digest)))
        shoot(chromium, "view", lambda page: page.goto(view_url))

        page.goto(view_url)
        text = page.inner_text("body")
        assert "A note from the desk: we are off on Friday" in text
        assert text.index("A note from the desk") < text.index("The Harbour Reopens")
        assert POSTAL in text and "ada@example.org" in text
        assert page.get_by_role("link", name="Unsubscribe").count() == 1
        page.goto(view_url[:-3] + "xyz")
        assert "No digest here" in page.content()
    assert len(list(SHOTS.glob("*.png"))) >= 12
