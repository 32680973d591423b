"""Web API: how stored things look as JSON (one function each, used by every endpoint
and described by the same names in the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from publisher.article import StoredArticle
from publisher.delivery.templates import article_url
from publisher.schedule.status import StageRun, stage_run
from publisher.store.subscribers import Subscriber


def subscriber_json(sub: Subscriber) -> dict[str, Any]:
    return {"id": sub.id, "email": sub.email, "name": sub.name, "status": sub.status,
            "frequency": sub.frequency, "sections": list(sub.sections),
            "timezone": sub.timezone, "created_at": sub.created_at,
            "updated_at": sub.updated_at, "confirmed_at": sub.confirmed_at,
            "last_digest_at": sub.last_digest_at, "bounce_count": sub.bounce_count}


def article_json(settings, article: StoredArticle, full: bool = False) -> dict[str, Any]:
    data = {"id": article.id, "seq": article.seq, "slug": article.slug,
            "title": article.title, "summary": article.summary, "author": article.author,
            "sections": list(article.sections), "image": article.image,
            "link": article.link, "url": article_url(settings, article.slug),
            "published": article.published, "updated": article.updated,
            "stored_at": article.stored_at}
    if full:
        data |= {"body_html": article.body_html, "captions": list(article.captions),
                 "credit": article.credit}
    return data


def run_json(row: dict) -> dict[str, Any]:
    run: StageRun = stage_run(row)
    return {"id": row["id"], "stage": run.stage, "node": run.node,
            "started_at": run.started_at, "finished_at": run.finished_at, "ok": run.ok,
            "seconds": run.seconds, "summary": run.summary}
