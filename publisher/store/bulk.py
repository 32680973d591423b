"""Store: many rows at once: inserted with their values already in the driver's form,
and looked up by many keys bound as one parameter.

An executemany through SQLAlchemy runs every value of every row through its column
type's processing and builds a parameter dict per row (construct_params): for ingest's
new articles that was about a third of the pass's own CPU. A BulkInsert compiles its
INSERT once per engine and hands the rows to the driver's executemany through the same
connection and transaction (Connection.exec_driver_sql), converting only the values
whose column type processes them, as that type would:

- UTCDateTime: aware UTC; on SQLite, the naive UTC text SQLAlchemy's DATETIME writes.
- JSON on SQLite: the engine's serializer (compact_json; a list of strings, the usual
  value, joined here to the same text); on PostgreSQL with psycopg, psycopg's Json
  wrapper, which serializes with that same function (set on the connection by
  SQLAlchemy).

Any other processed column (another type, another driver) goes through SQLAlchemy's own
processor for it, so nothing reaches the driver unconverted. tests/test_store_bulk.py
writes through here and reads back through the ordinary statements, on both backends.

`among(column, keys)` is `column IN (keys)` with one bound parameter however many keys:
a JSON array read by json_each on SQLite, an array on PostgreSQL. SQLAlchemy renders
and binds an IN list of 2,000 keys one by one on every execution, which cost ingest
more than the lookups themselves.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Table,
    Text,
    any_,
    bindparam,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect

from publisher.store.schema import UTCDateTime

Convert = Callable[[Any], Any]

# Compact JSON, and text kept as UTF-8 rather than \u escapes: smaller rows, faster writes.
# (The engine's json_serializer, make_engine.)
compact_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Prepared:
    """A BulkInsert compiled for one engine's dialect."""

    def __init__(self, sql: str, names: tuple[str, ...] | None,
                 converters: list[tuple[int, Convert]]):
        self.sql = sql
        self.names = names  # a named paramstyle: the rows go as dicts of these keys
        self.converters = converters  # (position, conversion) of the processed columns


class BulkInsert:
    """INSERT INTO table (columns) for many rows, each a sequence of plain Python values
    (aware datetimes, lists) in `columns` order."""

    def __init__(self, table: Table, columns: Sequence[str]):
        self.table = table
        self.columns = tuple(columns)
        self.prepared: weakref.WeakKeyDictionary[Dialect, Prepared] = \
            weakref.WeakKeyDictionary()

    def execute(self, conn: Connection, rows: Sequence[Sequence]) -> None:
        if not rows:
            return
        prepared = self.prepared.get(conn.dialect) or self.prepare(conn.dialect)
        if prepared.converters:
            rows = converted(rows, prepared.converters)
        if prepared.names is not None:
            names = prepared.names
            rows = [dict(zip(names, row, strict=True)) for row in rows]
        conn.exec_driver_sql(prepared.sql, rows)

    def prepare(self, dialect: Dialect) -> Prepared:
        compiled = insert(self.table).compile(dialect=dialect, column_keys=self.columns,
                                              for_executemany=True)
        # The statement binds its columns in the table's order, and every one of them
        # (a column left out for its Python-side default would be added): so must a row.
        bound = tuple(compiled.positiontup or ()) if dialect.positional else \
            tuple(name for name in self.table.c.keys()  # noqa: SIM118 (a ColumnCollection)
                  if name in compiled.bind_names.values())
        if bound != self.columns:
            raise ValueError(f"{self.table.name}: a row must give {bound}, in that order, "
                             f"not {self.columns}")
        names = None if dialect.positional else self.columns
        converters = [(index, convert) for index, name in enumerate(self.columns)
                      if (convert := converter(self.table.c[name], dialect)) is not None]
        prepared = Prepared(compiled.string, names, converters)
        self.prepared[dialect] = prepared
        return prepared


def converted(rows: Sequence[Sequence], converters: list[tuple[int, Convert]]) -> list:
    """The rows with the processed columns converted: column by column (zip and map
    loop in C; a loop over each row's values in Python cost more than the conversions)."""
    columns: list = list(zip(*rows, strict=True))
    for index, convert in converters:
        columns[index] = map(convert, columns[index])
    return list(zip(*columns, strict=True))


def converter(column, dialect: Dialect) -> Convert | None:
    """What turns the column's Python value into the driver's; None: nothing to do."""
    kind = column.type
    if isinstance(kind, UTCDateTime):
        return sqlite_time if dialect.name == "sqlite" else utc_time
    if isinstance(kind, JSON):
        if dialect.name == "sqlite" and dialect._json_serializer is compact_json:
            return compact_strings
        if dialect.name == "sqlite" and dialect._json_serializer is not None:
            return dialect._json_serializer
        if dialect.name == "postgresql" and dialect.driver == "psycopg":
            return dialect._psycopg_Json
    return kind.dialect_impl(dialect).bind_processor(dialect)


def utc_time(value: datetime | None) -> datetime | None:
    """UTCDateTime's value for PostgreSQL: aware UTC; a naive time is refused."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass aware UTC")
    return value.astimezone(UTC)


def sqlite_time(value: datetime | None) -> str | None:
    """UTCDateTime's value for SQLite: the naive UTC text SQLAlchemy's DATETIME writes
    ("YYYY-MM-DD HH:MM:SS.ffffff", microseconds always)."""
    global last_time
    if value is None:
        return None
    cached = last_time  # read once: another thread may replace it meanwhile
    if value is cached[0]:  # a pass's `now`: four times in each new file's rows
        return cached[1]
    if value.tzinfo is UTC:  # the usual case: the text without its "+00:00"
        text = value.isoformat(" ", "microseconds")[:-6]
    elif value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass aware UTC")
    else:
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    last_time = (value, text)  # one assignment: safe across threads
    return text


last_time: tuple[datetime | None, str | None] = (None, None)


def compact_strings(value: Any) -> str:
    """compact_json's text, made without its encoder for a list (or tuple) of strings:
    the same escapes (encode_basestring is what it applies to each string), and a few
    times cheaper for the short lists of sections and captions most rows hold."""
    if value.__class__ in (tuple, list):
        try:  # encode_basestring takes strings only: anything else is compact_json's
            return "[" + ",".join(map(encode_basestring, value)) + "]"
        except TypeError:
            pass
    return compact_json(value)


def among(dialect: str, column: ColumnElement, keys: Sequence[str]) -> ColumnElement[bool]:
    """`column IN (keys)` for strings, with the keys bound as one parameter (above)."""
    if dialect == "sqlite":
        listed = func.json_each(bindparam(None, compact_strings(list(keys)), type_=Text))
        return column.in_(select(listed.table_valued("value").c.value))
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(keys), type_=ARRAY(Text)))
    return column.in_(list(keys))


def chunks(items: Sequence, size: int = 5000) -> Iterable[Sequence]:
    """Keeps IN (...) lists under SQLite's bound-parameter limit."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
