"""Console: the subscriber list (search, filters, keyset pages), adding one person, CSV
import by upload (the CLI's import and its report) and CSV export (streamed)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from publisher.errors import PublisherError
from publisher.store.browse import Filters
from publisher.store.subscribers import FREQUENCIES, STATUSES
from publisher.subscribers.csv_io import decode_text, export_chunks, import_text
from publisher.subscribers.rules import add_subscriber, clean_preferences
from publisher.web.admin.auth import Operator, console_page, form_of
from publisher.web.admin.common import audit, back, now_of, render, web_of

SECTION = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
UPLOAD_LIMIT = 20 << 20


def filters_of(request: Request) -> Filters:
    params = request.query_params
    section = params.get("section", "")
    return Filters(
        query=params.get("q", "").strip()[:320],
        by="name" if params.get("by") == "name" else "address",
        status=params.get("status") if params.get("status") in STATUSES else "",
        frequency=params.get("frequency") if params.get("frequency") in FREQUENCIES else "",
        section=section if SECTION.fullmatch(section) else "")


def query_of(filters: Filters, **extra) -> str:
    values = {"q": filters.query, "by": filters.by if filters.query else "",
              "status": filters.status, "frequency": filters.frequency,
              "section": filters.section, **extra}
    return urlencode({key: value for key, value in values.items() if value})


@console_page()
async def list_page(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    filters = filters_of(request)
    after = request.query_params.get("after", "")[:500] or None
    page, sections = await run_in_threadpool(
        lambda: (web.store.browse.page(filters, after), web.store.subscribers.known_sections()))
    return render(request, operator, "subscribers.html", section="subscribers",
                  title="Subscribers", filters=filters, page=page, statuses=STATUSES,
                  frequencies=FREQUENCIES, sections=sections, paged=bool(after),
                  first_url=f"?{query_of(filters)}",
                  next_url=f"?{query_of(filters, after=page.after)}" if page.after else "",
                  export_query=urlencode({"status": filters.status} if filters.status
                                         else {}))


@console_page()
async def add(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    form = form_of(request)
    confirmed = form.get("confirmed") == "yes"
    now = now_of(request)
    try:
        prefs = clean_preferences(str(form.get("name", "")), str(form.get("frequency", "")),
                                  [str(v) for v in form.getlist("sections")], "")
        subscriber = await run_in_threadpool(add_subscriber, web.settings, web.store,
                                             str(form.get("email", "")), prefs, now,
                                             confirmed)
    except PublisherError as exc:
        return back(request, "subscribers", f"Not added: {exc}")
    await audit(request, operator, "subscriber.add", f"subscriber {subscriber.id}",
                "confirmed by the operator" if confirmed else "confirmation sent")
    if not confirmed:
        await web.confirmations.deliver(now)
    return back(request, f"subscribers/{subscriber.id}",
                f"Added {subscriber.email} ({subscriber.status}).")


@console_page()
async def import_page(request: Request, operator: Operator) -> Response:
    return render(request, operator, "import.html", section="subscribers",
                  title="Import subscribers", report=None, problems=[], source="")


@console_page(upload=True)
async def import_upload(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    upload = form_of(request).get("file")
    resubscribe = form_of(request).get("resubscribe") == "yes"
    if upload is None or isinstance(upload, str) or not upload.filename:
        return render(request, operator, "import.html", status=400, section="subscribers",
                      title="Import subscribers", report=None, source="",
                      problems=["Choose a CSV file to upload."])
    data = await upload.read(UPLOAD_LIMIT + 1)
    source = upload.filename[:200]
    if len(data) > UPLOAD_LIMIT:
        problems = [f"{source}: larger than {UPLOAD_LIMIT >> 20} MB; import it with "
                    "`publisher subscribers import`"]
        return render(request, operator, "import.html", status=400, section="subscribers",
                      title="Import subscribers", report=None, source=source,
                      problems=problems)
    try:
        report = await run_in_threadpool(run_import, web, data, source, now_of(request),
                                         resubscribe)
    except PublisherError as exc:
        return render(request, operator, "import.html", status=400, section="subscribers",
                      title="Import subscribers", report=None, source=source,
                      problems=[str(exc)])
    await audit(request, operator, "subscribers.import", "", f"{source}: {report.line()}")
    return render(request, operator, "import.html", section="subscribers",
                  title="Import subscribers", report=report, source=source,
                  problems=import_problems(report, source))


def run_import(web, data: bytes, source: str, now, resubscribe: bool):
    text, encoding = decode_text(data, source)
    report = import_text(web.settings, web.store, text, source, now, resubscribe)
    report.encoding = encoding
    return report


def import_problems(report, source: str) -> list[str]:
    """The lines `publisher subscribers import` prints to stderr, in the same words."""
    lines = []
    if report.encoding != "utf-8":
        lines.append(f"{source}: read as {report.encoding} (not UTF-8)")
    if report.ignored_columns:
        lines.append(f"{source}: ignored column(s) {', '.join(report.ignored_columns)}")
    lines += [f"{source}:{bad.line}: {bad.reason}" for bad in report.bad]
    return lines


@console_page()
async def export(request: Request, operator: Operator) -> Response:
    web = web_of(request)
    status = request.query_params.get("status")
    status = status if status in STATUSES else None
    await audit(request, operator, "subscribers.export", "", f"status {status or 'any'}")
    chunks = (text for text, _rows in export_chunks(web.store, status))
    name = f"subscribers{'-' + status if status else ''}.csv"
    return StreamingResponse(
        iterate_in_threadpool(chunks), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"',
                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
