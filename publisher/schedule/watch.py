"""Schedule: notice files landing in the inbox, by file events or else by polling.

File events (watchfiles: inotify on Linux) tell the daemon about a new file within
milliseconds; a batch is handed on once the inbox has been quiet for a moment, so a file
still being copied is read whole. Where events are unavailable (a network file system,
the inotify watch limit reached) or [daemon] watch = "poll", the inbox is polled: a stat
of each file every [daemon] poll_seconds, cheap even for a large inbox.

Tip for writers: put a file in place with a rename (write `.name.txt`, then move it to
`name.txt`); hidden files and names ending in `~` are never read.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from pathlib import Path

from watchfiles import Change, awatch

from publisher.ingest.files import ERROR_SUFFIX, QUARANTINE, inbox_files, walk

log = logging.getLogger(__name__)

QUIET_MS = 200  # a batch is handed on after this long without further changes
LONGEST_BATCH_MS = 1600


def watch_inbox(inbox: Path, changed: Callable[[], None], stop: asyncio.Event, *,
                mode: str = "events", poll_seconds: float = 2.0):
    """A coroutine that calls `changed()` after files in `inbox` change, until `stop`."""
    if mode == "events":
        return watch_events(inbox, changed, stop, poll_seconds)
    return poll_inbox(inbox, changed, stop, poll_seconds)


def wanted(inbox: Path) -> Callable[[Change, str], bool]:
    """Changes worth an ingest: files added or modified (a deletion stores nothing), not
    hidden, not editor backups, not quarantine/'s .error notes."""

    def keep(change: Change, path: str) -> bool:
        if change == Change.deleted:
            return False
        try:
            parts = Path(path).relative_to(inbox).parts
        except ValueError:
            return False
        if not parts or parts[-1].endswith("~") or any(p.startswith(".") for p in parts):
            return False
        # In quarantine/, a file that changes may be one caught half-written whose writer
        # went on: ingest puts it back. The .error notes are ingest's own writing.
        return parts[0] != QUARANTINE or not parts[-1].endswith(ERROR_SUFFIX)

    return keep


async def watch_events(inbox: Path, changed: Callable[[], None], stop: asyncio.Event,
                       poll_seconds: float) -> None:
    try:
        async for _batch in awatch(inbox, watch_filter=wanted(inbox.resolve()),
                                   stop_event=stop, step=QUIET_MS, debounce=LONGEST_BATCH_MS):
            changed()
        return
    except Exception as exc:  # the watch could not start, or broke: keep going by polling
        log.warning("file events unavailable for %s (%s); polling every %gs instead",
                    inbox, exc, poll_seconds)
    await poll_inbox(inbox, changed, stop, poll_seconds)


def snapshot(inbox: Path) -> dict[str, tuple[int, int]]:
    """Each inbox file's size and modification time: enough to see that one changed."""
    found = {}
    quarantined = (path for path in walk(inbox / QUARANTINE)
                   if not path.name.endswith(ERROR_SUFFIX))
    for path in itertools.chain(inbox_files(inbox), quarantined):
        try:
            stat = path.stat()
        except OSError:  # moved away between the listing and the stat
            continue
        found[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return found


async def poll_inbox(inbox: Path, changed: Callable[[], None], stop: asyncio.Event,
                     poll_seconds: float) -> None:
    log.info("polling %s every %gs", inbox, poll_seconds)
    before = await asyncio.to_thread(snapshot, inbox)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
            return
        except TimeoutError:
            pass
        now = await asyncio.to_thread(snapshot, inbox)
        if now != before:
            before = now
            changed()
