"""Web: the publish folder (feeds, index.html, article pages) served as files.

Each file's ETag is a hash of its bytes, computed once per version of the file: entries
are cached by (inode, size, mtime), so an unchanged file is never hashed again and a file
the feeds stage replaced (temp file + rename: a new inode) is. Feed files get their
registered media types, told apart by their content rather than their names, so section
feeds and renamed files are served right too.
"""

from __future__ import annotations

import mimetypes
import os
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path

from publisher.web.http import Representation

CACHE_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024  # larger files are not served (the folder holds pages)
TEXT_TYPES = ("text/", "application/xml", "application/rss+xml", "application/atom+xml",
              "application/javascript", "image/svg+xml")


class NotFound(Exception):
    pass


class Redirect(Exception):
    def __init__(self, location: str):
        self.location = location


def feed_media_type(name: str, head: bytes) -> str | None:
    """RSS, Atom and JSON Feed by their first bytes (and name as a hint)."""
    lowered = head.lower()
    if name.endswith((".xml", ".rss", ".atom")):
        if b"<rss" in lowered:
            return "application/rss+xml"
        if b"<feed" in lowered and b"http://www.w3.org/2005/atom" in lowered:
            return "application/atom+xml"
        return "application/xml"
    if name.endswith(".json") and b"jsonfeed.org/version/" in lowered:
        return "application/feed+json"
    return None


def media_type(name: str, head: bytes) -> str:
    kind = feed_media_type(name, head) or mimetypes.guess_type(name)[0] \
        or "application/octet-stream"
    if kind.startswith(TEXT_TYPES) or kind == "application/feed+json":
        # Feeds and pages are written as UTF-8; saying so spares readers the guessing.
        kind += "; charset=utf-8"
    return kind


class PublishFolder:
    def __init__(self, root: Path):
        self.root = root
        self.cache: OrderedDict[str, tuple[tuple, Representation]] = OrderedDict()
        self.cached_bytes = 0
        self.lock = threading.Lock()

    def resolve(self, url_path: str) -> Path:
        """The file a URL path names: no hidden parts, no way out of the folder; a
        folder means its index.html (redirecting /dir to /dir/ so links inside work)."""
        parts = [part for part in url_path.split("/") if part]
        if any(part.startswith(".") or "\\" in part or "\x00" in part for part in parts):
            raise NotFound(url_path)
        path = self.root.joinpath(*parts)
        if path.is_dir():
            if url_path and not url_path.endswith("/"):
                raise Redirect(url_path.rsplit("/", 1)[-1] + "/")
            path = path / "index.html"
        try:
            real = path.resolve(strict=True)
            real.relative_to(self.root.resolve())
        except (OSError, ValueError, RuntimeError) as exc:
            raise NotFound(url_path) from exc
        if not real.is_file():
            raise NotFound(url_path)
        return real

    def representation(self, url_path: str) -> Representation:
        path = self.resolve(url_path)
        try:
            with path.open("rb") as handle:
                info = os.fstat(handle.fileno())
                key = (info.st_ino, info.st_size, info.st_mtime_ns)
                with self.lock:
                    cached = self.cache.get(str(path))
                    if cached and cached[0] == key:
                        self.cache.move_to_end(str(path))
                        return cached[1]
                if info.st_size > MAX_FILE_BYTES:
                    raise NotFound(url_path)
                # Read from the handle we stat'ed: a rename meanwhile cannot mix versions.
                body = handle.read()
        except OSError as exc:
            raise NotFound(url_path) from exc
        rep = Representation(
            body=body, media_type=media_type(path.name, body[:1024]),
            last_modified=datetime.fromtimestamp(info.st_mtime, UTC))
        self.remember(str(path), key, rep)
        return rep

    def remember(self, name: str, key: tuple, rep: Representation) -> None:
        with self.lock:
            old = self.cache.pop(name, None)
            if old:
                self.cached_bytes -= len(old[1].body) * 2
            self.cache[name] = (key, rep)
            self.cached_bytes += len(rep.body) * 2  # room for its gzip'd copy too
            while self.cached_bytes > CACHE_BYTES and len(self.cache) > 1:
                _, (_, dropped) = self.cache.popitem(last=False)
                self.cached_bytes -= len(dropped.body) * 2
