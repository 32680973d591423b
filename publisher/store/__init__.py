"""Store: the only code that talks to the database (SQLAlchemy Core, SQLite or PostgreSQL).

`Store` opens the engine, upgrades the schema, and hands out one small repository per
concern (articles, inbox files, runs, ...), each in its own module and each owning the
statements it needs. Write transactions on SQLite begin IMMEDIATE so two processes
queue behind the busy timeout instead of failing on a lock upgrade.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from publisher.clock import Clock, system_clock
from publisher.errors import StoreError
from publisher.store.accounts import AccountStore
from publisher.store.api_queries import ApiQueries
from publisher.store.api_tokens import ApiTokenStore
from publisher.store.archive_entries import ArchiveEntryStore
from publisher.store.articles import ArticleStore
from publisher.store.bounces import BounceStore
from publisher.store.browse import BrowseStore
from publisher.store.bulk import compact_json
from publisher.store.challenges import ChallengeStore
from publisher.store.dashboard import DashboardStore
from publisher.store.editions import EditionStore
from publisher.store.events import EventStore
from publisher.store.inbox_files import InboxFileStore
from publisher.store.ledger import LedgerStore
from publisher.store.migrate import upgrade
from publisher.store.notes import NoteStore
from publisher.store.runs import RunStore
from publisher.store.sources import SourceStore
from publisher.store.status import StatusStore
from publisher.store.subscribers import SubscriberStore

log = logging.getLogger(__name__)

SQLITE_BUSY_MS = 30_000
SQLITE_WAL_KEEP_BYTES = 64 << 20
# Any constant shared by every node; pg_advisory_xact_lock keys are 64-bit integers.
MIGRATION_LOCK_KEY = 0x5075626C6973


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.articles = ArticleStore(self)
        self.inbox_files = InboxFileStore(self)  # what ingest has read
        self.archive_entries = ArchiveEntryStore(self)
        self.runs = RunStore(self)
        self.subscribers = SubscriberStore(self)
        self.sources = SourceStore(self)
        self.status = StatusStore(self)
        self.ledger = LedgerStore(self)
        self.events = EventStore(self)
        self.api_tokens = ApiTokenStore(self)
        self.api = ApiQueries(self)
        self.accounts = AccountStore(self)  # the console's operators, sessions, audit
        self.browse = BrowseStore(self)
        self.dashboard = DashboardStore(self)
        self.bounces = BounceStore(self)
        self.challenges = ChallengeStore(self)  # [web] challenge: solutions spent
        self.notes = NoteStore(self)  # editor's notes, digests for their web pages
        self.editions = EditionStore(self)  # mail an editor wrote, and its outbox rows

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    def forked(self) -> None:
        """In a forked child: new connections from here on, the parent's left to it.
        The parent's pool is kept referenced, so its connections are never finalized
        here (closing an inherited SQLite handle or socket would act on the parent's)."""
        self.inherited_pool = self.engine.pool
        self.engine.dispose(close=False)


def open_store(url: str, announce: Callable[[str], None] | None = None,
               clock: Clock = system_clock) -> Store:
    """Open (creating or upgrading as needed) the database at `url`."""
    try:
        engine = make_engine(url)
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            if engine.dialect.name == "postgresql":
                # Two nodes starting at once must not both create the tables.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": MIGRATION_LOCK_KEY})
            upgrade(conn, announce=announce or log.warning, clock=clock)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the database {safe_url(url)}: "
                         f"{str(exc.orig or exc).splitlines()[0]}") from exc
    return Store(engine)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000},
                               json_serializer=compact_json)
        event.listen(engine, "connect", sqlite_on_connect)
        event.listen(engine, "begin", sqlite_on_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=compact_json)


def sqlite_on_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own is deferred only).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint
    cursor.execute("PRAGMA foreign_keys=ON")
    # A first feeds build writes 100s of MB of rendered entries through the log; let the
    # log file shrink back once checkpointed instead of keeping that size for good.
    cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_KEEP_BYTES}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


def sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "(unparsable URL)"
