"""Console: the settings in force (secrets masked) and the templates' check, read-only;
and the audit log. Owners only."""

from __future__ import annotations

import dataclasses
import re

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.config import SECTIONS, Settings
from publisher.delivery.templates import check_templates, shipped_templates
from publisher.store import safe_url
from publisher.web.admin.auth import Operator, console_page
from publisher.web.admin.common import int_param, render, web_of

MASKED = "••••••••"
SECRET_KEYS = {("web", "secret")}
URL_PASSWORD = re.compile(r"(//[^:/@]+:)[^@/]+@")


def shown_value(section: str, key: str, value) -> str:
    if (section, key) in SECRET_KEYS:
        return MASKED if value else "(not set)"
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "(none)"
    text = str(value)
    if "://" in text:
        text = URL_PASSWORD.sub(rf"\g<1>{MASKED}@", text)  # smtp://user:pass@host
    return text if text != "" else "(empty)"


def settings_table(settings: Settings) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """[(section, [(key, shown value, documentation)])] for every declared key."""
    table = []
    for name in SECTIONS:
        section = getattr(settings, name)
        rows = [(f.name.rstrip("_"), shown_value(name, f.name, getattr(section, f.name)),
                 f.metadata.get("doc", "")) for f in dataclasses.fields(section)]
        table.append((name, rows))
    sources = [(source.name, shown_value("sources", "url", source.url),
                f"sections {', '.join(source.sections) or '(all)'}, every "
                f"{source.interval} s") for source in settings.sources]
    if sources:
        table.append(("sources", sources))
    return table


@console_page(role="owner")
async def page(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    problems = await run_in_threadpool(check_templates, web.settings)
    return render(request, operator, "settings.html", section="settings", title="Settings",
                  table=settings_table(web.settings), problems=problems,
                  database=safe_url(web.settings.database_url),
                  instance=str(web.settings.instance), shipped=str(shipped_templates()),
                  own=str(web.settings.path("templates")))


@console_page(role="owner")
async def audit_log(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    before = int_param(request.query_params.get("before"))
    entries = await run_in_threadpool(web.store.accounts.audit_page, before, 100)
    return render(request, operator, "audit.html", section="audit", title="Audit log",
                  entries=entries, before=entries[-1].id if len(entries) == 100 else None)
