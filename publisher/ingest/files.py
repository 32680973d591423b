"""Ingest stage, the inbox's edge: which entries are candidates, reading one without ever
leaving the inbox, and the quarantine.

Nothing outside the inbox is ever read. A symbolic link (to a file or a folder), a hard
link to a file elsewhere, and anything that is not a regular file (a FIFO would block
the pass for ever) are quarantined with the reason; each file is opened component by
component with O_NOFOLLOW, so a link swapped in after the listing is refused too.

A quarantined file keeps NAME.error beside it with the reason and the file's size and
modification time. A file quarantined while still being written (its writer goes on
into the same open file, now in quarantine/), or one fixed there by hand, differs from
that record on a later pass and is moved back to its place and read again.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from publisher.errors import Gone, InputError

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"
ERROR_SUFFIX = ".error"
NAME_BYTES = 255 - len(ERROR_SUFFIX)  # NAME.error must fit a file name too
STAT_LINE = "stat: "
FROM_LINE = "from: "
LINK = ("is a symbolic link: the inbox takes files only, never links (nothing outside "
        "the inbox is read)")
NOT_REGULAR = "not a regular file (a FIFO, socket or device): the inbox takes files only"


class Vanished(Gone):
    """The file went away between the listing and the reading: nothing to do."""


def inbox_files(inbox: Path) -> Iterator[Path]:
    """Every candidate entry, in a stable order: files, and the links and special files
    that are refused. Hidden entries, editor backups (NAME~) and quarantine/ are skipped;
    folders are entered, linked ones never."""
    if not inbox.is_dir():
        return iter(())
    return iter(sorted(walk(inbox, top=True)))


def walk(folder: Path, top: bool = False) -> Iterator[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:  # removed or unreadable since the listing above it
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith("~") or \
                (top and entry.name == QUARANTINE):
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from walk(Path(entry.path))
        else:
            yield Path(entry.path)


def key_of(path: Path, inbox: Path) -> str:
    """The file's name in the store: its path under the inbox."""
    # By the strings first: pathlib's relative_to cost more than reading a small file.
    text, base = str(path), str(inbox)
    if os.sep == "/" and text.startswith(base + "/") and len(text) > len(base) + 1:
        return text[len(base) + 1:]
    return path.relative_to(inbox).as_posix()


def check_entry(path: Path, key: str) -> None:
    """Refuse what is not a plain file with a UTF-8 name before anything else is said
    about it (read_inbox_file checks again as it opens: the entry may change)."""
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(printable(key), "the file name is not valid UTF-8: rename it "
                                         "(the name is part of its articles' ids)") from None
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError as exc:
        raise Vanished(key) from exc
    if stat.S_ISLNK(mode):
        raise InputError(key, LINK)
    if not stat.S_ISREG(mode):
        raise InputError(key, NOT_REGULAR)


