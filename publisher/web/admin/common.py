"""Console: what every console page shares: rendering with the operator, the navigation
and the CSRF token; the audit log entry each action writes; small parsing helpers."""

from __future__ import annotations

from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.web.admin.auth import Operator, admin_path

# The console's own pages may frame the digest preview (served from our origin under
# its own sandboxing CSP); everything else is as strict as the public pages.
CONSOLE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
               "frame-src 'self'; form-action 'self'; base-uri 'none'; "
               "frame-ancestors 'none'")

NAV = [("", "Dashboard", "editor"), ("subscribers", "Subscribers", "editor"),
       ("outbox", "Outbox", "editor"), ("preview", "Preview", "editor"),
       ("settings", "Settings", "owner"), ("accounts", "Accounts", "owner"),
       ("audit", "Audit log", "owner")]


def web_of(request: Request):
    return request.app.state.web


def render(request: Request, operator: Operator, name: str, *, status: int = 200,
           section: str = "", **context) -> Response:
    web = web_of(request)
    admin = admin_path(web.settings)
    nav = [(admin + path, label, path == section) for path, label, role in NAV
           if role == "editor" or operator.owner]
    return web.pages.render(f"admin/{name}", status=status,
                            headers={"Content-Security-Policy": CONSOLE_CSP},
                            operator=operator.account, csrf=operator.csrf, admin=admin,
                            nav=nav, notice=request.query_params.get("notice", ""),
                            **context)


def back(request: Request, path: str, notice: str = "") -> Response:
    """After a POST: see the page again (303), with one line saying what was done."""
    from urllib.parse import urlencode

    url = admin_path(web_of(request).settings, path)
    if notice:
        url += ("&" if "?" in url else "?") + urlencode({"notice": notice})
    return RedirectResponse(url, status_code=303)


async def audit(request: Request, operator: Operator, action: str, target: str = "",
                detail: str = "") -> None:
    web = web_of(request)
    await run_in_threadpool(web.store.accounts.audit, operator.account.email, action,
                            web.clock(), target, detail)


def now_of(request: Request) -> datetime:
    return web_of(request).clock()


def int_param(text: str | None) -> int | None:
    try:
        value = int(text or "")
    except ValueError:
        return None
    return value if 0 < value < 2**62 else None
