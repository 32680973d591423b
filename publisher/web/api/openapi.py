"""Web API: the OpenAPI 3.1 document served at /api/v1/openapi.json.

It is built from the same route table the app serves (publisher.web.api.ROUTES), so a
route cannot be served without being described, and the tests ask every described
operation for an answer.
"""

from __future__ import annotations

from typing import Any

from publisher import __version__
from publisher.config import Settings
from publisher.store.subscribers import FREQUENCIES, STATUSES


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str, **more) -> dict:
    return {"type": [kind, "null"], **more}


TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = nullable("string", format="date-time")

SCHEMAS: dict[str, Any] = {
    "Subscriber": {"type": "object", "required": ["id", "email", "status"], "properties": {
        "id": {"type": "integer"}, "email": {"type": "string", "format": "email"},
        "name": {"type": "string"}, "status": {"enum": list(STATUSES)},
        "frequency": {"enum": list(FREQUENCIES)},
        "sections": {"type": "array", "items": {"type": "string"},
                     "description": "Empty: every section."},
        "timezone": {"type": "string", "description": "IANA name; empty: the default."},
        "created_at": TIME, "updated_at": TIME, "confirmed_at": TIME_OR_NULL,
        "last_digest_at": TIME_OR_NULL, "bounce_count": {"type": "integer"}}},
    "SubscriberPage": {"type": "object", "required": ["items", "next_after"], "properties": {
        "items": {"type": "array", "items": ref("Subscriber")},
        "next_after": nullable("integer", description="Pass as `after` for the next page; "
                               "null on the last page.")}},
    "NewSubscriber": {"type": "object", "required": ["email"], "additionalProperties": False,
                      "properties": {
        "email": {"type": "string"}, "name": {"type": "string"},
        "frequency": {"enum": list(FREQUENCIES)},
        "sections": {"type": "array", "items": {"type": "string"}},
        "timezone": {"type": "string"},
        "double_opt_in": {"type": "boolean", "default": True, "description":
                          "true: pending, sent a confirmation link; false: active at once "
                          "(you vouch for their consent)."}}},
    "SubscriberChange": {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string"}, "frequency": {"enum": list(FREQUENCIES)},
        "sections": {"type": "array", "items": {"type": "string"}},
        "timezone": {"type": "string"}, "status": {"enum": list(STATUSES)},
        "new_links": {"type": "boolean", "description": "Revoke every link sent so far."}}},
    "Deleted": {"type": "object", "properties": {"deleted": {"type": "object", "properties": {
        "subscriber": {"type": "integer"}, "email": {"type": "string"},
        "digests": {"type": "integer"}, "messages": {"type": "integer"}}}}},
    "History": {"type": "object", "properties": {
        "subscriber": ref("Subscriber"),
        "messages": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "kind": {"type": "string"},
            "state": {"enum": ["queued", "sending", "deferred", "sent", "failed"]},
            "attempts": {"type": "integer"}, "created_at": TIME, "sent_at": TIME_OR_NULL,
            "last_code": nullable("integer"), "last_error": nullable("string"),
            "digest_id": nullable("integer"), "period": nullable("string"),
            "articles": nullable("integer"), "more": nullable("integer")}}},
        "events": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "kind": {"type": "string"}, "created_at": TIME}}}}},
    "Article": {"type": "object", "required": ["id", "slug", "title"], "properties": {
        "id": {"type": "string"}, "seq": {"type": "integer"}, "slug": {"type": "string"},
        "title": {"type": "string"}, "summary": {"type": "string"},
        "author": nullable("string"), "sections": {"type": "array",
                                                   "items": {"type": "string"}},
        "image": nullable("string"), "link": nullable("string"),
        "url": {"type": "string", "format": "uri"}, "published": TIME, "updated": TIME,
        "stored_at": TIME, "body_html": {"type": "string"},
        "captions": {"type": "array", "items": {"type": "string"}},
        "credit": nullable("string")}},
    "ArticlePage": {"type": "object", "properties": {
        "items": {"type": "array", "items": ref("Article")},
        "next_before": nullable("integer")}},
    "Status": {"type": "object", "description": "As `publisher status --json`.",
               "properties": {"healthy": {"type": "boolean"}, "articles": {"type": "integer"},
                              "subscribers": {"type": "object"}, "outbox": {"type": "object"},
                              "stages": {"type": "array"}}},
    "Run": {"type": "object", "properties": {
        "id": {"type": "integer"}, "stage": {"type": "string"}, "node": {"type": "string"},
        "started_at": TIME, "finished_at": TIME_OR_NULL, "ok": nullable("boolean"),
        "seconds": nullable("number"), "summary": {"type": "object"}}},
    "RunPage": {"type": "object", "properties": {
        "items": {"type": "array", "items": ref("Run")},
        "next_before": nullable("integer")}},
    "Problem": {"type": "object", "description": "RFC 9457 problem details.",
                "required": ["title", "status", "detail"], "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "instance": {"type": "string"}}},
}


def problem(description: str) -> dict:
    return {"description": description,
            "content": {"application/problem+json": {"schema": ref("Problem")}}}


def answer(description: str, schema: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": ref(schema)}}}


def query(name: str, description: str, schema: dict | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


PATH_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
PATH_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The article's slug or id."}
LIMIT = query("limit", "Items per page, 1 to 500 (default 50).",
              {"type": "integer", "minimum": 1, "maximum": 500})
COMMON = {"401": problem("No token, or an unknown or revoked one."),
          "429": problem("Over the token's requests a minute; see Retry-After.")}
WRITE = {**COMMON, "403": problem("The token is read-only.")}


def document(settings: Settings, routes: list) -> dict:
    paths: dict[str, dict] = {}
    for route in routes:
        operation = {"operationId": route.operation, "summary": route.summary,
                     "tags": [route.tag], "responses": {**route.responses,
                                                        **(WRITE if route.write else COMMON)}}
        if route.parameters:
            operation["parameters"] = route.parameters
        if route.request:
            operation["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": ref(route.request)}}}
            operation["responses"].setdefault("415", problem("The body is not JSON."))
            operation["responses"].setdefault("400", problem("The body is not valid JSON."))
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{settings.site.title} API (Publisher)", "version": __version__,
                 "description": "Subscribers, their history, articles, status and stage "
                 "runs. Errors are RFC 9457 problem details."},
        "servers": [{"url": settings.site.url.rstrip("/") + "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "`publisher api-token create NAME [--read-only]` makes one."}}},
    }
