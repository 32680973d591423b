"""Web API: what every endpoint does around its own work: authenticate, read the JSON
body, run the work in a thread (the store is synchronous), and turn a user's mistake
into a problem answer.

An endpoint's work is a plain function of a `Call`; it returns (status, JSON body) and
holds no rules of its own: it checks and converts what the client sent, then calls the
same stage functions and store statements the command line calls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from publisher.errors import AddressError, InputError, PublisherError
from publisher.store.api_tokens import ApiToken
from publisher.web.api.problems import Problem, sentence

log = logging.getLogger(__name__)

MAX_LIMIT = 500
JSON_TYPE = "application/json"


@dataclass
class Call:
    web: Any
    token: ApiToken
    path: dict
    query: Any  # starlette QueryParams
    body: Any
    now: datetime
    headers: Any
    background: BackgroundTask | None = None
    response_headers: dict = field(default_factory=dict)

    # --- reading what the client sent ---------------------------------------------
    def limit(self, default: int = 50) -> int:
        value = self.integer("limit", default)
        if not 1 <= value <= MAX_LIMIT:
            raise Problem(400, f"limit {value} is out of range: 1 to {MAX_LIMIT}")
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        text = self.query.get(name)
        if text is None or text == "":
            return default
        try:
            return int(text)
        except ValueError:
            raise Problem(400, f"query parameter {name}={text!r} is not a whole number") \
                from None

    def moment(self, name: str) -> datetime | None:
        text = self.query.get(name)
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise Problem(400, f"query parameter {name}={text!r} is not an ISO 8601 time "
                          "such as 2026-11-01T00:00:00Z") from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        text = self.query.get(name)
        if text is None or text == "":
            return None
        if text not in choices:
            raise Problem(400, f"query parameter {name}={text!r} is not one of "
                          f"{', '.join(choices)}")
        return text

    def path_id(self, name: str = "id") -> int:
        text = self.path[name]
        try:
            return int(text)
        except ValueError:
            raise Problem(404, f"there is no {name} {text!r}: ids are whole numbers") \
                from None


Work = Callable[[Call], tuple[int, Any]]


def endpoint(work: Work, write: bool = False, idempotent_create: bool = False,
             reads_body: bool = False):
    """The Starlette endpoint for `work`. Writes need a token that is not read-only;
    `reads_body`: the request carries a JSON object."""

    async def handle(request: Request) -> Response:
        web = request.app.state.web
        now = web.clock()
        client = request.client.host if request.client else "unknown"
        try:
            token = await run_in_threadpool(web.api.guard.authenticate,
                                            request.headers.get("authorization"), client,
                                            write, now)
            body = await read_body(request) if reads_body else None
            call = Call(web=web, token=token, path=dict(request.path_params),
                        query=request.query_params, body=body, now=now,
                        headers=request.headers)
            if idempotent_create and request.headers.get("idempotency-key"):
                # Imported here: the idempotency module builds on this one.
                from publisher.web.api.idempotency import run_once

                status, payload = await run_in_threadpool(run_once, call, work)
            else:
                status, payload = await run_in_threadpool(checked, work, call)
        except Problem as problem:
            return problem.response(request.url.path)
        return json_response(status, payload, call.response_headers, call.background)

    handle.work = work  # the OpenAPI test reaches the work through the route
    return handle


def checked(work: Work, call: Call) -> tuple[int, Any]:
    """Run the work; a user's mistake becomes a 422 problem naming it."""
    try:
        return work(call)
    except (AddressError, InputError) as exc:
        raise Problem(422, sentence(str(exc)), title="Invalid value") from exc
    except PublisherError as exc:
        raise Problem(400, sentence(str(exc))) from exc


async def read_body(request: Request) -> Any:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != JSON_TYPE:
        raise Problem(415, "send the body as JSON (Content-Type: application/json)")
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}") from None


def json_response(status: int, payload: Any, headers: dict | None = None,
                  background: BackgroundTask | None = None) -> Response:
    if status == 204:
        return Response(status_code=204, headers=headers, background=background)
    return Response(json.dumps(payload, ensure_ascii=False, default=json_default),
                    status_code=status, media_type=JSON_TYPE, headers=headers,
                    background=background)


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def object_body(call: Call) -> dict:
    if not isinstance(call.body, dict):
        raise Problem(400, "the body must be a JSON object")
    return call.body
