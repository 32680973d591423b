"""Console: operator accounts (owners only: list, add, remove, set a password) and
every operator's own password. Same rules as `publisher admin ...` (operators.py); a
password change ends every session of that account, the current one included."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from publisher.errors import PublisherError
from publisher.store.accounts import ROLES
from publisher.web.admin.auth import COOKIE, Operator, admin_path, console_page, form_of
from publisher.web.admin.common import audit, back, int_param, now_of, render, web_of
from publisher.web.admin.operators import add_operator, change_password, remove_operator


@console_page(role="owner")
async def page(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    accounts = await run_in_threadpool(web.store.accounts.all)
    return render(request, operator, "accounts.html", section="accounts", title="Accounts",
                  accounts=accounts, roles=ROLES)


@console_page(role="owner")
async def add(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    form = form_of(request)
    try:
        account = await run_in_threadpool(
            add_operator, web.store, str(form.get("email", "")), str(form.get("role", "")),
            str(form.get("password", "")), now_of(request))
    except PublisherError as exc:
        return back(request, "accounts", f"Not added: {exc}")
    await audit(request, operator, "account.add", f"account {account.id}",
                f"role {account.role}")
    return back(request, "accounts", f"Added {account.email} ({account.role}).")


def account_of(request: Request):
    account_id = int_param(request.path_params.get("account_id"))
    return web_of(request).store.accounts.by_id(account_id) if account_id else None


@console_page(role="owner")
async def remove(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    account = await run_in_threadpool(account_of, request)
    if account is None:
        return back(request, "accounts", "No such account.")
    try:
        await run_in_threadpool(remove_operator, web.store, account)
    except PublisherError as exc:
        return back(request, "accounts", f"Not removed: {exc}")
    await audit(request, operator, "account.remove", f"account {account.id}")
    if account.id == operator.account.id:
        return signed_out(request)
    return back(request, "accounts", f"Removed {account.email}.")


@console_page(role="owner")
async def reset(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    account = await run_in_threadpool(account_of, request)
    if account is None:
        return back(request, "accounts", "No such account.")
    try:
        ended = await run_in_threadpool(change_password, web.store, account,
                                        str(form_of(request).get("password", "")),
                                        now_of(request))
    except PublisherError as exc:
        return back(request, "accounts", f"Not changed: {exc}")
    await audit(request, operator, "account.password", f"account {account.id}",
                f"{ended} sessions ended")
    if account.id == operator.account.id:
        return signed_out(request)
    return back(request, "accounts", f"New password for {account.email}; {ended} "
                f"session{'' if ended == 1 else 's'} ended.")


@console_page()
async def own_password_page(request: Request, operator: Operator) -> Response:
    return render(request, operator, "password.html", section="password",
                  title="Your password", problem="")


@console_page()
async def own_password(request: Request, operator: Operator) -> Response:
    from publisher.web.admin.operators import authenticate

    web = web_of(request)
    form = form_of(request)
    account = operator.account
    current = await run_in_threadpool(authenticate, web.store, account.email,
                                      str(form.get("current", "")))
    new = str(form.get("password", ""))
    problem = ""
    if current is None:
        problem = "Your current password is not right."
    elif new != str(form.get("again", "")):
        problem = "The two new passwords differ."
    else:
        try:
            await run_in_threadpool(change_password, web.store, account, new, now_of(request))
        except PublisherError as exc:
            problem = str(exc)[:1].upper() + str(exc)[1:] + "."
    if problem:
        return render(request, operator, "password.html", status=400, section="password",
                      title="Your password", problem=problem)
    await audit(request, operator, "account.password", f"account {account.id}",
                "own password; every session ended")
    return signed_out(request)


def signed_out(request: Request) -> Response:
    """Back to the login page: this session has just ended."""
    settings = web_of(request).settings
    response = RedirectResponse(admin_path(settings, "login?notice=password"), status_code=303)
    response.delete_cookie(COOKIE, path=admin_path(settings))
    return response
