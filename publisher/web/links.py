"""Web: the pages behind the signed links in our mail: confirm, preferences, unsubscribe,
and the private feed.

GET never changes anything: link scanners and mail previews follow links, so a GET shows
a page with a button and only the POST acts. The one exception to the form-token rule is
POST /unsubscribe/<token> (RFC 8058 one-click: mail providers send it with no page in
between); it is idempotent, so a second POST is as good as the first. A link whose
subscriber is gone or whose version was revoked gets the same 400 page as a forged one.
"""

from __future__ import annotations

from functools import cache
from itertools import groupby
from zoneinfo import available_timezones

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher import tokens
from publisher.errors import AddressError
from publisher.store.subscribers import FREQUENCIES, Subscriber
from publisher.subscribers.rules import clean_preferences, resubscribe
from publisher.subscribers.rules import confirm as confirm_subscriber
from publisher.web.feed import private_feed as build_private_feed
from publisher.web.feed import site_url
from publisher.web.guard import check_form_token, form_token
from publisher.web.http import conditional_response


async def load(request: Request, purpose: str,
               max_age: int | None = None) -> tuple[str, Subscriber]:
    """The link's token and its subscriber; TokenError (a 400 page) otherwise."""
    web = request.app.state.web
    token = request.path_params["token"]
    data = tokens.verify(web.settings, purpose, token, now=web.clock(),
                         max_age_seconds=max_age)
    subscriber = await run_in_threadpool(web.store.subscribers.by_id, data.subscriber_id)
    if subscriber is None or subscriber.token_version != data.version:
        raise tokens.TokenError("this link is no longer valid")
    return token, subscriber


async def checked_form(request: Request, purpose: str, token: str):
    form = await request.form(max_files=0, max_fields=200)
    web = request.app.state.web
    check_form_token(web.settings, purpose, token, str(form.get("form_token", "")),
                     web.clock())
    return form


def link_to(web, purpose: str, subscriber: Subscriber) -> str:
    return tokens.link(web.settings, purpose, subscriber.id, subscriber.token_version,
                       now=web.clock())


# --- confirm --------------------------------------------------------------------------

def confirm_max_age(request: Request) -> int:
    return request.app.state.web.settings.web.confirm_hours * 3600


async def confirm_page(request: Request) -> Response:
    web = request.app.state.web
    token, subscriber = await load(request, "confirm", confirm_max_age(request))
    if subscriber.status == "active":
        return confirmed_page(web, subscriber, changed=False)
    return web.pages.render("confirm.html", subscriber=subscriber,
                            form_token=form_token(web.settings, "confirm", token, web.clock()))


async def confirm(request: Request) -> Response:
    web = request.app.state.web
    token, subscriber = await load(request, "confirm", confirm_max_age(request))
    await checked_form(request, "confirm", token)
    subscriber, changed = await run_in_threadpool(confirm_subscriber, web.settings, web.store,
                                                  subscriber, web.clock())
    return confirmed_page(web, subscriber, changed)


def confirmed_page(web, subscriber: Subscriber, changed: bool) -> Response:
    return web.pages.render("confirmed.html", subscriber=subscriber, changed=changed,
                            preferences_url=link_to(web, "preferences", subscriber))


# --- preferences ----------------------------------------------------------------------

NOTICES = {"saved": "Your preferences are saved.",
           "resubscribed": "Welcome back: you are subscribed again."}


async def preferences_page(request: Request) -> Response:
    token, subscriber = await load(request, "preferences")
    notice = NOTICES.get(request.query_params.get("done", ""))
    return await render_preferences(request, token, subscriber, notice=notice)


