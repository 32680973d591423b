"""The subscribe form and the signed-link pages, through Starlette's TestClient."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import feedparser
import pytest
from itsdangerous import URLSafeTimedSerializer

from publisher import tokens
from publisher.clock import fixed
from publisher.ingest.inbox import ingest
from publisher.web import create_app
from publisher.web.guard import RateLimiter
from tests.support import NOW
from tests.support.mail import add_digest, write_articles
from tests.support.web import (
    TestClient,
    confirm_path,
    form_token_of,
    link,
    path_of,
    subscribe,
)


def active(store, email="ada@example.org", **values):
    sub = store.subscribers.add(email, NOW, status="active", **values)
    return sub


# --- subscribe --------------------------------------------------------------------------

@pytest.fixture
def mailing(web_settings, store, smtp_server):
    """The app with [mail] transport smtp to a real SMTP server (aiosmtpd)."""
    settings = replace(web_settings, mail=replace(web_settings.mail, transport="smtp",
                                          smtp_url=smtp_server.url))
    with TestClient(create_app(settings, store, clock=fixed(NOW)),
                    follow_redirects=False) as test_client:
        yield test_client, smtp_server.handler.messages


def test_subscribe_sends_a_confirmation_link(mailing, store):
    client, mails = mailing
    response = subscribe(client, sections=["World", "science"])
    assert response.status_code == 200 and "Check your inbox" in response.text
    sub = store.subscribers.by_email("ada@example.org")
    assert (sub.status, sub.name, sub.frequency, sub.sections) == \
        ("pending", "Ada", "weekly", ("world", "science"))
    # The message went out right after the answer, through the configured transport.
    (_, recipients, data), = mails
    assert recipients == ["ada@example.org"]
    url = confirm_path(data)
    page = client.get(url)
    client.post(url, data={"form_token": form_token_of(page.text)})
    assert store.subscribers.by_id(sub.id).status == "active"
    # Confirmed: the welcome mail went out right after that answer.
    assert len(mails) == 2 and b"Subject: Welcome to" in mails[1][2]
    # Active now: the form changes nothing and sends nothing, yet answers the same.
    again = subscribe(client, sections=["culture"])
    assert again.text == response.text and len(mails) == 2
    assert store.subscribers.by_id(sub.id).sections == ("world", "science")


def test_one_address_gets_few_confirmations(mailing, store):
    client, mails = mailing
    client.app.state.web.subscribe_limiter = RateLimiter(100)
    for _ in range(5):
        assert subscribe(client, "victim@example.org").status_code == 200
    assert len(mails) == 3  # at most three an hour, however often the form is sent


def test_same_answer_whether_or_not_the_address_is_known(client, store):
    client.app.state.web.subscribe_limiter = RateLimiter(100)

    def answer(email):
        return subscribe(client, email).text.replace(email, "EMAIL")

    fresh = answer("new@example.org")
    assert answer("new@example.org") == fresh  # pending now
    ada = active(store, "ada@example.org", name="Ada L", frequency="daily")
    assert answer("ada@example.org") == fresh
    # ... and a stranger cannot change an active subscriber's choices.
    assert store.subscribers.by_id(ada.id) == ada
    gone = store.subscribers.unsubscribe(active(store, "gone@example.org").id, NOW)
    assert answer("gone@example.org") == fresh
    assert store.subscribers.by_id(gone.id).status == "pending"


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/page.html"},
    {"Origin": "http://testserver.evil.example"},
])
def test_cross_site_posts_are_refused(client, store, headers):
    response = subscribe(client, headers=headers)
    assert response.status_code == 403 and "Form not accepted" in response.text
    assert store.subscribers.by_email("ada@example.org") is None


def test_same_site_referer_or_no_browser_headers_are_accepted(client, store):
    assert subscribe(client, "a@example.org",
                     headers={"Referer": "http://testserver/index.html"}).status_code == 200
    assert subscribe(client, "b@example.org", headers={}).status_code == 200


def test_subscribing_is_rate_limited_per_client(client, store):
    for n in range(3):  # [web] subscribe_per_minute = 3 in these tests
        assert subscribe(client, f"p{n}@example.org").status_code == 200
    refused = subscribe(client, "p9@example.org")
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    assert store.subscribers.by_email("p9@example.org") is None


def test_bad_input_shows_the_form_again_escaped(client, store):
    response = subscribe(client, "not-an-address", name="<script>alert(1)</script>")
    assert response.status_code == 400
    assert "is not a valid address" in response.text
    assert "<script>alert" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    response = subscribe(client, frequency="hourly")
    assert response.status_code == 400 and "frequency &#39;hourly&#39;" in response.text
    assert store.subscribers.count_by_status() == {}


def test_subscribe_page_and_security_headers(client, store, web_settings):
    write_articles(web_settings, ("world", "One"), ("pop-culture", "Two"))
    ingest(web_settings, store, NOW)
    page = client.get("/subscribe")
    assert page.status_code == 200
    assert 'value="pop-culture"' in page.text and "Pop culture" in page.text
    csp = page.headers["content-security-policy"]
    # One script, by its hash (the time zone preselection); nothing inline else runs.
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert "unsafe-inline" not in csp
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    css = client.get("/_publisher/style.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert client.get("/_publisher/style.css",
                      headers={"If-None-Match": css.headers["etag"]}).status_code == 304


# --- confirm ----------------------------------------------------------------------------

def test_confirm_needs_the_button(client, store, web_settings):
    subscribe(client)
    sub = store.subscribers.by_email("ada@example.org")
    url = link(web_settings, "confirm", sub)
    page = client.get(url)  # what a link scanner does
    assert page.status_code == 200 and "Confirm my subscription" in page.text
    assert store.subscribers.by_id(sub.id).status == "pending"
    assert client.post(url, data={}).status_code == 400  # no form token
    assert store.subscribers.by_id(sub.id).status == "pending"

    done = client.post(url, data={"form_token": form_token_of(page.text)})
    assert done.status_code == 200 and "You are subscribed" in done.text
    confirmed = store.subscribers.by_id(sub.id)
    assert confirmed.status == "active" and confirmed.confirmed_at is not None
    prefs = re.search(r'href="(http://testserver/preferences/[^"]+)"', done.text)[1]
    assert client.get(path_of(prefs)).status_code == 200
    # Following the link again is harmless.
    again = client.get(url)
    assert again.status_code == 200 and "You are subscribed" in again.text


def old_token(web_settings, purpose, sub, hours):
    """A token signed `hours` before the app's clock (NOW)."""
    return tokens.sign(web_settings, purpose, sub.id, sub.token_version,
                       now=NOW - timedelta(hours=hours))


