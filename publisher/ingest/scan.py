"""Ingest stage, finding what changed: which inbox entries a pass must read.

The rule. A file ingest has read is recorded with its stat as it was read: size,
mtime_ns, ctime_ns and inode. A later pass lists the folders and stats each entry (one
lstat, no open, no read, no hash) and reads only the files whose four values differ from
the record, and files it has no record of. What that catches:

- a new file, or one put in place by a rename (new inode, new ctime);
- a file rewritten in place, even to the same size and with its mtime set back by
  `touch -d` or os.utime: the kernel moves ctime on every write and every utime, and
  nobody can set ctime back (short of changing the system clock);
- a file restored from a backup with its old times (cp -p, rsync -t): new ctime.

What it cannot catch on its own, and what covers it: a file rewritten to the same size
in the same tick of the file system's clock as the moment it was read (ctime has a
granularity of a few milliseconds on Linux). So a record is kept only for files whose
ctime is older than the pass's start, read on the file system's own clock (a hidden
marker file, `.publisher-scan`, touched before the first file is read); a file changed
in the tick the pass started is recorded without its stat and read again next pass. On
a file system without a real ctime (some network and FUSE mounts) edits in place are
caught by mtime and size only.

Why folders are still listed: a folder's mtime moves when an entry is added, removed or
renamed in it, but not when a file inside is rewritten in place, so skipping a folder by
its mtime would miss an edit made with an editor that writes in place. Listing and
stat-ing costs a few microseconds a file, and nothing is read or hashed; the daemon does
even less: its file events name the paths that changed (`only`), and nothing else is
listed at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from stat import S_ISDIR, S_ISREG

from publisher.ingest.files import QUARANTINE
from publisher.store.inbox_files import FileStat, SeenFile

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
        wanted.append(Path(path))
    return sorted(wanted), unchanged




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
        if name.startswith(".") or name.endswith("~") or (top and name == QUARANTINE):
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
