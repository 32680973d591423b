"""Web API: Idempotency-Key on creates. A client that retries a POST (its connection
dropped before the answer came) sends the same key and gets the first answer again,
with nothing done twice.

Keys belong to a token and are kept for KEEP_HOURS. The same key with another body is
refused (422); a retry while the first request is still running gets 409.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from publisher.web.api.endpoint import Call, Work, checked, json_default
from publisher.web.api.problems import Problem

KEEP_HOURS = 24
MAX_KEY = 200


def request_hash(call: Call) -> str:
    canonical = json.dumps(call.body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_once(call: Call, work: Work) -> tuple[int, Any]:
    key = call.headers["idempotency-key"].strip()
    if not key or len(key) > MAX_KEY:
        raise Problem(400, f"an Idempotency-Key is 1 to {MAX_KEY} characters")
    tokens = call.web.store.api_tokens
    digest = request_hash(call)
    tokens.prune_keys(call.now - timedelta(hours=KEEP_HOURS))
    stored = tokens.claim_key(call.token.id, key, digest, call.now)
    if stored is not None:
        return replay(stored, digest, call)
    try:
        status, payload = checked(work, call)
    except Problem as problem:
        if problem.status >= 500:
            tokens.release_key(call.token.id, key)
            raise
        tokens.answer_key(call.token.id, key, problem.status,
                          json.dumps({"problem": problem.body(), "headers": problem.headers}))
        raise
    except BaseException:
        tokens.release_key(call.token.id, key)
        raise
    tokens.answer_key(call.token.id, key, status,
                      json.dumps({"body": payload, "headers": call.response_headers},
                                 default=json_default))
    return status, payload


def replay(stored: dict, digest: str, call: Call) -> tuple[int, Any]:
    if stored["request_hash"] != digest:
        raise Problem(422, "this Idempotency-Key was used with another request body; use "
                      "a new key for a new request", title="Idempotency-Key reused")
    if stored["status"] is None:
        raise Problem(409, "a request with this Idempotency-Key is still being handled; "
                      "retry in a moment", headers={"Retry-After": "1"})
    saved = json.loads(stored["body"])
    if "problem" in saved:
        raise Problem(stored["status"], saved["problem"]["detail"],
                      title=saved["problem"]["title"],
                      headers={**saved["headers"], "Idempotent-Replayed": "true"})
    call.response_headers.update(saved["headers"], **{"Idempotent-Replayed": "true"})
    return stored["status"], saved["body"]