def test_confirm_links_expire(client, store, web_settings):
    sub = store.subscribers.add("ada@example.org", NOW)
    fresh = old_token(web_settings, "confirm", sub, web_settings.web.confirm_hours - 1)
    assert client.get(f"/confirm/{fresh}").status_code == 200
    stale = old_token(web_settings, "confirm", sub, web_settings.web.confirm_hours + 1)
    for response in (client.get(f"/confirm/{stale}"), client.post(f"/confirm/{stale}")):
        assert response.status_code == 400 and "expired" in response.text
    # Other links do not expire.
    assert client.get(f"/preferences/{old_token(web_settings, 'preferences', sub, 24 * 400)}") \
        .status_code == 200


# --- every bad token on every endpoint ---------------------------------------------------

ENDPOINTS = [("GET", "/confirm/{}", "confirm"), ("POST", "/confirm/{}", "confirm"),
             ("GET", "/preferences/{}", "preferences"),
             ("POST", "/preferences/{}", "preferences"),
             ("GET", "/unsubscribe/{}", "unsubscribe"),
             ("POST", "/unsubscribe/{}", "unsubscribe"),
             ("GET", "/s/{}/feed.atom", "feed")]


def bad_tokens(web_settings, store):
    sub = active(store)
    good = {purpose: tokens.sign(web_settings, purpose, sub.id, 0, now=NOW)
            for purpose in tokens.ROUTES}
    other_secret = replace(web_settings,
                           web=replace(web_settings.web, secret="another-secret-0123456789"))
    gone = active(store, "gone@example.org")
    store.subscribers.forget(gone.id)
    return sub, good, {
        "garbage": lambda purpose: "not-a-token",
        "empty-ish": lambda purpose: "x",
        "altered": lambda purpose: good[purpose][:-3] + ("AAA" if good[purpose][-3:] != "AAA"
                                                         else "BBB"),
        "other purpose": lambda purpose: good["feed" if purpose != "feed" else "confirm"],
        "other secret": lambda purpose: tokens.sign(other_secret, purpose, sub.id, 0, now=NOW),
        "revoked": lambda purpose: tokens.sign(web_settings, purpose, sub.id, 7, now=NOW),
        "forgotten": lambda purpose: tokens.sign(web_settings, purpose, gone.id, 0, now=NOW),
        "not a list": lambda purpose: URLSafeTimedSerializer(
            web_settings.web.secret, salt=f"publisher.{purpose}").dumps({"id": sub.id}),
    }


