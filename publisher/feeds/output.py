"""Feeds stage, output: the publish folder, written atomically and only where bytes change.

Every file is written to a temporary file in its own folder and renamed over the old
one, so a web server never serves half a feed. A file whose bytes would not change is
left alone, so its mtime (and the ETag and Last-Modified a server derives from it) stays
put and feed readers polling with conditional GET get 304s.

A manifest (.publisher-manifest.json in the folder) remembers, for each file, a key of
everything it was rendered from, and its size and mtime after writing. A build of a
change adds its records to a journal beside it instead of writing it whole. When the key and
the file on disk still match, the file is not even rendered again: this is what keeps a
second build of 100,000 pages cheap. A lost or damaged manifest only costs time: every
file is rendered and compared byte for byte again. Files are not fsynced one by one (a
build can write 100,000 of them); after a crash the rename leaves each file whole, old
or new, and the size check sends anything short back through the renderer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

MANIFEST = ".publisher-manifest.json"
MANIFEST_VERSION = 1
# What builds of a change add to the manifest, a JSON line each, instead of writing
# 100,000 records again; a full build (or a journal grown past a quarter of the
# manifest) folds it in.
JOURNAL = ".publisher-manifest.log"
MIN_JOURNAL = 1 << 20


def file_mode() -> int:
    """What open() would give a new file: mkstemp's 0600 would hide it from a web server.
    Read once at import, before any thread could create files under a changed umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = file_mode()


class OutputShare(NamedTuple):
    """What a share of a build (a forked process) wrote, for the parent's Output."""

    written: list[str]
    unchanged: int
    records: dict[str, tuple[str, int, int]]


