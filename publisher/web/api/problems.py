"""Web API: errors as RFC 9457 problem details (application/problem+json).

Every error the API gives is a `Problem`: an HTTP status, a short title that stays the
same for every problem of its kind, and a `detail` saying what went wrong this time and
what to do about it.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from starlette.responses import Response

PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    def __init__(self, status: int, detail: str, title: str | None = None,
                 headers: dict | None = None, **extra):
        self.status, self.detail = status, detail
        self.title = title or HTTPStatus(status).phrase
        self.headers, self.extra = headers or {}, extra
        super().__init__(detail)

    def body(self) -> dict:
        return {"type": "about:blank", "title": self.title, "status": self.status,
                "detail": self.detail, **self.extra}

    def response(self, instance: str | None = None) -> Response:
        body = self.body() | ({"instance": instance} if instance else {})
        return problem_response(self.status, body, self.headers)


def problem_response(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status_code=status,
                    media_type=PROBLEM_TYPE, headers=headers)


def sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
