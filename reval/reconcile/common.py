"""Pieces every reconciliation step shares: batching, hashing, sources of change, rejections."""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

import orjson
from sqlalchemy import JSON, Connection, Dialect, Table, TypeDecorator, bindparam, delete, insert, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from reval.db import ENGINE_OPTIONS, PACKED_ROWS_SCHEMA, attach_packed_rows
from reval.models import DoctorEvent
from reval.reconcile.helper import BULK_WORK_GC_THRESHOLDS
from reval.refusals import Invalid
from reval.validation import InvalidValue, describe_value, free_text

BATCH_SIZE = 5000
PERSON_NAME_LENGTH = 200  # who did something (hides, requests): the width of those columns
T = TypeVar("T")


class Source(StrEnum):
    GMC_SYNC = "GMC_SYNC"
    TIS_SYNC = "TIS_SYNC"
    ADMIN = "ADMIN"
    SYNC = "SYNC"  # the sync's own housekeeping (archiving)


class EventKind(StrEnum):
    CONNECTION = "CONNECTION"
    DECISION = "DECISION"
    HIDE = "HIDE"
    UNHIDE = "UNHIDE"
    HIDE_ENDED = "HIDE_ENDED"
    GMC_REQUEST = "GMC_REQUEST"
    GMC_REQUEST_FAILED = "GMC_REQUEST_FAILED"
    ARCHIVED = "ARCHIVED"  # no GMC connection, no TIS person, no change for a long time
    RESTORED = "RESTORED"  # an archived doctor back in a source


def record_hash(record: Any) -> str:
    """A digest of a record as received: an unchanged record is recognised without validating it again."""
    try:
        serialized = orjson.dumps(record)
    except TypeError:  # an integer beyond 64 bits (a hostile record, rejected once read)
        serialized = json.dumps(record, sort_keys=False, default=repr).encode()
    return hashlib.blake2b(serialized, digest_size=16).hexdigest()


def line_hash(line: bytes) -> str:
    """A digest of a JSON Lines record as its bytes came: an unchanged line is recognised without
    even decoding it. (A record reached otherwise is digested as ``record_hash`` does.)"""
    return hashlib.blake2b(line.strip(), digest_size=16).hexdigest()


