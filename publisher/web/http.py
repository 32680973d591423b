"""Web: conditional GET and gzip for anything served whole (publish-folder files, the
private feeds).

A representation has a strong ETag (a hash of its bytes) and a Last-Modified time. A
gzip'd body is a different representation, so it gets its own strong ETag (the hash
with "-gz"), and every compressible response says Vary: Accept-Encoding, so caches keep
the two apart. If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2); a match gives
304 with the validators and no body.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

COMPRESSIBLE = ("text/", "application/xml", "application/rss+xml", "application/atom+xml",
                "application/json", "application/feed+json", "application/javascript",
                "image/svg+xml", "application/xhtml+xml")
MIN_GZIP_BYTES = 256


@dataclass
class Representation:
    body: bytes
    media_type: str
    last_modified: datetime
    cache_control: str = "public, no-cache"
    etag: str = ""
    extra_headers: dict = field(default_factory=dict)
    gzipped: bytes | None = None  # made on first request that accepts gzip, then kept

    def __post_init__(self):
        if not self.etag:
            self.etag = strong_etag(self.body)

    @property
    def compressible(self) -> bool:
        return self.media_type.startswith(COMPRESSIBLE) and len(self.body) >= MIN_GZIP_BYTES

    def gzip_body(self) -> bytes:
        if self.gzipped is None:
            # mtime=0: the same bytes every time, so the gzip ETag stays true.
            self.gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self.gzipped


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def gzip_etag(etag: str) -> str:
    return etag[:-1] + '-gz"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def accepts_gzip(request: Request) -> bool:
    """True if Accept-Encoding allows gzip (and does not give it q=0)."""
    for item in request.headers.get("accept-encoding", "").split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in {"gzip", "x-gzip", "*"}:
            quality = params.strip().lower()
            if quality.startswith("q="):
                try:
                    return float(quality[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        # If-None-Match uses the weak comparison: W/"x" matches "x".
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return etag in tags
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if moment is None or moment.tzinfo is None:
        return False
    return last_modified.replace(microsecond=0) <= moment


def conditional_response(request: Request, rep: Representation) -> Response:
    """200 with the (maybe gzip'd) body, or 304; HEAD gets the headers alone."""
    headers = {"Cache-Control": rep.cache_control, "Last-Modified": http_date(rep.last_modified),
               "X-Content-Type-Options": "nosniff", **rep.extra_headers}
    body, etag = rep.body, rep.etag
    if rep.compressible:
        headers["Vary"] = "Accept-Encoding"
        if accepts_gzip(request):
            body, etag = rep.gzip_body(), gzip_etag(rep.etag)
            headers["Content-Encoding"] = "gzip"
    headers["ETag"] = etag
    if not_modified(request, etag, rep.last_modified):
        headers.pop("Content-Encoding", None)
        return Response(status_code=304, headers=headers)
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        return Response(b"", headers=headers, media_type=rep.media_type)
    return Response(body, headers=headers, media_type=rep.media_type)
