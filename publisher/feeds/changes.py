"""Feeds stage, changes: a build that costs what changed, not what exists.

Every transaction that stores or edits articles gives them the next change number
(articles.changed). A build leaves, beside the manifest, a small state file
(.publisher-build.json) saying what it was made from: the layout key (settings,
templates, code), the store (its creation time), the last change number it saw, how
many articles there were, the section counts, and the manifest records of the few files
a change can touch besides article pages and full archive pages (the live feeds, the
index and section pages, the newest archive page, the style sheet and icon).

The next build reads that file, one index entry of the store (the newest change
number) and the started editions (a few rows; a newly started one is something new).
Nothing new, and those few files still on disk as written: it is done, having read no
article. Something new: it reads only the changed articles' stamps and touches
only what depends on them: their pages, the site's live feeds and those of their
sections, the archive pages they fill (the newest, and an edited article's own), the
index, and their sections' pages (every section page when a section appears, since
each names them all). An edit may have moved an article out of a section, so it reads
every section's window and count again (edits are rare; new articles are the stream).
Full archive pages are never read again once written.

A full build (every file checked against the manifest) runs when there is no state, or
the layout or the store is not the one it names, or the manifest is gone; and on
request (`publisher feeds --full`): the way to repair an article page damaged by hand.
The state is written last, after the files and the manifest, so a build killed part way
is done again by the next one, whole.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from publisher.feeds.archives import ArchivePage
from publisher.feeds.build import Build
from publisher.feeds.model import archive_path
from publisher.feeds.output import FILE_MODE, MANIFEST, write_atomic
from publisher.store.articles import Stamp

log = logging.getLogger(__name__)

STATE = ".publisher-build.json"
STATE_VERSION = 1
Record = tuple[str, int, int]


@dataclass
class State:
    """What the last build of this folder was made from (see the module docstring)."""

    layout: str
    store: str  # the store's creation time: another database is another site
    change: int  # the newest change number it saw
    last_seq: int  # the newest article it saw
    stored: int  # how many articles there were
    sections: dict[str, int]  # every section's article count
    archive_count: int
    files: int  # files in the folder, for the report
    hot: dict[str, Record] = field(default_factory=dict)
    editions: str = ""  # the started editions (editions_stamp) its pages and feeds show

    def usable(self, layout: str, store: str, change: int, folder: Path) -> bool:
        return (self.layout == layout and self.store == store and change >= self.change
                and (folder / MANIFEST).is_file())


def read_state(folder: Path) -> State | None:
    try:
        data = json.loads((folder / STATE).read_bytes())
        if data.pop("version") != STATE_VERSION:
            return None
        data["hot"] = {path: tuple(record) for path, record in data["hot"].items()}
        return State(**data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring the unreadable build state %s (%s): a full build follows",
                    folder / STATE, exc)
        return None


def write_state(folder: Path, state: State) -> None:
    data = json.dumps({"version": STATE_VERSION, **asdict(state)}, separators=(",", ":"),
                      sort_keys=True).encode()
    os.makedirs(folder, exist_ok=True)
    write_atomic(folder / STATE, data, FILE_MODE)


def is_hot(path: str, archive_count: int) -> bool:
    """A file a change can touch, other than an article page or a full archive page."""
    if path.startswith("articles/"):
        return False
    return not path.startswith("archive/") or path == archive_path(archive_count)


def damaged(folder: Path, hot: dict[str, Record]) -> list[str]:
    """The hot files no longer on disk as the last build left them."""
    found = []
    for path, (_key, size, mtime) in hot.items():
        try:
            stat = os.stat(f"{folder}/{path}")
        except OSError:
            found.append(path)
            continue
        if stat.st_size != size or stat.st_mtime_ns != mtime:
            found.append(path)
    return found


def read_changes(build: Build, state: State, repair: bool) -> State:
    """Fill `build` with what changed since `state`; returns the state to leave after
    it. `repair`: a hot file was damaged, so every section's files are looked at."""
    store, items = build.store, build.site.items
    changes = store.articles.changed_since(state.change)
    new = [stamp for stamp, _ in changes if stamp.seq > state.last_seq]
    edited = [stamp for stamp, _ in changes if stamp.seq <= state.last_seq]
    stored = state.stored + len(new)
    last_seq = max([state.last_seq, *(stamp.seq for stamp in new)])
    if edited:
        counts = store.articles.section_counts()
    else:
        counts = dict(state.sections)
        for _stamp, sections in changes:
            for name in sections:
                counts[name] = counts.get(name, 0) + 1
    build.set_sections(dict(sorted(counts.items())))
    appeared = set(build.section_counts) - set(state.sections)
    concerned = {name for _stamp, sections in changes for name in sections}
    every = bool(edited or repair or appeared)
    build.touched = [s for s in build.sections if every or s.name in concerned]
    build.section_windows = store.articles.section_windows(
        [s.name for s in build.touched], items)
    build.window = store.articles.window(items)
    build.stamps = [stamp for stamp, _ in changes]
    build.archive = archive_changes(build, state, stored, last_seq, edited, repair)
    build.archive_count = -(-max(stored - items, 0) // items)
    build.partial = True
    added = len(new) + build.archive_count - state.archive_count + 4 * len(appeared)
    return State(state.layout, state.store, state.change, last_seq, stored,
                 build.section_counts, build.archive_count, state.files + added)


def archive_changes(build: Build, state: State, stored: int, last_seq: int,
                    edited: list[Stamp], repair: bool) -> list[ArchivePage]:
    """The archive pages new articles fill or start (read from the newest end of the
    store), and those holding an edited article."""
    store, items = build.store, build.site.items
    before, archived = max(state.stored - items, 0), max(stored - items, 0)
    pages: dict[int, ArchivePage] = {}
    first = before // items + 1  # the page that held the first entry still to come
    if repair and state.archive_count:
        first = min(first, state.archive_count)
    if archived > (first - 1) * items:
        newest = store.articles.newest_stored(stored - (first - 1) * items, last_seq)
        part = newest[:archived - (first - 1) * items]
        for index in range(0, len(part), items):
            number = first + index // items
            pages[number] = ArchivePage(number, part[index:index + items])
    for stamp in edited:
        position = store.articles.stored_before(stamp.seq)
        number = position // items + 1
        if position < archived and number not in pages:
            pages[number] = ArchivePage(number, store.articles.stamps_at(
                (number - 1) * items, min(items, archived - (number - 1) * items)))
    return [pages[number] for number in sorted(pages)]


def state_after(build: Build, state: State, change: int) -> State:
    """The state a build leaves: `state` (what it read) with its files' hot records."""
    state.change = change
    state.hot = {path: record for path, record in build.output.records.items()
                 if is_hot(path, build.archive_count)}
    return state


def full_state(build: Build, layout: str, store: str) -> State:
    """The state a full build starts from (its own reads)."""
    return State(layout, store, 0, build.stamps[-1].seq if build.stamps else 0,
                 len(build.stamps), build.section_counts, build.archive_count, 0)
