"""Ingest stage, finding what changed: which inbox entries a pass must read.

Files. A file ingest has read is recorded with its stat as it was read: size, mtime_ns,
ctime_ns and inode. A file whose four values still match is not read again; any other
is read (opened, hashed, and parsed if its bytes differ). That catches a new file, one
put in place by a rename (new inode, new ctime), one rewritten in place even to the same
size with its mtime set back (`touch -d`, os.utime: the kernel moves ctime on every
write and every utime, and nobody can set ctime back), one restored with its old times
(cp -p, rsync -t: new ctime).

Folders. A pass does not list every folder: each folder it listed whole is recorded
with its (mtime_ns, ctime_ns, inode), and a later full pass only stats the folders
(through the recorded sub-folders). A folder whose stat still matches holds the same
names (the kernel moves a folder's mtime and ctime whenever an entry is added, removed
or renamed in it), so it is not listed and its files are not stat-ed. A folder that
changed is listed, and each of its entries is stat-ed and compared as above. Not by
name and inode alone: ext4 hands a freed inode number to the next file made, so
`rm a.md; write a.md` (git checkout does that) leaves name and inode as they were.

The bound, in place. A file rewritten in place (an editor that writes in place, `cp`
over an existing file, `>>`) moves neither its folder nor its inode, so the folder rule
cannot see it. A rotating re-check covers it: each full pass also stats the next
`[ingest] recheck_per_pass` recorded files (N) in path order after where the last pass
stopped (a cursor in the store), wrapping round. An inbox of up to N files is re-checked
whole on every pass, as every pass did before; a bigger one within ceil(files / N)
passes; `publisher ingest --rescan` lists and stats everything at once. The daemon does
not wait for any of it: its file events name the paths that changed, in place or not
(`only`), and those are looked at alone.

The same tick. A stat taken in the tick of the file system's clock in which something
else can still change (ctime has a granularity of a few milliseconds on Linux) proves
nothing. So a record is trusted only when its ctime is older than the pass's clock,
read on the file system's own clock (a hidden marker file, `.publisher-scan`, touched
before the first folder is listed and the first file read): a folder listed in the tick
its clock was read is listed again next pass, so an entry added in that same tick is not
missed; a file changed in that tick is recorded without its stat and read again next
pass (the store finds those few by an index, wherever they are). On a file system
without a real ctime (some network and FUSE mounts) changes are caught by mtime and size
only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from publisher.ingest.files import QUARANTINE
from publisher.store.inbox_files import FileStat, FolderStat, InboxFileStore, SeenFile

log = logging.getLogger(__name__)

Entry = tuple[str, str, "os.stat_result | None"]  # key, path, lstat (None: cannot stat)

MARKER = ".publisher-scan"
# mtime in the pass's tick counts too (a file system without a real ctime), but only
# within the coarsest tick in use (FAT's 2 s): an mtime set days ahead (a skewed clock,
# `touch -d tomorrow`) is no same-tick race, and must not make a file read on every pass.
SAME_TICK_NS = 2_000_000_000
INODE_BITS = (1 << 63) - 1  # the store's BIGINT is signed


def stat_of(info: os.stat_result) -> FileStat:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino & INODE_BITS)


def changed_entries(entries: Iterable[Entry],
                    seen: dict[str, SeenFile]) -> tuple[list[Path], int]:
    """The entries to read, in a stable order, and the number of articles in the files
    skipped as unchanged (their stat is the one recorded when they were read)."""
    wanted, unchanged = [], 0
    for key, path, info in entries:
        record = seen.get(key)
        if record is not None and record.stat is not None and info is not None and \
                S_ISREG(info.st_mode) and stat_of(info) == record.stat:
            unchanged += record.articles
            continue
        wanted.append((key.split("/"), path))
    # In the order of the Paths (by their parts; every path is the inbox's and its
    # key), sorted as strings: comparing 100,000 Paths cost more than reading a file.
    wanted.sort()
    return [Path(path) for _parts, path in wanted], unchanged


def skipped(name: str, top: bool) -> bool:
    """Hidden entries, editor backups (NAME~) and, at the top, quarantine/."""
    return name.startswith(".") or name.endswith("~") or (top and name == QUARANTINE)


class InboxScan:
    """One full pass's look at the inbox (the rule is this module's docstring): the
    folders by their stat, the entries of those that changed, the files recorded
    without a stat, and the re-check's share; then the records for the next pass.

    `entries` are the files to read (new, or their stat is not the one recorded);
    `clock` the file system's time read before the first listing."""

    def __init__(self, inbox: Path, files: InboxFileStore, clock: Callable[[], int | None],
                 everything: bool = False):
        self.inbox, self.files, self.read_clock = str(inbox), files, clock
        self.everything = everything  # --rescan: list every folder
        self.records = files.folders()
        self.children: dict[str, list[str]] = {}
        for key in self.records:
            if key:
                self.children.setdefault(key.rpartition("/")[0], []).append(key)
        self.live: dict[str, FolderStat | None] = {}  # every folder there this pass
        self.entries: dict[str, Entry] = {}  # the files to read: new, or changed
        self.clock: int | None = None
        self.clocked = False

    def run(self, recheck: int) -> None:
        self.visit("", self.inbox, top=True)
        self.add_recorded(dict.fromkeys(self.files.pending()))
        again, cursor = self.files.recheck(0 if self.everything else recheck)
        self.add_recorded(again)
        changed = {key: stat for key, stat in self.live.items()
                   if key not in self.records or self.records[key] != stat}
        gone = [key for key in self.records if key not in self.live]
        self.files.save_scan(changed, gone, cursor)

    def now(self) -> int | None:
        if not self.clocked:  # once, before the first listing
            self.clock, self.clocked = self.read_clock(), True
        return self.clock

    def visit(self, key: str, path: str, top: bool = False) -> None:
        try:  # the inbox itself may be a link to a folder (it is the operator's)
            info = os.stat(path) if top else os.lstat(path)
        except OSError:  # removed since its parent was listed or recorded
            return
        if not S_ISDIR(info.st_mode):  # now a link or a file: its parent changed
            return
        stat = (info.st_mtime_ns, info.st_ctime_ns, info.st_ino & INODE_BITS)
        if self.everything or self.records.get(key) != stat:
            self.listed(key, path, stat, top)
            return
        self.live[key] = stat  # the same names as when it was listed
        for child in self.children.get(key, ()):
            self.visit(child, os.path.join(path, child.rpartition("/")[2]))

    def listed(self, key: str, path: str, stat: FolderStat, top: bool) -> None:
        """List a folder that changed: every entry is stat-ed and compared with its
        record; sub-folders are visited (a new one is listed)."""
        clock = self.now()
        try:
            with os.scandir(path) as found:
                listing = list(found)
        except OSError:  # removed or unreadable since: not recorded, so looked at again
            return
        self.live[key] = trusted_folder(stat, clock)
        prefix = f"{key}/" if key else ""
        files = []
        for entry in listing:
            if skipped(entry.name, top):
                continue
            if entry.is_dir(follow_symlinks=False):
                self.visit(prefix + entry.name, entry.path)
            else:
                files.append((prefix + entry.name, entry.path))
        recorded = self.files.stats_in(key, [name for name, _path in files]) if files else {}
        for name, file in files:
            self.compare(name, file, recorded.get(name))

    def add_recorded(self, records: dict[str, FileStat | None]) -> None:
        """Recorded files to stat (to read again, or the re-check's share), those in a
        folder that is there this pass (never through a folder now a link)."""
        top = self.inbox + os.sep
        for name, stat in records.items():
            if name not in self.entries and name.rpartition("/")[0] in self.live:
                self.compare(name, top + name, stat, listed=False)

    def compare(self, name: str, path: str, recorded: FileStat | None,
                listed: bool = True) -> None:
        """A candidate unless its stat is the one recorded when it was read."""
        try:
            info = os.lstat(path)
        except OSError:
            if not listed:  # a file deleted (its record stays): deleting stores nothing
                return
            info = None  # gone since the listing: reading it says so
        if info is not None and recorded is not None and S_ISREG(info.st_mode) and \
                stat_of(info) == recorded:
            return
        self.entries[name] = (name, path, info)


