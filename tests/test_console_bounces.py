"""The console's bounces page, a person's bounces in their history, and the dashboard's
bounced and complained outcomes with the complaint rate (TestClient, real reports from
the sample corpus through the bounces stage)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from publisher.bounces import event_of_message, handle
from tests.support import NOW
from tests.support.console import EDITOR, logged_in, login
from tests.support.mail import add_subscriber

SAMPLES = Path(__file__).parent / "bounce_samples"


def report(console, name: str, when, extra: bytes = b""):
    data = (SAMPLES / name).read_bytes() + extra
    return handle(console.settings, console.store, event_of_message(data, "mail"), when)


def rows_of(page: str) -> list[str]:
    return re.findall(r'<td data-label="Kind"><span class="state state-(\w+)">', page)


def test_the_page_needs_a_session_and_lists_events_newest_first(console):
    hard = add_subscriber(console.store, "gone.user@example.net", NOW)
    add_subscriber(console.store, "annoyed.reader@yahoo.com", NOW)
    report(console, "postfix-user-unknown.eml", NOW - timedelta(days=2))
    report(console, "exim-quota.eml", NOW - timedelta(days=1))  # nobody we know
    report(console, "arf-yahoo-abuse.eml", NOW - timedelta(hours=1))
    assert console.client.get("/admin/bounces").status_code == 303  # to the login page
    login(console.client)
    page = console.client.get("/admin/bounces")
    assert page.status_code == 200 and ">Bounces</a>" in page.text  # in the navigation
    assert rows_of(page.text) == ["complaint", "soft", "hard"]
    assert f'<a href="/admin/subscribers/{hard.id}">gone.user@example.net</a>' in page.text
    assert "postfach.voll@example.de" in page.text  # named, but no subscriber: no link
    assert f"{NOW - timedelta(days=2):%Y-%m-%d}" in page.text and "<code>5.1.1</code>" \
        in page.text
    # One kind; an unknown kind is every kind.
    assert rows_of(console.client.get("/admin/bounces?kind=hard").text) == ["hard"]
    assert len(rows_of(console.client.get("/admin/bounces?kind=<b>").text)) == 3
    none = console.client.get("/admin/bounces?kind=soft&after=bm9wZQ").text  # a bad cursor
    assert rows_of(none) == ["soft"]


def test_keyset_pages_follow_each_other_without_gaps(console):
    store = console.store
    decide = lambda kind, status, soft: (None, "recorded")  # noqa: E731
    for n in range(53):  # the last five share one instant across the page boundary
        at = NOW - timedelta(minutes=min(n, 48))
        store.bounces.record({"fingerprint": f"f{n}", "subscriber_id": None,
                              "email": f"n{n}@example.net", "kind": "soft" if n % 2
                              else "hard", "origin": "mail", "status": "4.2.2",
                              "detail": f"number {n}", "message_id": None,
                              "received_at": at, "raw": None}, decide, NOW, NOW)
    login(console.client)
    first = console.client.get("/admin/bounces").text
    seen = re.findall(r"number (\d+)", first)
    assert len(seen) == 50 and seen[:2] == ["0", "1"] and seen[-2:] == ["52", "51"]
    following = re.search(r'rel="next" href="/admin/bounces\?([^"]+)"', first)[1]
    second = console.client.get("/admin/bounces?" + following.replace("&amp;", "&")).text
    rest = re.findall(r"number (\d+)", second)
    assert rest == ["50", "49", "48"]  # the id breaks the tie
    assert sorted(map(int, seen + rest)) == list(range(53))
    assert 'rel="next"' not in second and "First page" in second
    hard = console.client.get("/admin/bounces?kind=hard").text
    assert 'rel="next"' not in hard and len(rows_of(hard)) == 27


def test_raw_report_is_plain_text_and_the_page_escapes_what_strangers_wrote(console):
    add_subscriber(console.store, "gone.user@example.net", NOW)
    hostile = b"\n<script>alert(1)</script><img src=x onerror=alert(2)>\n"
    report(console, "postfix-user-unknown.eml", NOW, hostile)
    (event,) = console.store.bounces.events()
    client = logged_in(console, EDITOR)  # an editor sees bounces too
    page = client.get("/admin/bounces").text
    assert f'href="/admin/bounces/{event.id}/raw"' in page and "<script" not in page
    raw = client.get(f"/admin/bounces/{event.id}/raw")
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    assert raw.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in raw.headers["content-security-policy"]
    assert "<script>alert(1)</script>" in raw.text and "Final-Recipient" in raw.text
    assert client.get("/admin/bounces/999/raw").status_code == 404
    assert client.get("/admin/bounces/x/raw").status_code == 404
    detail = console.store.bounces.events()[0]
    console.store.bounces.record(
        {"fingerprint": "hostile", "subscriber_id": None, "email": "x@example.net",
         "kind": "hard", "origin": "mailgun", "status": "",
         "detail": "<b>bold</b><script>x()</script>", "message_id": None,
         "received_at": NOW, "raw": None}, lambda *a: (None, "recorded"), NOW, NOW)
    page = client.get("/admin/bounces").text
    assert "&lt;script&gt;x()&lt;/script&gt;" in page and "<script" not in page
    assert detail.kind == "hard"


def test_a_persons_history_shows_their_bounces_and_complaints(console):
    gone = add_subscriber(console.store, "gone.user@example.net", NOW)
    annoyed = add_subscriber(console.store, "annoyed.reader@yahoo.com", NOW)
    report(console, "postfix-user-unknown.eml", NOW - timedelta(days=1))
    report(console, "arf-yahoo-abuse.eml", NOW - timedelta(hours=2))
    login(console.client)
    page = console.client.get(f"/admin/subscribers/{gone.id}").text
    when = f"{NOW - timedelta(days=1):%Y-%m-%d %H:%M}"
    assert re.search(rf"{when}</div>\s*<div class=\"what\"><strong>Hard bounce</strong>", page)
    assert "5.1.1" in page and "Marked bounced: no more mail" in page
    page = console.client.get(f"/admin/subscribers/{annoyed.id}").text
    when = f"{NOW - timedelta(hours=2):%Y-%m-%d %H:%M}"
    assert re.search(rf"{when}</div>\s*<div class=\"what\"><strong>Complaint", page)
    assert "Marked complained" in page and "Hard bounce" not in page


def test_dashboard_counts_bounced_and_complained_and_warns_on_the_complaint_rate(console):
    add_subscriber(console.store, "gone.user@example.net", NOW)
    add_subscriber(console.store, "annoyed.reader@yahoo.com", NOW)
    report(console, "postfix-user-unknown.eml", NOW - timedelta(days=3))
    report(console, "arf-yahoo-abuse.eml", NOW - timedelta(hours=2))
    login(console.client)
    page = console.client.get("/admin/").text
    assert f"{NOW - timedelta(days=3):%Y-%m-%d}: 1 bounced" in page  # a bar's title
    assert f"{NOW:%Y-%m-%d}: 1 complained" in page
    assert "bounced 1</span>" in page and "complained 1</span>" in page
    # One complaint and nothing sent: the rate is 100%, with `publisher status`'s words.
    assert "100.00%" in page and 'role="alert">complaint rate 100.00% over the last 7' \
        in page and 'tile warn" href="/admin/bounces?kind=complaint"' in page


def test_dashboard_without_complaints_gives_no_warning(console):
    login(console.client)
    page = console.client.get("/admin/").text
    assert "0.00%</span>" in page and 'role="alert"' not in page
    assert 'tile" href="/admin/bounces?kind=complaint"' in page  # no warn class
    assert "complained 0</span>" in page
