"""Console: the operator's web console under /admin/ in `publisher serve`.

Server-rendered pages (templates/web/admin/, the public pages' style sheet), no script.
Every handler goes through auth.console_page (a live session, the role, the CSRF token
on POST) and calls the same stage and store functions the CLI calls:

    routes() -> list[Route]      what web/app.py mounts
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from publisher.web.admin import (
    accounts,
    auth,
    bounces,
    dashboard,
    editions,
    operators,
    outbox,
    person,
    preview,
    subscribers,
)
from publisher.web.admin import settings_page as settings
from publisher.web.admin.auth import admin_path

GET, POST = ["GET"], ["POST"]
SUBSCRIBER = "/admin/subscribers/{subscriber_id}"


@auth.console_page()
async def unknown(request: Request, operator: auth.Operator) -> Response:
    """Any other /admin/ address: the login page without a session, 404 with one."""
    return request.app.state.web.pages.message(404, "Not found",
                                               "The console has no page at this address.")


async def bare(request: Request) -> Response:
    """/admin without its slash (the session cookie's path is /admin/)."""
    return RedirectResponse(admin_path(request.app.state.web.settings), status_code=308)


def routes() -> list[Route]:
    operators.dummy_hash()  # made with the app, so no login is the one that pays for it
    return [
        Route("/admin/login", auth.login_form, methods=GET),
        Route("/admin/login", auth.login, methods=POST),
        Route("/admin/logout", auth.logout, methods=POST),
        Route("/admin/", dashboard.page, methods=GET),
        Route("/admin/subscribers", subscribers.list_page, methods=GET),
        Route("/admin/subscribers/add", subscribers.add, methods=POST),
        Route("/admin/subscribers/export.csv", subscribers.export, methods=GET),
        Route("/admin/subscribers/import", subscribers.import_page, methods=GET),
        Route("/admin/subscribers/import", subscribers.import_upload, methods=POST,
              max_body_size=subscribers.UPLOAD_LIMIT + 64 * 1024),
        Route(SUBSCRIBER, person.page, methods=GET),
        Route(SUBSCRIBER + "/export.json", person.export_json, methods=GET),
        Route(SUBSCRIBER + "/edit", person.edit, methods=POST),
        Route(SUBSCRIBER + "/resend", person.resend, methods=POST),
        Route(SUBSCRIBER + "/unsubscribe", person.unsubscribe, methods=POST),
        Route(SUBSCRIBER + "/delete", person.delete, methods=POST),
        Route(SUBSCRIBER + "/preview", preview.page, methods=GET),
        Route(SUBSCRIBER + "/preview/frame", preview.frame, methods=GET),
        Route(SUBSCRIBER + "/preview/test", preview.test_send, methods=POST),
        Route("/admin/preview", preview.page, methods=GET),
        Route("/admin/preview/frame", preview.frame, methods=GET),
        Route("/admin/preview/test", preview.test_send, methods=POST),
        Route("/admin/outbox", outbox.page, methods=GET),
        Route("/admin/editions", editions.page, methods=GET),
        Route("/admin/outbox/retry", outbox.retry, methods=POST),
        Route("/admin/bounces", bounces.page, methods=GET),
        Route("/admin/bounces/{event_id}/raw", bounces.raw, methods=GET),
        Route("/admin/settings", settings.page, methods=GET),
        Route("/admin/audit", settings.audit_log, methods=GET),
        Route("/admin/accounts", accounts.page, methods=GET),
        Route("/admin/accounts/add", accounts.add, methods=POST),
        Route("/admin/accounts/{account_id}/remove", accounts.remove, methods=POST),
        Route("/admin/accounts/{account_id}/password", accounts.reset, methods=POST),
        Route("/admin/password", accounts.own_password_page, methods=GET),
        Route("/admin/password", accounts.own_password, methods=POST),
        Route("/admin", bare, methods=["GET"]),
        Route("/admin/{rest:path}", unknown, methods=["GET", "POST"]),
    ]