@pytest.mark.parametrize(("method", "template", "purpose"), ENDPOINTS)
def test_every_bad_token_gets_a_clear_400(client, store, web_settings, method, template, purpose):
    sub, _, makers = bad_tokens(web_settings, store)
    for name, make in makers.items():
        response = client.request(method, template.format(make(purpose)),
                                  data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400, (name, response.text[:300])
        assert "This link does not work" in response.text, name
        assert "Traceback" not in response.text
        assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert store.subscribers.by_id(sub.id).status == "active"


# --- preferences --------------------------------------------------------------------------

def test_preferences_show_and_save(client, store, web_settings):
    write_articles(web_settings, ("world", "One"), ("science", "Two"))
    ingest(web_settings, store, NOW)
    sub = active(store, sections=("world",), timezone="Europe/Paris", frequency="daily")
    url = link(web_settings, "preferences", sub)
    page = client.get(url)
    assert page.status_code == 200
    assert re.search(r'value="world" checked', page.text)
    assert re.search(r'value="science">', page.text)
    assert re.search(r'value="daily" checked', page.text)
    assert '<option value="Europe/Paris" selected>' in page.text
    assert tokens.link(web_settings, "unsubscribe", sub.id, now=NOW).rsplit("/", 1)[0] in page.text
    assert "/s/" in page.text and "feed.atom" in page.text

    saved = client.post(url, data={"form_token": form_token_of(page.text), "name": "Ada",
                                   "frequency": "instant", "sections": ["science", "world"],
                                   "timezone": "Asia/Tokyo", "action": "save"})
    assert saved.status_code == 303 and saved.headers["location"].endswith("?done=saved")
    shown = client.get(path_of(saved.headers["location"]))
    assert "Your preferences are saved." in shown.text
    after = store.subscribers.by_id(sub.id)
    assert (after.name, after.frequency, after.sections, after.timezone, after.status) == \
        ("Ada", "instant", ("science", "world"), "Asia/Tokyo", "active")


def test_preferences_refuse_bad_values_and_forged_forms(client, store, web_settings):
    sub = active(store)
    other = active(store, "bo@example.org")
    url = link(web_settings, "preferences", sub)
    token = form_token_of(client.get(url).text)
    bad = client.post(url, data={"form_token": token, "timezone": "Mars/Base",
                                 "frequency": "daily", "name": "Ada"})
    assert bad.status_code == 400 and "time zone" in bad.text
    assert 'value="Ada"' in bad.text  # what they typed is kept
    assert store.subscribers.by_id(sub.id) == sub
    foreign = form_token_of(client.get(link(web_settings, "preferences", other)).text)
    for data in ({"frequency": "weekly"}, {"frequency": "weekly", "form_token": foreign},
                 {"frequency": "weekly", "form_token": "forged"}):
        response = client.post(url, data=data)
        assert response.status_code == 400 and "This form could not be sent" in response.text
    assert store.subscribers.by_id(sub.id) == sub


# --- unsubscribe ----------------------------------------------------------------------------

def test_get_never_unsubscribes_and_the_button_does(client, store, web_settings):
    sub = active(store)
    url = link(web_settings, "unsubscribe", sub)
    page = client.get(url)
    assert page.status_code == 200 and "<button" in page.text
    assert store.subscribers.by_id(sub.id).status == "active"
    done = client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert store.subscribers.by_id(sub.id).status == "unsubscribed"
    # Idempotent: the mail provider may retry; a GET now says so too.
    assert client.post(url, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert "You are unsubscribed" in client.get(url).text


def test_one_click_post_needs_nothing_else(client, store, web_settings):
    """RFC 8058: mail providers POST the body alone, with no cookies and no Origin."""
    sub = active(store)
    response = client.post(link(web_settings, "unsubscribe", sub),
                           content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert store.subscribers.by_id(sub.id).status == "unsubscribed"


def test_subscribe_again_from_the_unsubscribed_page(client, store, web_settings):
    sub = active(store)
    done = client.post(link(web_settings, "unsubscribe", sub))
    action = re.search(r'form method="post" action="([^"]+)"', done.text)[1]
    back = client.post(path_of(action), data={"form_token": form_token_of(done.text),
                                              "action": "resubscribe"})
    assert back.status_code == 303 and back.headers["location"].endswith("done=resubscribed")
    assert "Welcome back" in client.get(path_of(back.headers["location"])).text
    assert store.subscribers.by_id(sub.id).status == "active"


def test_revoked_links_stop_working(client, store, web_settings):
    sub = active(store)
    url = link(web_settings, "unsubscribe", sub)
    store.subscribers.revoke_links(sub.id, NOW)
    assert client.post(url).status_code == 400
    assert store.subscribers.by_id(sub.id).status == "active"


# --- the private feed ----------------------------------------------------------------------

def test_private_feed_holds_exactly_the_digested_articles(client, store, web_settings):
    write_articles(web_settings, ("world", "One"), ("science", "Two"), ("world", "Three"),
                   ("culture", "Four & <More>"))
    ingest(web_settings, store, NOW)
    seq = {a.title: a.seq for a in store.articles.latest(10)}
    ada, other = active(store), active(store, "bo@example.org")
    empty = client.get(link(web_settings, "feed", ada))
    assert empty.status_code == 200
    assert empty.headers["content-type"] == "application/atom+xml; charset=utf-8"
    assert feedparser.parse(empty.content).entries == []

    add_digest(store, ada.id, "daily:2026-11-23", [seq["One"]])
    add_digest(store, ada.id, "daily:2026-11-24", [seq["Four & <More>"], seq["Two"]])
    add_digest(store, other.id, "daily:2026-11-24", [seq["Three"]])
    response = client.get(link(web_settings, "feed", ada), headers={"Accept-Encoding": "gzip"})
    feed = feedparser.parse(response.content)
    assert not feed.bozo and feed.version == "atom10"
    assert [e.title for e in feed.entries] == ["Four & <More>", "Two", "One"]
    assert feed.entries[0].link == "http://testserver/articles/four-more.html"
    assert feed.entries[0].tags[0].term == "culture"
    assert "private" in response.headers["cache-control"]
    assert response.headers["content-encoding"] == "gzip"
    # Readers poll: the second fetch is a 304, as for the public feeds.
    assert client.get(link(web_settings, "feed", ada), headers={
        "Accept-Encoding": "gzip", "If-None-Match": response.headers["etag"]}).status_code == 304
    assert client.get(link(web_settings, "feed", ada), headers={
        "If-Modified-Since": response.headers["last-modified"]}).status_code == 304


def test_app_refuses_to_start_without_a_secret(web_settings, store):
    from publisher.errors import ConfigError

    with pytest.raises(ConfigError, match=r"web\.secret"):
        create_app(replace(web_settings, web=replace(web_settings.web, secret="")), store)


def test_unexpected_errors_are_a_page_not_a_traceback(web_settings, store):
    app = create_app(web_settings, store, clock=fixed(NOW))
    with store.writing() as conn:  # a database that lost a table under us
        conn.exec_driver_sql("DROP TABLE outbox")
        conn.exec_driver_sql("DROP TABLE digests")
    with TestClient(app, raise_server_exceptions=False) as test_client:
        sub = active(store)
        response = test_client.get(link(web_settings, "feed", sub))
    assert response.status_code == 500 and "Something went wrong" in response.text
    assert "Traceback" not in response.text
