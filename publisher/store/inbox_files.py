"""Store: statements for the inbox files ingest has read: each file's hash, its number
of articles, and its stat as it was read, so a later pass reads only what changed; the
inbox folders a pass listed, with their stat, so a later pass lists only the folders
that changed; and where the rotating re-check of files goes on (publisher/ingest/scan.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from publisher.store.bulk import BulkInsert, among
from publisher.store.schema import inbox_files, inbox_folders, inbox_scan

if TYPE_CHECKING:
    from publisher.store import Store
    from publisher.store.articles import FilePlan

# (size, mtime_ns, ctime_ns, inode) of a file as it was read.
FileStat = tuple[int, int, int, int]
# (mtime_ns, ctime_ns, inode) of a folder as it was listed.
FolderStat = tuple[int, int, int]
CHUNK = 5000  # keys in one IN (...): under SQLite's bound-parameter limit


class SeenFile(NamedTuple):
    sha256: str
    articles: int
    stat: FileStat | None  # None: read it again on the next pass


class InboxFileStore:
    def __init__(self, store: Store):
        self.store = store

    def seen(self, paths: Sequence[str] | None = None) -> dict[str, SeenFile]:
        """The inbox files recorded so far (all, or those at `paths`), by path."""
        with self.store.reading() as conn:
            if paths is None:
                return seen_rows(conn.execute(SEEN).all())
            paths = storable(paths)
            return seen_rows([row for start in range(0, len(paths), CHUNK)
                              for row in conn.execute(SEEN.where(among(
                                  conn.dialect.name, inbox_files.c.path,
                                  paths[start:start + CHUNK])))])

    def stats(self, paths: Sequence[str]) -> dict[str, FileStat | None]:
        """The recorded stat of the files at `paths` (None: read it again)."""
        paths = storable(paths)
        with self.store.reading() as conn:
            return {row[0]: stat_of_row(row) for start in range(0, len(paths), CHUNK)
                    for row in conn.execute(STATS.where(among(
                        conn.dialect.name, inbox_files.c.path, paths[start:start + CHUNK])))}

    def stats_in(self, folder: str, names: Sequence[str]) -> dict[str, FileStat | None]:
        """The recorded stat of the files `names` right in `folder` ("": the inbox
        itself). SQLite: a range of the path index, cheaper than thousands of names;
        elsewhere by name (a collation may not sort "/" right before "0")."""
        if not folder or self.store.dialect != "sqlite":
            return self.stats(names)
        c = inbox_files.c
        start, depth = f"{folder}/", folder.count("/") + 1
        with self.store.reading() as conn:
            rows = conn.execute(STATS.where(c.path > start, c.path < f"{folder}0")).all()
        return {row[0]: stat_of_row(row) for row in rows if row[0].count("/") == depth}

    def pending(self) -> list[str]:
        """The files recorded without a stat: read again on the next pass, wherever they
        are (a partial index finds them without looking at the others)."""
        with self.store.reading() as conn:
            return list(conn.execute(select(inbox_files.c.path)
                                     .where(inbox_files.c.size.is_(None))).scalars())

    def recheck(self, count: int) -> tuple[dict[str, FileStat | None], str | None]:
        """The next `count` files of the rotating re-check, in path order after where the
        last one ended, wrapping round; and the path to go on after next time (None:
        where it was)."""
        if count <= 0:
            return {}, None
        c = inbox_files.c
        with self.store.reading() as conn:
            after = conn.execute(select(inbox_scan.c.after)).scalar() or ""
            rows = conn.execute(STATS.where(c.path > after).order_by(c.path).limit(count)).all()
            if len(rows) < count:  # round again from the first file, up to where we began
                rows += conn.execute(STATS.where(c.path <= after).order_by(c.path)
                                     .limit(count - len(rows))).all()
        end = rows[-1][0] if rows else after
        return {row[0]: stat_of_row(row) for row in rows}, (end if end != after else None)

    def articles_total(self) -> int:
        """The articles in every file recorded (kept as files are recorded)."""
        with self.store.reading() as conn:
            return max(0, conn.execute(select(inbox_scan.c.articles)).scalar() or 0)

    def folders(self) -> dict[str, FolderStat | None]:
        """Every inbox folder a pass listed, with its stat then (None: list it again)."""
        c = inbox_folders.c
        with self.store.reading() as conn:
            rows = conn.execute(select(c.path, c.mtime_ns, c.ctime_ns, c.inode)).all()
        return {path: None if mtime is None else (mtime, ctime, inode)
                for path, mtime, ctime, inode in rows}

    def save_scan(self, folders: dict[str, FolderStat | None], gone: Sequence[str],
                  cursor: str | None) -> None:
        """A pass's folder records (new or changed ones; `gone`: folders no longer
        there) and where the next re-check goes on, in one transaction."""
        if not folders and not gone and cursor is None:
            return
        c = inbox_folders.c
        with self.store.writing() as conn:
            changed = [*folders, *gone]
            for start in range(0, len(changed), CHUNK):
                conn.execute(delete(inbox_folders).where(
                    c.path.in_(changed[start:start + CHUNK])))
            if folders:
                conn.execute(insert(inbox_folders), [
                    dict(zip(("path", "mtime_ns", "ctime_ns", "inode"),
                             (path, *(stat or (None, None, None))), strict=True))
                    for path, stat in folders.items()])
            if cursor is not None:
                conn.execute(update(inbox_scan).values(after=cursor))

    def record_stats(self, stats: Sequence[tuple[str, FileStat | None]]) -> None:
        """New stats for files whose bytes were read again and had not changed (one
        statement for them all)."""
        if not stats:
            return
        query = (update(inbox_files).where(inbox_files.c.path == bindparam("key"))
                 .values(size=bindparam("s"), mtime_ns=bindparam("m"),
                         ctime_ns=bindparam("c"), inode=bindparam("i")))
        with self.store.writing() as conn:
            conn.execute(query, [dict(key=path, **stat_values(stat)) for path, stat in stats])


STATS = select(inbox_files.c.path, inbox_files.c.size, inbox_files.c.mtime_ns,
               inbox_files.c.ctime_ns, inbox_files.c.inode)


def storable(paths: Sequence[str]) -> list[str]:
    """The paths that can be in the store: a name that is not UTF-8 never is (reading
    such a file quarantines it), and cannot even be asked about."""
    return [path for path in paths if path.isascii() or utf8(path)]


def utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def stat_of_row(row) -> FileStat | None:
    return None if row[1] is None else (row[1], row[2], row[3], row[4])


SEEN = select(inbox_files.c.path, inbox_files.c.sha256, inbox_files.c.articles,
              inbox_files.c.size, inbox_files.c.mtime_ns, inbox_files.c.ctime_ns,
              inbox_files.c.inode)


def seen_rows(rows) -> dict[str, SeenFile]:
    return {path: SeenFile(sha, count, None if size is None else (size, mtime, ctime, ino))
            for path, sha, count, size, mtime, ctime, ino in rows}


def record_files(conn: Connection, plans: Sequence[FilePlan], now: datetime) -> None:
    """Record the files of stored plans (in the transaction that stores their articles)."""
    paths = [plan.path for plan in plans]
    before = 0  # the articles the files had, for inbox_scan's total
    for start in range(0, len(paths), CHUNK):
        chunk = among(conn.dialect.name, inbox_files.c.path, paths[start:start + CHUNK])
        before += conn.execute(select(func.coalesce(func.sum(inbox_files.c.articles), 0))
                               .where(chunk)).scalar()
        conn.execute(delete(inbox_files).where(chunk))
    conn.execute(update(inbox_scan).values(
        articles=inbox_scan.c.articles + sum(plan.count for plan in plans) - before))
    FILE_ROWS.execute(conn, [(plan.path, plan.sha256, plan.count, now,
                              *(plan.stat or NO_STAT)) for plan in plans])


# A file's row as it is recorded, handed to the driver as it is (bulk.py).
FILE_ROWS = BulkInsert(inbox_files, ("path", "sha256", "articles", "seen_at", "size",
                                     "mtime_ns", "ctime_ns", "inode"))
NO_STAT = (None, None, None, None)


def stat_values(stat: FileStat | None) -> dict:
    size, mtime, ctime, inode = stat or (None, None, None, None)
    return {"s": size, "m": mtime, "c": ctime, "i": inode}

