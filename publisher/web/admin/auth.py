"""Console: who is asking. Sessions (a random token in a cookie, only its sha256 stored),
the per-session CSRF token every form carries, login with its rate limit, and
`console_page`, the wrapper every /admin/ handler goes through.

Nothing under /admin/ answers without a live session: a request without one is sent to
the login page (GET) or refused (POST). Every POST must carry the session's CSRF token
(an HMAC of the session token's hash under [web] secret, so nothing more is stored);
the cookie is also SameSite=Lax, which keeps other sites' forms from carrying it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.store.accounts import Account, Session
from publisher.web.guard import check_form_token, form_token, same_site
from publisher.web.pages import base_path

log = logging.getLogger(__name__)

COOKIE = "publisher_admin"
LOGIN_FAILURES = 10  # refused logins allowed per account and per client ...
LOGIN_WINDOW = timedelta(minutes=15)  # ... in this long; then 429 until they age out
MAX_UPLOAD = 20 << 20  # a CSV import; every other form is a few hundred bytes
NOTICES = {"password": "Your password was changed and every session ended; log in again.",
           "out": "You are logged out."}


@dataclass(frozen=True)
class Operator:
    """The logged-in operator of this request."""

    session: Session
    token_hash: str
    csrf: str

    @property
    def account(self) -> Account:
        return self.session.account

    @property
    def owner(self) -> bool:
        return self.account.role == "owner"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret: str, token_hash: str) -> str:
    return hmac.new(secret.encode(), f"admin-csrf:{token_hash}".encode(),
                    hashlib.sha256).hexdigest()


def admin_path(settings, rest: str = "") -> str:
    return f"{base_path(settings)}admin/{rest}"


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def current_operator(web, request: Request) -> Operator | None:
    token = request.cookies.get(COOKIE, "")
    if not token or len(token) > 200:
        return None
    token_hash = hash_token(token)
    session = web.store.accounts.session(token_hash, web.clock())
    if session is None:
        return None
    return Operator(session, token_hash, csrf_token(web.settings.web.secret, token_hash))


def login_redirect(request: Request) -> Response:
    settings = request.app.state.web.settings
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{admin_path(settings, 'login')}?next={quote(wanted, safe='')}",
                            status_code=303)


Handler = Callable[[Request, Operator], Awaitable[Response]]


def console_page(role: str = "editor", upload: bool = False):
    """Wrap a handler: a live session (else the login page), the role, and on POST the
    CSRF token (the form is parsed here; the handler finds it in request.state.form)."""

    def wrap(handler: Handler):
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            web = request.app.state.web
            operator = await run_in_threadpool(current_operator, web, request)
            if operator is None:
                if request.method == "GET":
                    return login_redirect(request)
                return web.pages.message(403, "Not logged in",
                                         "Your session has ended; log in again.")
            if role == "owner" and not operator.owner:
                return web.pages.message(403, "Owners only",
                                         "Only an owner account can open this page.")
            if request.method == "POST":
                form = await request.form(max_files=1 if upload else 0, max_fields=200,
                                          max_part_size=MAX_UPLOAD if upload else 1024 * 1024)
                if not hmac.compare_digest(str(form.get("csrf", "")), operator.csrf):
                    return web.pages.message(403, "This form could not be checked",
                                             "Reload the page and try again.")
                request.state.form = form
            return await handler(request, operator)

        return endpoint

    return wrap


def form_of(request: Request) -> FormData:
    return request.state.form


# --- login and logout ---------------------------------------------------------------
def safe_next(settings, wanted: str) -> str:
    """Only a path of the console, never another site (no open redirect)."""
    home = admin_path(settings)
    parts = urlsplit(wanted or "")
    if parts.scheme or parts.netloc or not parts.path.startswith(home) \
            or "\\" in wanted or wanted.startswith("//"):
        return home
    return wanted


def login_page(request: Request, error: str = "", status: int = 200,
               email: str = "") -> Response:
    web = request.app.state.web
    headers = {}
    if status == 429:
        headers["Retry-After"] = str(int(LOGIN_WINDOW.total_seconds()))
    return web.pages.render(
        "admin/login.html", status=status, headers=headers, title="Log in", error=error,
        email=email, next=safe_next(web.settings, request.query_params.get("next", "")),
        form_token=form_token(web.settings, "admin-login", "login", web.clock()),
        admin=admin_path(web.settings), operator=None, nav=[],
        notice=NOTICES.get(request.query_params.get("notice", ""), ""))


async def login_form(request: Request) -> Response:
    web = request.app.state.web
    if await run_in_threadpool(current_operator, web, request) is not None:
        return RedirectResponse(admin_path(web.settings), status_code=303)
    return login_page(request)


async def login(request: Request) -> Response:
    web = request.app.state.web
    settings = web.settings
    if not same_site(request, settings):
        return web.pages.message(403, "Form not accepted", "Log in from this site's own page.")
    form = await request.form(max_files=0, max_fields=10)
    now = web.clock()
    check_form_token(settings, "admin-login", "login", str(form.get("form_token", "")), now)
    email = str(form.get("email", "")).strip().lower()[:320]
    password = str(form.get("password", ""))
    client = client_of(request)
    store = web.store
    by_email, by_client = await run_in_threadpool(store.accounts.failures_since, email,
                                                  client, now - LOGIN_WINDOW)
    if by_email >= LOGIN_FAILURES or by_client >= LOGIN_FAILURES:
        log.warning("console login refused: too many failures (client %s)", client)
        return login_page(request, "Too many failed attempts. Wait 15 minutes and try "
                          "again.", 429, email)
    from publisher.web.admin.operators import authenticate

    account = await run_in_threadpool(authenticate, store, email, password)
    if account is None:
        await run_in_threadpool(store.accounts.record_failure, email, client, now,
                                now - timedelta(days=1))
        return login_page(request, "That address and password do not match an account.",
                          400, email)
    token = secrets.token_urlsafe(32)
    hours = settings.web.admin_session_hours
    await run_in_threadpool(store.accounts.start_session, account.id, hash_token(token), now,
                            now + timedelta(hours=hours), client)
    await run_in_threadpool(store.accounts.audit, account.email, "login", now, "",
                            f"from {client}")
    response = RedirectResponse(safe_next(settings, str(form.get("next", ""))),
                                status_code=303)
    response.set_cookie(COOKIE, token, max_age=hours * 3600, path=admin_path(settings),
                        secure=settings.site.url.startswith("https:"), httponly=True,
                        samesite="lax")
    return response


@console_page()
async def logout(request: Request, operator: Operator) -> Response:
    web = request.app.state.web
    await run_in_threadpool(web.store.accounts.end_session, operator.token_hash)
    await run_in_threadpool(web.store.accounts.audit, operator.account.email, "logout",
                            web.clock())
    response = RedirectResponse(admin_path(web.settings, "login?notice=out"),
                                status_code=303)
    response.delete_cookie(COOKIE, path=admin_path(web.settings))
    return response