async def render_preferences(request: Request, token: str, subscriber: Subscriber,
                             status: int = 200, error: str | None = None,
                             values: dict | None = None, notice: str | None = None):
    web = request.app.state.web
    known = await run_in_threadpool(web.store.subscribers.known_sections)
    values = values or {"name": subscriber.name, "frequency": subscriber.frequency,
                        "sections": list(subscriber.sections),
                        "timezone": subscriber.timezone}
    return web.pages.render(
        "preferences.html", status=status, subscriber=subscriber, values=values,
        error=error, notice=notice, frequencies=FREQUENCIES,
        sections=sorted({*known, *subscriber.sections, *values["sections"]}),
        zones=zone_groups(), default_zone=web.settings.digest_timezone,
        form_token=form_token(web.settings, "preferences", token, web.clock()),
        unsubscribe_url=link_to(web, "unsubscribe", subscriber),
        feed_url=link_to(web, "feed", subscriber))


async def save_preferences(request: Request) -> Response:
    web = request.app.state.web
    token, subscriber = await load(request, "preferences")
    form = await checked_form(request, "preferences", token)
    here = site_url(web.settings, f"preferences/{token}")
    now = web.clock()
    if form.get("action") == "resubscribe":
        try:
            await run_in_threadpool(resubscribe, web.settings, web.store, subscriber, now)
        except AddressError as exc:
            return await render_preferences(request, token, subscriber, 400, str(exc))
        return RedirectResponse(f"{here}?done=resubscribed", status_code=303)
    values = {"name": str(form.get("name", "")), "frequency": str(form.get("frequency", "")),
              "sections": [str(v) for v in form.getlist("sections")],
              "timezone": str(form.get("timezone", ""))}
    try:
        prefs = clean_preferences(values["name"], values["frequency"], values["sections"],
                                  values["timezone"])
    except AddressError as exc:
        return await render_preferences(request, token, subscriber, 400, str(exc), values)
    await run_in_threadpool(lambda: web.store.subscribers.change(subscriber.id, now,
                                                                 **prefs.columns()))
    return RedirectResponse(f"{here}?done=saved", status_code=303)


@cache
def zone_groups() -> list[tuple[str, list[str]]]:
    """IANA zones grouped by region for the time zone menu (Etc/, posix/ left out)."""
    names = sorted(name for name in available_timezones()
                   if "/" in name and not name.startswith(("Etc/", "posix/", "right/",
                                                           "SystemV/", "US/")))
    return [(region, list(zones)) for region, zones in
            groupby(names, key=lambda name: name.split("/", 1)[0])] + [("Other", ["UTC"])]


# --- unsubscribe ----------------------------------------------------------------------

async def unsubscribe_page(request: Request) -> Response:
    web = request.app.state.web
    _, subscriber = await load(request, "unsubscribe")
    if subscriber.status == "unsubscribed":
        return unsubscribed_page(web, subscriber)
    return web.pages.render("unsubscribe.html", subscriber=subscriber)


async def unsubscribe(request: Request) -> Response:
    """RFC 8058: the POST alone unsubscribes (its body, List-Unsubscribe=One-Click, is
    not required: a POST to this signed URL is the request)."""
    web = request.app.state.web
    _, subscriber = await load(request, "unsubscribe")
    subscriber = await run_in_threadpool(web.store.subscribers.unsubscribe, subscriber.id,
                                         web.clock())
    return unsubscribed_page(web, subscriber)


def unsubscribed_page(web, subscriber: Subscriber) -> Response:
    preferences_token = tokens.sign(web.settings, "preferences", subscriber.id,
                                    subscriber.token_version, now=web.clock())
    return web.pages.render(
        "unsubscribed.html", subscriber=subscriber,
        resubscribe_url=site_url(web.settings, f"preferences/{preferences_token}"),
        form_token=form_token(web.settings, "preferences", preferences_token,
                              web.clock()),
        can_return=subscriber.confirmed_at is not None)


# --- the private feed -------------------------------------------------------------------

async def private_feed(request: Request) -> Response:
    web = request.app.state.web
    token, subscriber = await load(request, "feed")
    rep = await run_in_threadpool(build_private_feed, web.settings, web.store, subscriber,
                                  site_url(web.settings, f"s/{token}/feed.atom"))
    return conditional_response(request, rep)
