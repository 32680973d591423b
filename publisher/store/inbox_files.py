"""Store: statements for the inbox files ingest has read: each file's hash, its number
of articles, and its stat as it was read, so a later pass reads only what changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from publisher.store.schema import inbox_files

if TYPE_CHECKING:
    from publisher.store import Store
    from publisher.store.articles import FilePlan

# (size, mtime_ns, ctime_ns, inode) of a file as it was read.
FileStat = tuple[int, int, int, int]


class SeenFile(NamedTuple):
    sha256: str
    articles: int
    stat: FileStat | None  # None: read it again on the next pass


class InboxFileStore:
    def __init__(self, store: Store):
        self.store = store

    def seen(self, paths: Sequence[str] | None = None) -> dict[str, SeenFile]:
        """The inbox files recorded so far (all, or those at `paths`), by path."""
        c = inbox_files.c
        query = select(c.path, c.sha256, c.articles, c.size, c.mtime_ns, c.ctime_ns, c.inode)
        with self.store.reading() as conn:
            if paths is None:
                rows = conn.execute(query).all()
            else:
                rows = [row for start in range(0, len(paths), 5000) for row in conn.execute(
                    query.where(c.path.in_(list(paths[start:start + 5000]))))]
        return {path: SeenFile(sha, count, None if size is None else (size, mtime, ctime, ino))
                for path, sha, count, size, mtime, ctime, ino in rows}

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


def record_files(conn: Connection, plans: Sequence[FilePlan], now: datetime) -> None:
    """Record the files of stored plans (in the transaction that stores their articles)."""
    paths = [plan.path for plan in plans]
    for start in range(0, len(paths), 5000):  # under SQLite's bound-parameter limit
        conn.execute(delete(inbox_files).where(inbox_files.c.path.in_(paths[start:start + 5000])))
    conn.execute(insert(inbox_files), [
        {"path": plan.path, "sha256": plan.sha256, "articles": plan.count, "seen_at": now,
         "size": None, "mtime_ns": None, "ctime_ns": None, "inode": None}
        | stat_column_values(plan.stat) for plan in plans])


def stat_values(stat: FileStat | None) -> dict:
    size, mtime, ctime, inode = stat or (None, None, None, None)
    return {"s": size, "m": mtime, "c": ctime, "i": inode}


def stat_column_values(stat: FileStat | None) -> dict:
    if stat is None:
        return {}
    size, mtime, ctime, inode = stat
    return {"size": size, "mtime_ns": mtime, "ctime_ns": ctime, "inode": inode}
