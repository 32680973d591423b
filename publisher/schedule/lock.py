"""Schedule: the run lock, so two passes (cron runs, or a run and the daemon) never overlap.

On SQLite the lock is `flock` on `<database>.lock` beside the database file: the kernel
drops it when the process dies, so a crashed run can never leave a stale lock behind. On
PostgreSQL, where runs may come from several machines, it is a session-level advisory
lock held on a connection of its own for as long as the run lasts; the server drops it
when that connection ends. Either way the holder leaves a note saying who it is and since
when, so a second run can say who it waited for.

A process forked while the lock is held (a build's shares) drops its copy of the lock's
descriptor at once: a copy would keep the flock, or the PostgreSQL session, alive after
the holder died, and the next run would find the lock held by an orphan.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from publisher.clock import Clock, system_clock

log = logging.getLogger(__name__)

# Any constant shared by every node; distinct from the store's migration lock key.
RUN_LOCK_KEY = 0x5075626C6972
APPLICATION_PREFIX = "publisher "


# Locks held by this process, so a forked child can let go of its copies.
HELD: weakref.WeakSet = weakref.WeakSet()


def forget_in_child() -> None:
    """After fork, in the child: point each held lock's descriptor at /dev/null. dup2
    rather than close, so the number stays valid for any library that still has it."""
    for lock in list(HELD):
        lock.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=forget_in_child)


def blank_descriptor(fd: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


class Busy(Exception):
    """The lock is held by another run; `holder` says by whom, when known."""

    def __init__(self, holder: str):
        self.holder = holder
        super().__init__(f"another run is active ({holder})" if holder
                         else "another run is active")


class RunLock(Protocol):
    def acquire(self) -> None:
        """Take the lock now or raise Busy; never waits."""

    def release(self) -> None: ...

    def still_held(self) -> bool:
        """False when the lock was lost under us (a PostgreSQL connection that dropped)."""


def holder_note(now: datetime) -> str:
    now = now.astimezone(UTC)
    return f"pid {os.getpid()} on {socket.gethostname()} since {now:%Y-%m-%dT%H:%M:%SZ}"


class FileLock:
    """flock(2) on a file beside the SQLite database; the note is the file's content."""

    def __init__(self, path: Path, clock: Clock = system_clock):
        self.path = path
        self.clock = clock
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(self.read_note()) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder_note(self.clock()) + "\n").encode(), 0)
        self.fd = fd
        HELD.add(self)

    def forget(self) -> None:
        """In a forked child: drop this copy of the descriptor, never unlocking."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def read_note(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return ""

    def still_held(self) -> bool:
        return self.fd is not None  # flock lasts as long as the descriptor

    def release(self) -> None:
        if self.fd is None:
            return
        # Empty the note first: a reader never sees the name of a run that has ended.
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
        HELD.discard(self)


class AdvisoryLock:
    """pg_try_advisory_lock on a dedicated autocommit connection, held for the run.

    The note goes into the connection's application_name, which any other session can
    read from pg_stat_activity next to the lock in pg_locks.
    """

    def __init__(self, engine: Engine, key: int = RUN_LOCK_KEY, clock: Clock = system_clock):
        self.engine = engine
        self.key = key
        self.clock = clock
        self.conn: Connection | None = None

    def acquire(self) -> None:
        # Autocommit: the lock is held by the session, and no transaction stays open
        # for the length of the run (an idle transaction would hold back vacuum).
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                               {"key": self.key}).scalar_one()
            if not got:
                holder = self.read_note(conn)
                conn.close()
                raise Busy(holder)
            note = (APPLICATION_PREFIX + holder_note(self.clock()))[:63]  # NAMEDATALEN - 1
            conn.execute(text("SELECT set_config('application_name', :note, false)"),
                         {"note": note})
        except Busy:
            raise
        except Exception:
            conn.close()
            raise
        self.conn = conn
        HELD.add(self)

    def forget(self) -> None:
        """In a forked child: this copy of the session's socket goes, without a word to
        the server (that would end the parent's session); the objects stay unused."""
        if self.conn is None:
            return
        try:
            fd = self.conn.connection.dbapi_connection.fileno()
        except Exception:  # no socket to speak of
            fd = -1
        if fd >= 0:
            blank_descriptor(fd)
        self.inherited, self.conn = self.conn, None  # kept, so never finalized here

    def read_note(self, conn: Connection) -> str:
        classid, objid = self.key >> 32, self.key & 0xFFFFFFFF
        row = conn.execute(text(
            "SELECT a.application_name FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            # Advisory locks are per database: another database's holder is not ours.
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = :classid AND l.objid = :objid AND l.objsubid = 1"),
            {"classid": classid, "objid": objid}).first()
        name = row[0] if row else ""
        return name.removeprefix(APPLICATION_PREFIX) if name else ""

    def still_held(self) -> bool:
        if self.conn is None:
            return False
        classid, objid = self.key >> 32, self.key & 0xFFFFFFFF
        try:
            return bool(self.conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND pid = pg_backend_pid() AND classid = :classid AND objid = :objid "
                "AND objsubid = 1"), {"classid": classid, "objid": objid}).scalar())
        except Exception:  # the connection is gone, and the lock with it
            log.debug("run lock check failed", exc_info=True)
            return False

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        except Exception:  # the session is gone already, and the lock with it
            log.debug("run lock release failed", exc_info=True)
        finally:
            # Never hand this session back to the pool: whatever happened above, ending
            # it ends the lock and the note with it.
            self.conn.invalidate()
            self.conn.close()
            self.conn = None
            HELD.discard(self)


def run_lock(engine: Engine, clock: Clock = system_clock) -> RunLock:
    """The lock that fits the database: a file beside SQLite, an advisory lock on PG.
    The clock dates the holder's note."""
    url = make_url(engine.url)
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(engine, clock=clock)
    database = url.database
    if not database or database == ":memory:":
        raise ValueError("the run lock needs a database file, not an in-memory database")
    return FileLock(Path(database).with_name(Path(database).name + ".lock"), clock)