class Output:
    """The publish folder of one build; counts what it wrote and what it left alone."""

    def __init__(self, folder: Path, records: dict[str, tuple[str, int, int]] | None = None):
        """With `records` (a build of what changed: those of the files it may touch),
        the manifest is not read, and save() adds to its journal."""
        self.folder = folder
        self.root = str(folder)  # os.stat on a joined str: pathlib's / costs more per file
        self.partial = records is not None
        self.records: dict[str, tuple[str, int, int]] = (
            dict(records) if records is not None else load_manifest(folder))
        self.written: list[str] = []
        self.unchanged = 0
        self.mode = FILE_MODE
        self.folders: set[Path] = set()
        self.changed = False  # whether the manifest needs writing
        self.updated: dict[str, tuple[str, int, int]] = {}  # records set by this build

    @classmethod
    def share_of(cls, output: Output) -> Output:
        """An Output for part of `output`'s build (in a forked process): the same folder
        and manifest, its own counts."""
        share = cls.__new__(cls)
        share.__dict__.update(output.__dict__, written=[], unchanged=0, updated={},
                              changed=False)
        return share

    def share(self) -> OutputShare:
        return OutputShare(self.written, self.unchanged, self.updated)

    def absorb(self, share: OutputShare) -> None:
        """Count what a share of this build wrote as written by this Output."""
        self.written += share.written
        self.unchanged += share.unchanged
        self.records.update(share.records)
        self.updated.update(share.records)
        self.changed = self.changed or bool(share.records)

    def fresh(self, path: str, key: str) -> bool:
        """True (and counted as unchanged) when `path` was rendered from `key` and is
        still on disk exactly as written."""
        record = self.records.get(path)
        if record is None or record[0] != key:
            return False
        try:
            stat = os.stat(f"{self.root}/{path}")
        except OSError:
            return False
        if stat.st_size != record[1] or stat.st_mtime_ns != record[2]:
            return False
        self.unchanged += 1
        return True

    def put(self, path: str, key: str, data: bytes) -> bool:
        """Write `data` to `path` unless the file holds those bytes already; True if written."""
        # Paths as str and os calls: pathlib's objects cost more than the system calls
        # in a build that writes 100,000 files.
        target = self.target(path)
        if same_bytes(target, data):
            self.unchanged += 1
            stat = os.stat(target)
            changed = False
        else:
            self.make_folder(target.rpartition("/")[0])
            stat = write_atomic(target, data, self.mode)
            self.written.append(path)
            changed = True
        # Tuples of plain values: the garbage collector stops tracking them, which keeps
        # its passes short in a build that holds 100,000 records.
        record = (key, stat.st_size, stat.st_mtime_ns)
        if self.records.get(path) != record:
            self.records[path] = self.updated[path] = record
            self.changed = True
        return changed

    def target(self, path: str) -> str:
        parts = path.split("/")
        if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"refusing to write outside the publish folder: {path!r}")
        return f"{self.root}/{path}"

    def make_folder(self, folder: str | Path) -> None:
        if folder not in self.folders:
            os.makedirs(folder, exist_ok=True)
            self.folders.add(folder)

    def save(self) -> None:
        """Record what this build left in the folder, for the next build (a build that
        changed nothing leaves the manifest alone too)."""
        if self.partial:
            self.save_journal()
            return
        if not self.changed and (self.folder / MANIFEST).exists() \
                and not (self.folder / JOURNAL).exists():
            return
        self.write_manifest(self.records)  # with the journal folded in

    def write_manifest(self, records: dict[str, tuple[str, int, int]]) -> None:
        self.make_folder(self.folder)
        data = json.dumps({"version": MANIFEST_VERSION, "files": records},
                          separators=(",", ":"), sort_keys=True).encode()
        write_atomic(self.folder / MANIFEST, data, self.mode)
        with contextlib.suppress(FileNotFoundError):  # folded in now
            os.unlink(self.folder / JOURNAL)

    def save_journal(self) -> None:
        """Append this build's records to the journal; fold it into the manifest once it
        has grown past a quarter of it (so the journal costs reads a bounded share)."""
        if not self.updated:
            return
        journal = self.folder / JOURNAL
        line = json.dumps(self.updated, separators=(",", ":"), sort_keys=True) + "\n"
        with open(journal, "a", encoding="utf-8") as file:
            file.write(line)
        try:
            size, base = journal.stat().st_size, (self.folder / MANIFEST).stat().st_size
        except OSError:
            return
        if size > max(MIN_JOURNAL, base // 4):
            self.write_manifest(load_manifest(self.folder))


def load_manifest(folder: Path) -> dict[str, tuple[str, int, int]]:
    """The manifest with its journal's records on top (a line cut short by a kill, or
    damaged, is skipped: it only costs a file compared again)."""
    records = load_base(folder / MANIFEST)
    try:
        with open(folder / JOURNAL, encoding="utf-8") as journal:
            lines = journal.readlines()
    except (OSError, ValueError):
        return records
    for line in lines:
        try:
            added = json.loads(line)
        except ValueError:
            continue
        if isinstance(added, dict):
            records.update((path, tuple(record)) for path, record in added.items()
                           if isinstance(record, list) and len(record) == 3)
    return records


def load_base(path: Path) -> dict[str, tuple[str, int, int]]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring the unreadable build manifest %s (%s); every file will be "
                    "rendered and compared again", path, exc)
        return {}
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION \
            or not isinstance(data.get("files"), dict):
        return {}
    return {path: tuple(record) for path, record in data["files"].items()
            if isinstance(record, list) and len(record) == 3}


def same_bytes(path: str, data: bytes) -> bool:
    try:
        if os.stat(path).st_size != len(data):
            return False
        with open(path, "rb") as file:
            return file.read() == data
    except OSError:
        return False


def write_atomic(path: str | Path, data: bytes, mode: int) -> os.stat_result:
    """Temp file in the same folder, then rename: readers see the old file or the new.
    Returns the new file's stat (a rename keeps its size and mtime).

    The temporary name carries the process id, so two processes never share one; the
    file is created with its final mode (no chmod), which saves system calls on a build
    that writes 100,000 files."""
    folder, _, name = os.fspath(path).rpartition("/")
    temporary = f"{folder}/.{name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        handle = os.open(temporary, flags, mode)
    except FileExistsError:
        # Left by a crashed run with our pid, or another thread of this process:
        # fall back to a random name.
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        os.chmod(temporary, mode)
    try:
        with os.fdopen(handle, "wb", buffering=0) as file:
            view = memoryview(data)
            while view:
                view = view[file.write(view):]
            stat = os.fstat(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return stat
