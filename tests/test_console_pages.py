"""The console's pages and actions through HTTP (TestClient), on both backends."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from datetime import timedelta

from publisher.delivery import deliver
from publisher.delivery.memory import MemoryTransport
from publisher.delivery.transport import PERMANENT, Result
from publisher.digests.planner import queue_digests
from tests.support import NOW
from tests.support.console import OWNER, csrf_of, login
from tests.support.mail import add_articles, add_subscriber, parse


def send_digests(console, outcome=None):
    """Queue and deliver digests as a `publisher run` would, at NOW."""
    report = queue_digests(console.settings, console.store, NOW, everyone=True)
    asyncio.run(deliver(console.settings, console.store, MemoryTransport(outcome), NOW))
    return report


def test_subscriber_list_searches_filters_and_pages(console):
    store = console.store
    for n in range(120):
        add_subscriber(store, f"user{n:03d}@example.org", NOW, name=f"Person {n:03d}",
                       frequency="weekly" if n % 3 == 0 else "daily",
                       sections=("world",) if n % 2 else (),
                       status="pending" if n % 10 == 0 else "active")
    add_subscriber(store, "zed@example.net", NOW, name="Ada Zed", sections=("science",))
    login(console.client)

    def emails(url):
        page = console.client.get(url)
        assert page.status_code == 200, url
        found = re.findall(r'data-label="Address"[^>]*><a href="/admin/subscribers/\d+">([^<]+)<',
                           page.text)
        following = page.text.split('rel="next" href="')[1].split('"')[0] \
            if 'rel="next"' in page.text else None
        return found, following and following.replace("&amp;", "&")

    seen, url = [], "/admin/subscribers"
    while url:
        rows, url = emails(url)
        assert len(rows) <= 50
        seen += rows
    assert len(seen) == len(set(seen)) == 121
    assert seen[0] == "zed@example.net"  # newest first

    rows, more = emails("/admin/subscribers?q=USER11")
    assert rows == [f"user{n}@example.org" for n in range(110, 120)] and more is None
    rows, _ = emails("/admin/subscribers?q=ada&by=name")
    assert rows == ["zed@example.net"]
    rows, _ = emails("/admin/subscribers?q=person+00&by=name")
    assert rows == [f"user00{n}@example.org" for n in range(10)]
    rows, _ = emails("/admin/subscribers?status=pending")
    assert sorted(rows) == [f"user{n:03d}@example.org" for n in range(0, 120, 10)]
    rows, _ = emails("/admin/subscribers?frequency=weekly&status=pending")
    assert sorted(rows) == [f"user{n:03d}@example.org" for n in range(0, 120, 30)]
    rows, _ = emails("/admin/subscribers?section=science&q=user00")
    assert rows == ["user000@example.org", "user002@example.org", "user004@example.org",
                    "user006@example.org", "user008@example.org"]  # every section
    rows, _ = emails("/admin/subscribers?q=%25&by=name")  # no wildcard
    assert rows == []


def test_a_persons_page_shows_their_history(console):
    store = console.store
    add_articles(store, [("Harbour Reopens", ("world",)), ("Comet Seen", ("science",))],
                 NOW - timedelta(hours=1))
    ada = add_subscriber(store, "ada@example.org", NOW, name="Ada", cursor=0)
    bob = add_subscriber(store, "bob@example.org", NOW, cursor=0)
    send_digests(console, lambda env: Result(PERMANENT, 550, "mailbox unknown", bounce=True)
                 if "bob@" in env.recipients[0] else Result("sent", 250, "ok"))
    login(console.client)
    page = console.client.get(f"/admin/subscribers/{ada.id}").text
    assert "Joined the list" in page and "Confirmed" in page
    assert "Digest now:" in page and "Harbour Reopens" in page and "Comet Seen" in page
    assert 'class="state state-sent">sent' in page
    bounced = console.client.get(f"/admin/subscribers/{bob.id}").text
    assert 'state-failed">failed' in bounced and "550: mailbox unknown" in bounced
    # Unsubscribing appears in the history, with the operator's action.
    csrf = csrf_of(page)
    console.client.post(f"/admin/subscribers/{ada.id}/unsubscribe", data={"csrf": csrf})
    page = console.client.get(f"/admin/subscribers/{ada.id}").text
    assert "Unsubscribed" in page and f"{OWNER}: subscriber.unsubscribe" in page


def test_edit_resend_export_and_delete(console):
    store = console.store
    add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=1))
    pending = add_subscriber(store, "pat@example.org", NOW, status="pending")
    ada = add_subscriber(store, "ada@example.org", NOW, name="Ada", cursor=0)
    send_digests(console)
    login(console.client)
    csrf = csrf_of(console.client.get(f"/admin/subscribers/{ada.id}").text)
    edited = console.client.post(f"/admin/subscribers/{ada.id}/edit", data={
        "csrf": csrf, "name": "Ada Lovelace", "frequency": "weekly", "sections": "world",
        "timezone": "Europe/Berlin", "status": "active"})
    assert edited.status_code == 303
    ada = store.subscribers.by_id(ada.id)
    assert (ada.name, ada.frequency, ada.sections, ada.timezone) == \
        ("Ada Lovelace", "weekly", ("world",), "Europe/Berlin")
    bad = console.client.post(f"/admin/subscribers/{ada.id}/edit", data={
        "csrf": csrf, "timezone": "Mars/Olympus", "status": "active"})
    assert "Mars/Olympus" in bad.headers["location"].replace("%2F", "/")
    assert store.subscribers.by_id(ada.id).timezone == "Europe/Berlin"

    resent = console.client.post(f"/admin/subscribers/{pending.id}/resend", data={"csrf": csrf})
    assert resent.status_code == 303
    assert [m[1] for m in console.mail] == [["pat@example.org"]]
    assert "/confirm/" in parse(console.mail[0][2]).get_body(("plain",)).get_content()
    refused = console.client.post(f"/admin/subscribers/{ada.id}/resend", data={"csrf": csrf})
    assert "not+pending" in refused.headers["location"] or "not%20pending" in \
        refused.headers["location"]

    exported = console.client.get(f"/admin/subscribers/{ada.id}/export.json")
    data = json.loads(exported.text)
    assert data["email"] == "ada@example.org" and data["name"] == "Ada Lovelace"
    assert data["digests"][0]["articles"] == ["Harbour Reopens"]
    assert data["digests"][0]["state"] == "sent"
    assert "attachment" in exported.headers["content-disposition"]

    kept = console.client.post(f"/admin/subscribers/{ada.id}/delete",
                               data={"csrf": csrf, "confirm_email": "someone@else.org"})
    assert kept.status_code == 303 and store.subscribers.by_id(ada.id) is not None
    gone = console.client.post(f"/admin/subscribers/{ada.id}/delete",
                               data={"csrf": csrf, "confirm_email": "ada@example.org"})
    assert gone.status_code == 303
    assert store.subscribers.by_id(ada.id) is None
    assert store.subscribers.digest_count(ada.id) == 0
    assert all(row["recipient"] != "ada@example.org" for row in store.ledger.digest_messages())
    assert console.client.get(f"/admin/subscribers/{ada.id}").status_code == 404
    audit = console.store.accounts.audit_page(None, 20)
    assert "ada@example.org" not in json.dumps([e.detail + e.target for e in audit])


def test_add_a_subscriber(console):
    login(console.client)
    csrf = csrf_of(console.client.get("/admin/subscribers").text)
    console.client.post("/admin/subscribers/add", data={
        "csrf": csrf, "email": "New.Person@Example.org", "name": "New", "frequency": "daily",
        "confirmed": "yes"})
    console.client.post("/admin/subscribers/add", data={
        "csrf": csrf, "email": "asks@example.org", "frequency": "weekly"})
    assert console.store.subscribers.by_email("new.person@example.org").status == "active"
    assert console.store.subscribers.by_email("asks@example.org").status == "pending"
    assert [m[1] for m in console.mail] == [["asks@example.org"]]
    twice = console.client.post("/admin/subscribers/add", data={
        "csrf": csrf, "email": "asks@example.org", "frequency": "weekly"})
    assert "already+on+the+list" in twice.headers["location"]


def test_csv_import_by_upload_reports_like_the_cli_and_export(console, run_cli, tmp_path):
    login(console.client)
    csrf = csrf_of(console.client.get("/admin/subscribers/import").text)
    text = ("email,name,frequency,colour\nada@example.org,Ada,weekly,red\n"
            "not-an-address,Bob,daily,blue\ncy@example.org,Cy,hourly,green\n")
    answer = console.client.post("/admin/subscribers/import", data={"csrf": csrf},
                                 files={"file": ("list.csv", text.encode(), "text/csv")})
    assert answer.status_code == 200
    (tmp_path / "list.csv").write_text(text)
    console.store.subscribers.forget(console.store.subscribers.by_email("ada@example.org").id)
    cli = run_cli("-C", console.settings.instance, "subscribers", "import",
                  tmp_path / "list.csv")
    # The same lines as the CLI, naming the file by its name.
    for line in cli.stderr.splitlines():
        assert line.replace(str(tmp_path / "list.csv"), "list.csv") in \
            answer.text.replace("&#39;", "'").replace("&#34;", '"')
    assert cli.stdout.splitlines()[-1].replace("1 added", "") in \
        answer.text.replace("1 added", "")
    assert "list.csv:3:" in answer.text and "list.csv:4:" in answer.text

    export = console.client.get("/admin/subscribers/export.csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["email"] for r in rows] == ["ada@example.org"]
    assert export.headers["content-type"].startswith("text/csv")
    missing = console.client.post("/admin/subscribers/import", data={"csrf": csrf})
    assert missing.status_code == 400


def test_outbox_page_and_retry(console):
    store = console.store
    add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=1))
    add_subscriber(store, "bob@example.org", NOW, cursor=0)
    send_digests(console, lambda env: Result(PERMANENT, 550, "no such mailbox"))
    login(console.client)
    page = console.client.get("/admin/outbox")
    assert "bob@example.org" in page.text and "no such mailbox" in page.text
    assert store.ledger.counts()["failed"] == 1
    retried = console.client.post("/admin/outbox/retry", data={"csrf": csrf_of(page.text)})
    assert retried.status_code == 303
    assert store.ledger.counts()["failed"] == 0 and store.ledger.counts()["queued"] == 1


def test_preview_and_test_send_touch_nothing(console):
    store = console.store
    add_articles(store, [("Harbour Reopens", ("world",)), ("Comet Seen", ("science",))],
                 NOW - timedelta(hours=1))
    ada = add_subscriber(store, "ada@example.org", NOW, name="Ada", cursor=0)
    login(console.client)
    page = console.client.get(f"/admin/subscribers/{ada.id}/preview")
    assert page.status_code == 200
    assert "Harbour Reopens" in page.text and "List-Unsubscribe" in page.text
    assert f'src="/admin/subscribers/{ada.id}/preview/frame"' in page.text
    assert 'sandbox=""' in page.text
    frame = console.client.get(f"/admin/subscribers/{ada.id}/preview/frame")
    assert frame.headers["content-security-policy"].startswith("sandbox;")
    assert "Harbour Reopens" in frame.text and "<html" in frame.text.lower()

    before = (store.ledger.counts(), store.subscribers.by_id(ada.id),
              store.subscribers.digest_count(ada.id))
    sent = console.client.post(f"/admin/subscribers/{ada.id}/preview/test",
                               data={"csrf": csrf_of(page.text)})
    assert sent.status_code == 303 and "Test+sent" in sent.headers["location"]
    (_sender, recipients, data), = console.mail
    message = parse(data)
    assert recipients == [OWNER] and message["To"] == OWNER
    assert message["Subject"].startswith("[TEST] ")
    assert "Harbour Reopens" in message.get_body(("plain",)).get_content()
    after = (store.ledger.counts(), store.subscribers.by_id(ada.id),
             store.subscribers.digest_count(ada.id))
    assert after == before  # no ledger row, no cursor, no digest

    # Nothing new for them: say so, and offer the newest articles as a sample.
    send_digests(console)
    empty = console.client.get(f"/admin/subscribers/{ada.id}/preview")
    assert "Nothing new for ada@example.org" in empty.text
    sample = console.client.get(f"/admin/subscribers/{ada.id}/preview?sample=1")
    assert "Harbour Reopens" in sample.text
    generic = console.client.get("/admin/preview")
    assert "Sample Reader" in generic.text and "Comet Seen" in generic.text
    found = console.client.get("/admin/preview?email=ADA@example.org")
    assert found.headers["location"] == f"/admin/subscribers/{ada.id}/preview"


def test_dashboard_settings_and_audit(console):
    store = console.store
    add_articles(store, [("Harbour Reopens", ("world",))], NOW - timedelta(hours=1))
    for n in range(5):
        store.subscribers.add(f"p{n}@example.org", NOW - timedelta(days=n * 20),
                              status="active")
    store.subscribers.add("old@example.org", NOW - timedelta(days=200), status="unsubscribed")
    send_digests(console)
    login(console.client)
    page = console.client.get("/admin/").text
    assert page.count("<svg") == 5 and "<script" not in page
    assert ">6</span><span class=\"muted\">subscribers" in page
    assert f"{NOW:%Y-%m-%d}: 5 sent" in page  # a bar's title
    assert f"{NOW - timedelta(days=80):%Y-%m-%d}: 2<" in page  # the running total
    settings = console.client.get("/admin/settings").text
    assert console.settings.web.secret not in settings and "••••" in settings
    assert "Templates ok" in settings
    audit = console.client.get("/admin/audit").text
    assert "login" in audit and OWNER in audit
