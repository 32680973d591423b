"""Web API: what the API reads besides subscribers: articles, the instance's status (the
same as `publisher status --json`) and the record of stage runs."""

from __future__ import annotations

import json
from typing import Any

from publisher.schedule.status import collect_status, status_json
from publisher.web.api.endpoint import Call
from publisher.web.api.problems import Problem
from publisher.web.api.views import article_json, run_json


def list_articles(call: Call) -> tuple[int, Any]:
    limit = call.limit()
    page = call.web.store.api.articles_page(call.query.get("section") or None,
                                            call.integer("before"), limit + 1)
    more = len(page) > limit
    page = page[:limit]
    settings = call.web.settings
    return 200, {"items": [article_json(settings, a) for a in page],
                 "next_before": page[-1].seq if more else None}


def get_article(call: Call) -> tuple[int, Any]:
    key = call.path["key"]
    article = call.web.store.api.article(key)
    if article is None:
        raise Problem(404, f"there is no article with slug or id {key!r}")
    return 200, article_json(call.web.settings, article, full=True)


def status(call: Call) -> tuple[int, Any]:
    report = collect_status(call.web.settings, call.web.store, call.now)
    return 200, json.loads(status_json(report))


def list_runs(call: Call) -> tuple[int, Any]:
    limit = call.limit()
    rows = call.web.store.api.runs_page(call.query.get("stage") or None,
                                        call.integer("before"), limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return 200, {"items": [run_json(row) for row in rows],
                 "next_before": rows[-1]["id"] if more else None}