@contextmanager
def infrequent_garbage_collection() -> Iterator[None]:
    """Runs bulk work with the cyclic garbage collector running less often.

    A national sync keeps hundreds of thousands of small containers alive (stored keys, seen
    numbers, batches), and at the default thresholds the collector rescans them all again and
    again. Cycles are still collected (see BULK_WORK_GC_THRESHOLDS).
    """
    previous = gc.get_threshold()
    gc.set_threshold(*BULK_WORK_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def batched(items: Iterable[T], size: int = BATCH_SIZE) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Inserts rows that all carry the same keys, through the driver's executemany.

    Each value is converted by its column type's own bind processor, as SQLAlchemy would, but
    the statement is compiled once and the per-row parameter handling skipped: at national
    scale that handling cost more than the database's own work.
    """
    if rows:
        insert_bound_rows(connection, table, bound_rows(connection.dialect, table, rows))


class BoundRows(NamedTuple):
    """Rows of one table as the driver takes them: their columns, in the table's order, and a
    tuple of bound values per row. Plain values, so they cross between processes cheaply."""

    columns: tuple[str, ...]
    values: list[tuple]


def bound_rows(dialect: Dialect, table: Table, rows: Sequence[dict[str, Any]]) -> BoundRows:
    """Rows that all carry the same keys, each value converted by its column type's own bind
    processor for ``dialect``, as SQLAlchemy would; JSON values become their text on every
    database (PostgreSQL's processor would wrap them for the driver to serialize, and such
    wrappers are slow to send between processes)."""
    if not rows:
        return BoundRows((), [])
    columns = tuple(column.key for column in table.columns if column.key in rows[0])
    if len(columns) != len(rows[0]):
        raise ValueError(f"{table.name} has no column {sorted(set(rows[0]) - set(columns))[0]!r}")
    if not columns:
        raise ValueError(f"rows for {table.name} name no column")
    bound_columns, converted_columns = [], []
    convert: Callable[[Any], Any] | None
    for key in columns:
        column_type = table.c[key].type
        column_values = [row[key] for row in rows]
        convert = _json_text(column_type, dialect)
        if convert is None:
            convert = column_type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                # Dates and times repeat (the run's as-of date on every event): convert each once.
                convert = {value: convert(value) for value in set(column_values)}.__getitem__
        converted = column_values if convert is None else list(map(convert, column_values))
        if converted[0] is None and key in _null_unless_given(table) and converted.count(None) == len(converted):
            # Left out, so stored as NULL all the same: sqlite3 binds None by its slow path (adapting
            # it), some ten times the cost of a string, and a batch's GMC flags are nearly all NULL.
            continue
        bound_columns.append(key)
        converted_columns.append(converted)
    if not bound_columns:  # every value NULL: bind the first column, so the statement still inserts rows
        bound_columns, converted_columns = [columns[0]], [[None] * len(rows)]
    return BoundRows(tuple(bound_columns), list(zip(*converted_columns, strict=True)))


@functools.cache
def _null_unless_given(table: Table) -> frozenset[str]:
    """The columns a row left out of an insert stores as NULL: nullable, with no default of either kind."""
    return frozenset(
        column.key
        for column in table.columns
        if column.nullable and not column.primary_key and column.default is None and column.server_default is None
    )


def _json_text(column_type: TypeEngine, dialect: Dialect) -> Callable[[Any], str | None] | None:
    """A JSON column's value as the text stored, as SQLAlchemy makes it with Reval's serializer
    (after the column's own conversion, for a JSON type decorated); None for any other column."""
    serialize = ENGINE_OPTIONS["json_serializer"]
    if isinstance(column_type, TypeDecorator) and isinstance(column_type.impl_instance, JSON):
        convert, column_type = column_type.process_bind_param, column_type.impl_instance
        serialize = functools.partial(_serialize_converted, serialize, convert, dialect)
    if not isinstance(column_type, JSON):
        return None
    if column_type.none_as_null:
        return lambda value: None if value is None else serialize(value)
    return serialize


def _serialize_converted(serialize: Callable[[Any], str], convert: Callable[[Any, Dialect], Any], dialect, value):
    return serialize(convert(value, dialect))


def insert_bound_rows(connection: Connection, table: Table, rows: BoundRows) -> None:
    """Inserts rows bound by ``bound_rows`` for this connection's dialect (PostgreSQL: by COPY)."""
    if not rows.values:
        return
    dialect = connection.dialect
    if dialect.name == "postgresql":
        _copy_rows(connection, table, list(rows.columns), rows.values)
        return
    statement, positional = _insert_statement(dialect, table, rows.columns)
    values = rows.values if positional else [dict(zip(rows.columns, row, strict=True)) for row in rows.values]
    connection.exec_driver_sql(statement, values)


class PackedRows(NamedTuple):
    """Rows of several tables, bound for SQLite and packed by the process that made them into an
    in-memory database's image: table ``t<i>`` holds the i-th table's bound columns, untyped, so
    each value is stored as it was bound. The process holding the transaction then inserts each
    table's rows with one INSERT ... SELECT, none of them passing through Python: taking them in
    from a pipe and binding them row by row cost it more than the database's own work."""

    image: bytes
    columns: tuple[tuple[str, ...], ...]
    counts: tuple[int, ...]


def pack_rows(tables: Sequence[BoundRows]) -> PackedRows:
    """``tables``' rows, bound for SQLite, packed (see PackedRows)."""
    database = sqlite3.connect(":memory:", isolation_level=None)
    try:
        database.execute("PRAGMA journal_mode=OFF")  # a scratch copy: nothing to roll back
        database.execute("BEGIN")
        # The process inserting keeps its statements prepared, and SQLite prepares one again only
        # when the schema's version changes: so every image has its tables made first, in the same
        # order (the same pages), and a version of its own.
        for index, rows in enumerate(tables):
            database.execute(f"CREATE TABLE t{index} ({_packed_columns(len(rows.columns) or 1)})")
        database.execute(f"PRAGMA schema_version = {secrets.randbelow(1 << 31) + 1}")
        for index, rows in enumerate(tables):
            if rows.values:
                placeholders = ", ".join("?" * len(rows.columns))
                database.executemany(f"INSERT INTO t{index} VALUES ({placeholders})", rows.values)
        database.execute("COMMIT")
        return PackedRows(
            database.serialize(),
            tuple(rows.columns for rows in tables),
            tuple(len(rows.values) for rows in tables),
        )
    finally:
        database.close()


def insert_each(connection: Connection, tables: Sequence[Table], rows: Sequence[BoundRows] | PackedRows) -> None:
    """Inserts each of ``tables``' rows, bound (``bound_rows``) or packed (``pack_rows``), in order."""
    if not isinstance(rows, PackedRows):
        for table, bound in zip(tables, rows, strict=True):
            insert_bound_rows(connection, table, bound)
        return
    try:
        attach_packed_rows(connection, rows.image)
    except sqlite3.Error:  # this SQLite will not replace an image it has read: bind them instead
        insert_each(connection, tables, unpacked_rows(rows))
        return
    for index, (table, columns, count) in enumerate(zip(tables, rows.columns, rows.counts, strict=True)):
        if count:
            connection.exec_driver_sql(_packed_insert_statement(connection.dialect, table, columns, index))


def unpacked_rows(packed: PackedRows) -> list[BoundRows]:
    """The bound rows ``pack_rows`` packed, as it was given them."""
    database = sqlite3.connect(":memory:")
    try:
        database.deserialize(packed.image)
        return [
            BoundRows(columns, database.execute(f"SELECT * FROM t{index} ORDER BY rowid").fetchall() if count else [])
            for index, (columns, count) in enumerate(zip(packed.columns, packed.counts, strict=True))
        ]
    finally:
        database.close()


@functools.lru_cache(maxsize=64)
def _packed_insert_statement(dialect: Dialect, table: Table, columns: tuple[str, ...], index: int) -> str:
    quote = dialect.identifier_preparer.quote
    # OR FAIL: a row that breaks a constraint stops the statement without undoing the rows before
    # it, which the sync's transaction then rolls back with the rest. So SQLite keeps no statement
    # journal of each page the statement changes (a temporary file past 64 KiB): a batch's names
    # and queue orders change thousands of pages, and at a million doctors that file took 6 GB of
    # writes in the decide step.
    return (
        f"INSERT OR FAIL INTO main.{quote(table.name)} ({', '.join(map(quote, columns))}) "
        f"SELECT {_packed_columns(len(columns))} FROM {PACKED_ROWS_SCHEMA}.t{index} ORDER BY rowid"  # as bound
    )


def _packed_columns(count: int) -> str:
    """A packed table's columns, ``c0`` to ``c<count - 1>``: the bound columns, in their order."""
    return ", ".join(f"c{n}" for n in range(count))


@functools.lru_cache(maxsize=128)
def _insert_statement(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[str, bool]:
    """The insert statement for these columns, and whether it binds them by position (then in
    the columns' order, which is the table's)."""
    compiled = insert(table).values({key: bindparam(key) for key in columns}).compile(dialect=dialect)
    if compiled.positional and tuple(compiled.positiontup or ()) != columns:
        raise ValueError(f"the insert into {table.name} binds {compiled.positiontup}, not {columns}")
    return compiled.string, compiled.positional


def _copy_rows(connection: Connection, table: Table, columns: list[str], rows: list[tuple]) -> None:
    """PostgreSQL: the rows through COPY, in the sync's transaction. An INSERT per row costs the
    server a statement each; COPY streams them. In COPY's binary format, values go as the
    columns' own types, which the driver and the server handle faster than text."""
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    statement = (
        f"COPY {quote(table.name)} ({', '.join(quote(column) for column in columns)}) FROM STDIN (FORMAT BINARY)"
    )
    driver: Any = connection.connection.driver_connection  # psycopg's, open: the sync's transaction holds it
    try:
        with driver.cursor() as cursor:
            types = _column_types(cursor, quote(table.name))
            with cursor.copy(statement) as copy:
                # A json value's binary form is its text, which bound_rows has already made.
                copy.set_types([TEXT_OID if types[column] == JSON_OID else types[column] for column in columns])
                for row in rows:
                    copy.write_row(row)
    except dialect.loaded_dbapi.Error as error:  # raised as SQLAlchemy raises a driver's errors
        raise DBAPIError.instance(statement, None, error, dialect.loaded_dbapi.Error, dialect=dialect) from error


JSON_OID, TEXT_OID = 114, 25  # PostgreSQL's json and text types


def _column_types(cursor: Any, quoted_table: str) -> dict[str, int]:
    """The type (its oid) of each of the table's columns, as the database has them."""
    cursor.execute(
        "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (quoted_table,),
    )
    return dict(cursor.fetchall())


@dataclass
class Rejection:
    source: str  # "GMC" or "TIS"
    locator: str
    record_key: str | None
    field: str | None
    message: str  # the whole sentence: field, what is wrong, and the value
    value: str | None = None  # the offending value as written (quoted, cut at 60 characters)
    reason: str | None = None  # what is wrong with it

    @classmethod
    def of(cls, source: str, locator: str, key: str | None, error: InvalidValue | str) -> Rejection:
        if isinstance(error, InvalidValue):
            return cls(source, locator, key, error.field, str(error), describe_value(error.value), error.problem)
        return cls(source, locator, key, None, error, None, error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "locator": self.locator,
            "recordKey": self.record_key,
            "field": self.field,
            "message": self.message,
        }


@dataclass
class EventLog:
    """History events of one unit of work, written in batches."""

    recorded_at: datetime
    as_of: date
    sync_run_id: int | None
    pending: list[dict[str, Any]] = field(default_factory=list)
    written: int = 0

    def add(self, gmc_number: str, source: Source, kind: EventKind, old, new, detail: str | None = None) -> None:
        self.pending.append(
            {
                "gmc_number": gmc_number,
                "sync_run_id": self.sync_run_id,
                "recorded_at": self.recorded_at,
                "as_of": self.as_of,
                "source": source.value,
                "kind": kind.value,
                "old": old,
                "new": new,
                "detail": detail,
            }
        )

    def take(self, other: EventLog) -> None:
        """Another log's pending events, to be written with these."""
        self.pending += other.pending
        other.pending = []

    def flush(self, session: Session, force: bool = False) -> None:
        if self.pending and (force or len(self.pending) >= BATCH_SIZE):
            insert_rows(session.connection(), DoctorEvent.__table__, self.pending)
            self.written += len(self.pending)
            self.pending = []


class RowWriter:
    """Buffers inserts, updates (by key) and deletes (by key) for one table, and writes them in batches."""

    def __init__(self, session: Session, table: Table, key: str):
        self.session = session
        self.table = table
        self.key = key
        self.inserts: list[dict] = []
        self.updates: list[dict] = []
        self.deletes: list[Any] = []

    def insert(self, row: dict) -> None:
        self.inserts.append(row)
        self._flush_when_full(self.inserts)

    def update(self, row: dict) -> None:
        self.updates.append(row)
        self._flush_when_full(self.updates)

    def delete(self, key_value: Any) -> None:
        self.deletes.append(key_value)
        self._flush_when_full(self.deletes)

    def _flush_when_full(self, buffer: list) -> None:
        # All buffers go together, deletes first, so a key deleted then re-inserted stays in order.
        if len(buffer) >= BATCH_SIZE:
            self.flush()

    def discard(self) -> None:
        """Drops what is buffered and not yet written."""
        self.inserts, self.updates, self.deletes = [], [], []

    def flush(self) -> None:
        self._write_deletes()
        self._write_updates()
        self._write_inserts()

    def _write_inserts(self) -> None:
        if self.inserts:
            insert_rows(self.session.connection(), self.table, self.inserts)
            self.inserts = []

    def _write_updates(self) -> None:
        if self.updates:
            # Core executemany: the SET clause comes from each row's keys, the key itself moves to WHERE.
            statement = update(self.table).where(self.table.c[self.key] == bindparam("key_"))
            rows = [{**{k: v for k, v in row.items() if k != self.key}, "key_": row[self.key]} for row in self.updates]
            self.session.connection().execute(statement, rows)
            self.updates = []

    def _write_deletes(self) -> None:
        for chunk in _chunks(self.deletes, 900):  # under SQLite's limit on bound parameters
            self.session.connection().execute(delete(self.table).where(self.table.c[self.key].in_(chunk)))
        self.deletes = []


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextmanager
def refused_as_invalid(field: str) -> Iterator[None]:
    """A value rule's InvalidValue, raised inside, becomes the refusal Invalid naming ``field``."""
    try:
        yield
    except InvalidValue as error:
        raise Invalid(str(error), field=field) from None


def checked_person_name(field: str, name: str | None) -> str:
    """Who did something, as recorded beside it."""
    with refused_as_invalid(field):
        text = free_text(field, name, PERSON_NAME_LENGTH)
    if text is None:
        raise Invalid(f"{field}: the name of who did this is required", field=field)
    return text
