"""Bounces stage: bounce mail from files: single messages, Maildir folders, mbox files, a
folder of message files, and standard input (an MTA alias piping one message).

Each message is handled on its own: one that cannot be read or classified is that
message's error line, never the pass's. Files are read, never changed or moved: running
it again over the same Maildir stores nothing twice (events are keyed by content).
"""

from __future__ import annotations

import logging
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from publisher.bounces.classify import MAX_BYTES
from publisher.bounces.handle import Outcome, event_of_message, handle
from publisher.config import Settings
from publisher.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    name: str  # path, path:N in an mbox, or "-"
    data: bytes | None
    error: str = ""


def read_paths(settings: Settings, store: Store, paths: list[str], now: datetime,
               stdin: BinaryIO | None = None) -> Iterator[tuple[str, Outcome | None, str]]:
    """(name, outcome or None, the line to print) for every message under `paths`."""
    for item in items(paths, stdin):
        if item.data is None:
            yield item.name, None, f"{item.name}: cannot read: {item.error}"
            continue
        try:
            outcome = handle(settings, store, event_of_message(item.data, "mail"), now)
        except Exception as exc:  # a stranger's message must not stop the others
            log.debug("bounce %s failed", item.name, exc_info=True)
            yield item.name, None, f"{item.name}: unreadable ({type(exc).__name__}: {exc}); " \
                "left alone"
            continue
        yield item.name, outcome, f"{item.name}: {outcome.line}"


def items(paths: list[str], stdin: BinaryIO | None) -> Iterator[Item]:
    for name in paths:
        if name == "-":
            yield Item("-", (stdin.read(MAX_BYTES) if stdin else b""))
            continue
        path = Path(name)
        try:
            if path.is_dir():
                yield from folder_items(path)
            elif is_mbox(path):
                yield from mbox_items(path)
            else:
                yield file_item(path)
        except OSError as exc:
            yield Item(name, None, exc.strerror or str(exc))


def is_mbox(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(5) == b"From "


def file_item(path: Path) -> Item:
    try:
        with open(path, "rb") as handle:
            return Item(str(path), handle.read(MAX_BYTES))
    except OSError as exc:
        return Item(str(path), None, exc.strerror or str(exc))


def folder_items(path: Path) -> Iterator[Item]:
    """A Maildir (new/ and cur/; tmp/ holds messages still being written), else every
    regular file in the folder, in name order."""
    if (path / "new").is_dir() and (path / "cur").is_dir():
        files = [f for sub in ("new", "cur") for f in sorted((path / sub).iterdir())]
    else:
        files = sorted(path.iterdir())
    for file in files:
        if file.is_file() and not file.name.startswith("."):
            yield file_item(file)


def mbox_items(path: Path) -> Iterator[Item]:
    box = mailbox.mbox(path, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            try:
                yield Item(f"{path}:{number}", box.get_bytes(key)[:MAX_BYTES])
            except (OSError, KeyError, ValueError) as exc:
                yield Item(f"{path}:{number}", None, str(exc))
    finally:
        box.close()