def read_inbox_file(inbox: Path, path: Path, key: str, max_bytes: int,
                    folders: Folders | None = None) -> tuple[bytes, os.stat_result]:
    """The file's bytes, read through no link, and its stat as it was opened;
    InputError says why it cannot be read, Vanished when it is gone. `folders`: the
    pass's open folders (its key is then the path under the inbox)."""
    try:
        if folders is not None:
            fd = folders.open(tuple(key.split("/")))
        else:
            fd = open_below(inbox, tuple(key_of(path, inbox).split("/")))
    except FileNotFoundError as exc:
        raise Vanished(key) from exc
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) or path.is_symlink():
            raise InputError(key, LINK) from exc
        if not path.is_file():
            raise InputError(key, NOT_REGULAR) from exc
        raise InputError(key, f"cannot be opened ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(key, NOT_REGULAR)
        if info.st_nlink > 1:
            raise InputError(key, "has other hard links, so it may be a file outside the "
                                  "inbox: copy it in instead of linking it")
        # As many bytes as it has (one more shows it grew): asking for max_bytes + 1
        # allocates that much for every file, which cost more than the read.
        # Read by os.read: a buffered file object per file cost more than the read.
        size = min(info.st_size, max_bytes) + 1
        data = os.read(fd, size)
        if len(data) < size - 1:  # short of its size: it shrank, or the read was cut
            data = read_on(fd, data, size)
        if len(data) == size and size <= max_bytes:  # it grew since: read on to the limit
            data = read_on(fd, data, max_bytes + 1)
        return checked_bytes(data, key, max_bytes), info
    finally:
        os.close(fd)


def read_on(fd: int, data: bytes, size: int) -> bytes:
    """`data` and what follows it, up to `size` bytes in all or the end of the file."""
    parts, got = [data], len(data)
    while got < size and (more := os.read(fd, size - got)):
        parts.append(more)
        got += len(more)
    return b"".join(parts)


FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY


def open_below(inbox: Path, parts: tuple[str, ...]) -> int:
    """A read-only descriptor for inbox/parts..., following no symbolic link on the way
    (O_NOFOLLOW at every step) and never blocking on a FIFO (O_NONBLOCK)."""
    fd = open_folder(inbox, parts[:-1])
    try:
        return os.open(parts[-1], FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def open_folder(inbox: Path, parts: tuple[str, ...]) -> int:
    """A descriptor for the folder inbox/parts..., opened through no link."""
    fd = os.open(inbox, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for folder in parts:
            inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


class Folders:
    """The folder a pass is reading files in, kept open while it reads them (they come
    in order, a folder's together): a file costs one open, not one per folder on its path.
    A folder swapped for a link after it was opened is not followed: its files are read
    from the folder that was opened, as a file opened before such a swap would be."""

    def __init__(self, inbox: Path):
        self.inbox = inbox
        self.parts: tuple[str, ...] | None = None
        self.fd: int | None = None

    def __enter__(self) -> Folders:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self, parts: tuple[str, ...]) -> int:
        """A read-only descriptor for inbox/parts..., as open_below gives."""
        if parts[:-1] != self.parts or self.fd is None:
            self.close()
            self.fd = open_folder(self.inbox, parts[:-1])
            self.parts = parts[:-1]
        return os.open(parts[-1], FILE_FLAGS, dir_fd=self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
        self.fd, self.parts = None, None


def checked_bytes(data: bytes, key: str, max_bytes: int) -> bytes:
    if len(data) > max_bytes:
        raise InputError(key, f"file is over the limit of {max_bytes:,} bytes "
                              "([ingest] max_bytes)")
    if not data.strip():
        raise InputError(key, "empty file")
    return data


def printable(name: str) -> str:
    """A file name for messages, with undecodable bytes shown as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def quarantine(path: Path, inbox: Path, reason: str, now: datetime) -> Path:
    """Move a bad entry aside with NAME.error saying why; never overwrite an earlier one.
    OSError when quarantine/ is not a folder of the inbox's own (a file, a link)."""
    folder = inbox / QUARANTINE
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise NotADirectoryError(f"{folder} is not a folder (a file or a link)")
    target = free_name(folder / path.relative_to(inbox), now)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(folder.resolve()):
        raise NotADirectoryError(f"{target.parent} leads out of the quarantine (a link)")
    path.replace(target)
    info, key = target.lstat(), key_of(path, inbox)
    record = f"{reason}\nquarantined at {now.isoformat()}\n"
    if key == printable(key):  # a name that is not UTF-8 is never put back
        record += f"{FROM_LINE}{key}\n{STAT_LINE}{info.st_size} {info.st_mtime_ns}\n"
    error_file(target).write_text(record, encoding="utf-8", errors="backslashreplace")
    log.warning("quarantined %s: %s", printable(key_of(path, inbox)), reason)
    return target


def free_name(target: Path, now: datetime) -> Path:
    """The target, or a name beside it that is free; short enough for NAME.error."""
    for attempt in range(1000):
        tag = "" if attempt == 0 else f".{now:%Y%m%dT%H%M%S}" + (f"-{attempt}" if attempt > 1
                                                                else "")
        candidate = target.parent / fitting(target.name, tag)
        if not os.path.lexists(candidate):
            return candidate
    raise InputError(target.name, "no free name for it in quarantine/")


def fitting(name: str, tag: str) -> str:
    """NAME with `tag` before its suffix, its stem cut (and a hash of the whole name
    added) when that is too long for a file name with .error after it."""
    suffix = Path(name).suffix
    stem = name[:len(name) - len(suffix)]
    if len(os.fsencode(stem + tag + suffix)) <= NAME_BYTES:
        return stem + tag + suffix
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    tail = f"-{digest}{tag}{suffix}"
    if len(os.fsencode(tail)) > NAME_BYTES // 2:
        tail = f"-{digest}{tag}"
    return os.fsdecode(os.fsencode(stem)[:NAME_BYTES - len(os.fsencode(tail))]) + tail


def error_file(target: Path) -> Path:
    return target.with_name(target.name + ERROR_SUFFIX)


def release_changed(inbox: Path) -> int:
    """Move quarantined files that changed since they were quarantined back to their
    place in the inbox, to be read again; how many."""
    released = 0
    folder = inbox / QUARANTINE
    if not folder.is_dir() or folder.is_symlink():
        return 0
    for record in sorted(folder.rglob(f"*{ERROR_SUFFIX}")):
        target = record.with_name(record.name[:-len(ERROR_SUFFIX)])
        released += release(inbox, target, record)
    return released


def release(inbox: Path, target: Path, record: Path) -> int:
    try:
        lines = record.read_text(encoding="utf-8", errors="replace").splitlines()
        info = target.lstat()
    except OSError:
        return 0
    noted = {line.split(": ", 1)[0]: line.split(": ", 1)[1]
             for line in lines[1:] if ": " in line}
    was = noted.get(STAT_LINE.strip(": "))
    origin = noted.get(FROM_LINE.strip(": "))
    if not was or not origin or not stat.S_ISREG(info.st_mode) or \
            was == f"{info.st_size} {info.st_mtime_ns}":
        return 0
    place = inbox / origin
    if place.exists() or place.is_symlink() or not place.resolve().is_relative_to(inbox):
        return 0
    place.parent.mkdir(parents=True, exist_ok=True)
    target.replace(place)
    record.unlink()
    log.info("%s changed in quarantine; reading it again", origin)
    return 1
