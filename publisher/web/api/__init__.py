"""Web API: the JSON API under /api/v1/ (bearer tokens, RFC 9457 problems, keyset pages,
Idempotency-Key on creates), described by the OpenAPI 3.1 document at
/api/v1/openapi.json.

ROUTES is the one table of what is served: `routes()` makes the Starlette routes from it
and `openapi.document` describes it, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from publisher.config import Settings
from publisher.store import Store
from publisher.store.subscribers import FREQUENCIES, STATUSES
from publisher.web.api import reads, subscribers
from publisher.web.api.auth import ApiGuard
from publisher.web.api.endpoint import Work, endpoint
from publisher.web.api.openapi import LIMIT, PATH_ID, PATH_KEY, answer, document, problem, query

PREFIX = "/api/v1"
NOT_FOUND = {"404": problem("No such item.")}


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    work: Work
    operation: str
    summary: str
    tag: str
    responses: dict
    write: bool = False
    request: str | None = None  # the body's schema name
    parameters: list = field(default_factory=list)


SUBSCRIBER_FILTERS = [
    query("status", "Only subscribers in this state.", {"enum": list(STATUSES)}),
    query("frequency", "Only this frequency.", {"enum": list(FREQUENCIES)}),
    query("section", "Only subscribers who get this section (or every section)."),
    query("email", "Exactly this address."),
    query("q", "Addresses containing this text."),
    query("created_after", "Created at or after (ISO 8601).", {"type": "string",
                                                                "format": "date-time"}),
    query("created_before", "Created before (ISO 8601).", {"type": "string",
                                                           "format": "date-time"}),
    query("updated_after", "Changed at or after (ISO 8601): for syncing.",
          {"type": "string", "format": "date-time"}),
    query("after", "Keyset: the next_after of the previous page.", {"type": "integer"}),
    LIMIT,
]

ROUTES = [
    ApiRoute("GET", "/subscribers", subscribers.list_subscribers, "listSubscribers",
             "List subscribers, oldest first, in keyset pages.", "subscribers",
             {"200": answer("A page of subscribers.", "SubscriberPage"),
              "400": problem("A bad filter."), "422": problem("A bad address filter.")},
             parameters=SUBSCRIBER_FILTERS),
    ApiRoute("POST", "/subscribers", subscribers.create_subscriber, "createSubscriber",
             "Add a subscriber (send Idempotency-Key to retry safely).", "subscribers",
             {"201": answer("Added.", "Subscriber"),
              "409": problem("The address is on the list already, or the same "
                             "Idempotency-Key is in flight."),
              "422": problem("A value is refused, or the Idempotency-Key was used with "
                             "another body.")},
             write=True, request="NewSubscriber",
             parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                          "schema": {"type": "string", "maxLength": 200}}]),
    ApiRoute("GET", "/subscribers/{id}", subscribers.get_subscriber, "getSubscriber",
             "One subscriber.", "subscribers",
             {"200": answer("The subscriber.", "Subscriber"), **NOT_FOUND},
             parameters=[PATH_ID]),
    ApiRoute("PATCH", "/subscribers/{id}", subscribers.update_subscriber_call,
             "updateSubscriber", "Change preferences or state.", "subscribers",
             {"200": answer("Changed.", "Subscriber"), **NOT_FOUND,
              "422": problem("A value is refused.")},
             write=True, request="SubscriberChange", parameters=[PATH_ID]),
    ApiRoute("DELETE", "/subscribers/{id}", subscribers.delete_subscriber, "deleteSubscriber",
             "Erase a subscriber with their digests, messages and events.", "subscribers",
             {"200": answer("Deleted.", "Deleted"), **NOT_FOUND},
             write=True, parameters=[PATH_ID]),
    ApiRoute("POST", "/subscribers/{id}/unsubscribe", subscribers.unsubscribe,
             "unsubscribeSubscriber", "Unsubscribe (idempotent).", "subscribers",
             {"200": answer("Unsubscribed.", "Subscriber"), **NOT_FOUND},
             write=True, parameters=[PATH_ID]),
    ApiRoute("GET", "/subscribers/{id}/history", subscribers.history, "subscriberHistory",
             "What was sent to them and what became of it, newest first.", "subscribers",
             {"200": answer("Their messages and events.", "History"), **NOT_FOUND,
              "400": problem("A bad limit.")},
             parameters=[PATH_ID, LIMIT]),
    ApiRoute("GET", "/articles", reads.list_articles, "listArticles",
             "Articles, newest first, in keyset pages.", "articles",
             {"200": answer("A page of articles.", "ArticlePage"),
              "400": problem("A bad parameter.")},
             parameters=[query("section", "Only this section."),
                         query("before", "Keyset: the next_before of the previous page.",
                               {"type": "integer"}), LIMIT]),
    ApiRoute("GET", "/articles/{key}", reads.get_article, "getArticle",
             "One article with its body.", "articles",
             {"200": answer("The article.", "Article"), **NOT_FOUND},
             parameters=[PATH_KEY]),
    ApiRoute("GET", "/status", reads.status, "getStatus",
             "The instance's status, as `publisher status --json`.", "operations",
             {"200": answer("Status.", "Status")}),
    ApiRoute("GET", "/runs", reads.list_runs, "listRuns",
             "Stage runs, newest first, in keyset pages.", "operations",
             {"200": answer("A page of runs.", "RunPage"), "400": problem("A bad parameter.")},
             parameters=[query("stage", "Only this stage (ingest, feeds, digests, ...)."),
                         query("before", "Keyset: the next_before of the previous page.",
                               {"type": "integer"}), LIMIT]),
]


class ApiState:
    """What the API keeps between requests: the token guard and the document."""

    def __init__(self, settings: Settings, store: Store):
        self.guard = ApiGuard(settings, store)
        self.document = document(settings, ROUTES)


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.web.api.document,
                        headers={"Cache-Control": "public, max-age=300"})


def routes() -> list[Route]:
    made = [Route("/openapi.json", openapi_json, methods=["GET"])]
    for route in ROUTES:
        made.append(Route(route.path, endpoint(route.work, write=route.write,
                                               idempotent_create=route.operation
                                               == "createSubscriber",
                                               reads_body=route.request is not None),
                          methods=[route.method], name=route.operation))
    return made