def trusted_folder(stat: FolderStat, clock: int | None) -> FolderStat | None:
    """A folder's stat to record: None (list it again) when it changed in the tick the
    pass's clock was read, or later, so an entry added in that tick is not missed."""
    if clock is None or stat[1] >= clock or clock <= stat[0] <= clock + SAME_TICK_NS:
        return None
    return stat


def walk(folder: str, prefix: str, top: bool = False) -> Iterator[Entry]:
    """Every candidate entry under `folder`, with its lstat: hidden entries, editor
    backups (NAME~) and quarantine/ are skipped; folders are entered, linked ones never."""
    try:
        with os.scandir(folder) as found:
            entries = list(found)
    except OSError:  # removed or unreadable since the listing above it
        return
    for entry in entries:
        name = entry.name
        if skipped(name, top):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from walk(entry.path, f"{prefix}{name}/")
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:  # gone since the listing: reading it says so
            info = None
        yield f"{prefix}{name}", entry.path, info


def named(inbox: Path, paths: Iterable[Path]) -> Iterator[Entry]:
    """The entries at these paths (a folder: every entry below it), each once."""
    done: set[str] = set()
    for path in sorted(set(paths)):
        try:
            parts = path.relative_to(inbox).parts
        except ValueError:
            continue
        if not parts or parts[0] == QUARANTINE or \
                any(p.startswith(".") or p.endswith("~") for p in parts):
            continue
        key = "/".join(parts)
        try:
            info = os.lstat(path)
        except OSError:  # gone again: a deletion stores nothing
            continue
        found = walk(str(path), f"{key}/") if S_ISDIR(info.st_mode) else \
            iter([(key, str(path), info)])
        for entry in found:
            if entry[0] not in done:
                done.add(entry[0])
                yield entry


def scan_clock(inbox: Path) -> int | None:
    """The file system's time now, in ns, read by touching the hidden marker file in the
    inbox; None when the inbox cannot be written (then no stat is trusted)."""
    marker = inbox / MARKER
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.utime(fd)  # ctime and mtime become the file system's now
            return os.fstat(fd).st_ctime_ns
        finally:
            os.close(fd)
    except OSError as exc:
        log.info("cannot touch %s (%s): files read this pass will be read again", marker, exc)
        return None


def trusted(stat: FileStat, clock: int | None) -> FileStat | None:
    """The stat to record for a file read on this pass: None when the file changed in
    the tick the pass started (or later), so that a rewrite in that same tick is not
    missed."""
    if clock is None or stat[2] >= clock or clock <= stat[1] <= clock + SAME_TICK_NS:
        return None
    return stat
