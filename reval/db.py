"""The database: engine set-up for SQLite and PostgreSQL, and migrations on first use."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import orjson
from sqlalchemy import Connection, Dialect, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from reval.models import SerializedJson
from reval.refusals import NotConfigured

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def _json_dumps(value) -> str:
    if isinstance(value, SerializedJson):
        return str(value)  # a plain str: sqlite3 binds a subclass of str by its slow path (adapting it)
    return orjson.dumps(value).decode()


# How Reval's engines turn JSON columns into text and back.
ENGINE_OPTIONS = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


class DatabaseBusy(Exception):
    """SQLite's write lock stayed taken (a sync holds it) for longer than the command waits:
    the transaction never began, so nothing was changed."""

    retry_after_seconds = 60  # what a web page or API caller is told: a sync takes a minute or two


class DatabaseUnavailable(Exception):
    """The database server did not answer (not running, unreachable): a service that is down,
    not a setting that is wrong."""


# What Reval ships drivers for: SQLite (the standard library) and PostgreSQL (psycopg 3).
DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
SQLITE_BUSY = 5


def make_engine(
    url: str, *, busy_seconds: float = 30, setting: str = "REVAL_DATABASE_URL", create_folder: bool = False
) -> Engine:
    """An engine for ``url``, refused (NotConfigured, naming ``setting``) when Reval cannot use it.
    An SQLite database is made readable by its owner only; its folder must exist, or a typing
    error would silently start an empty database (``create_folder``: make it, owner only)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise NotConfigured(
            f"{setting} is not a database URL: write sqlite:///PATH or postgresql://USER@HOST/DATABASE"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername not in DRIVERS:
        raise NotConfigured(
            f"{setting} {shown!r} names a database Reval cannot use ({parsed.drivername}): "
            "write sqlite:///PATH or postgresql://USER@HOST/DATABASE"
        )
    parsed = parsed.set(drivername=DRIVERS[parsed.drivername])
    try:
        engine = create_engine(parsed, **ENGINE_OPTIONS)
    except ArgumentError:  # sqlite://relative.sqlite: a host where a path should be
        raise NotConfigured(
            f"{setting} {shown!r} is not a database URL Reval can use: write sqlite:///RELATIVE-PATH, "
            "sqlite:////ABSOLUTE-PATH or postgresql://USER@HOST/DATABASE"
        ) from None
    event.listen(engine, "handle_error", functools.partial(_connection_failure_as_one_line, setting=setting))
    if engine.dialect.name == "sqlite" and parsed.database not in (None, "", ":memory:"):
        database = Path(parsed.database)
        if not (create_folder or database.parent.is_dir()):
            raise NotConfigured(
                f"{setting}: the folder {str(database.parent)!r} of the SQLite database does not exist; "
                "create it or correct the path"
            )
        event.listen(engine, "do_connect", functools.partial(_create_private_file, database))
    if engine.dialect.name == "sqlite":
        event.listen(
            engine, "connect", functools.partial(_configure_sqlite, busy_milliseconds=int(busy_seconds * 1000))
        )
        event.listen(engine, "begin", _begin_immediately)
        event.listen(engine, "handle_error", functools.partial(_busy_as_one_line, busy_seconds=busy_seconds))
        event.listen(engine, "checkin", _undo_at_checkin)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _configure_postgresql)
    return engine


def _create_private_file(path: Path, *_connect_arguments) -> None:
    """Before SQLite first opens it: the database and its folder, created readable by their owner
    only (SQLite gives its journal files the database's mode), as they hold personal data."""
    try:
        private_folder(path.parent)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    except OSError as error:
        raise NotConfigured(f"cannot create the SQLite database {str(path)!r}: {error.strerror}") from None


def _connection_failure_as_one_line(context, *, setting: str) -> Exception | None:
    """An error while connecting, said in one line naming the setting and the cause: a setting
    that is wrong (NotConfigured) or a server that does not answer (DatabaseUnavailable)."""
    if context.connection is not None:  # a statement failed on a working connection: not ours to say
        return None
    error = context.original_exception
    url = context.engine.url if context.engine is not None else None
    if isinstance(error, sqlite3.Error):
        where = url.database if url is not None else "the SQLite database"
        if "not a database" in str(error):
            return NotConfigured(f"{setting}: {where!r} is not an SQLite database")
        return NotConfigured(f"{setting}: cannot open the SQLite database {where!r}: {error}")
    if url is None or not url.drivername.startswith("postgresql"):
        return None
    server = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    reason = _postgresql_reason(str(error))
    if any(sign in str(error) for sign in ("FATAL", "resolve host", "translate host name")):
        return NotConfigured(f"{setting}: cannot connect to {server}: {reason}")
    return DatabaseUnavailable(f"cannot connect to {server}: {reason}")


def _postgresql_reason(text: str) -> str:
    """The cause in psycopg's message, as one line: 'database "x" does not exist', 'connection refused'."""
    first = text.strip().splitlines()[0] if text.strip() else "no reason given"
    reason = first.rsplit(" failed: ", 1)[-1].replace("FATAL:", "").strip()
    return reason[:1].lower() + reason[1:]


def private_folder(folder: Path) -> None:
    """Makes ``folder``, and any parent missing, readable by its owner only (mode 0700)."""
    for missing in reversed([f for f in (folder, *folder.parents) if not f.exists()]):
        missing.mkdir(mode=0o700, exist_ok=True)


# SQLite's page cache for each connection, in KiB (used only as needed): a sync reads back pages it
# wrote moments ago, and the default 2 MiB sends those reads to the WAL file.
PAGE_CACHE_KIB = 64 * 1024
# A sync's connection's, until the connection goes back to the pool (``bulk_page_cache``). A table
# whose rows arrive out of key order keeps every page of it in use: GMC connections come body by
# body, 115 MiB of them at a million doctors. With less cache than that, nearly every row wrote a
# page out to the WAL and read it back: that GMC step wrote 2.8 GB, and 0.2 GB with this cache.
BULK_PAGE_CACHE_KIB = 256 * 1024
_BULK_PAGE_CACHE = "reval_bulk_page_cache"


def _configure_sqlite(dbapi_connection, _record, *, busy_milliseconds: int) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _begin_immediately).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Larger pages for a new database (an existing one keeps its own): fewer writes, shallower indexes.
    cursor.execute("PRAGMA page_size=16384")
    _write_ahead_logging(cursor, busy_milliseconds / 1000)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={busy_milliseconds}")
    cursor.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
    cursor.close()


# How long a connection that SQLite turned away from turning a new database to WAL waits before
# trying again (see _write_ahead_logging).
WAL_RETRY_SECONDS = 0.01


def _write_ahead_logging(cursor: sqlite3.Cursor, busy_seconds: float) -> None:
    """Puts the database in WAL mode, which it keeps once set. Commands started together on a
    brand-new database each turn it to WAL as they connect: two connections may each hold the
    shared lock the other needs gone, and SQLite fails one of them at once rather than let both
    wait for ever. That one has let go by then, so it tries again (for up to ``busy_seconds``, as
    long as any statement waits for a lock) and finds the database turned."""
    deadline = time.monotonic() + busy_seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if not _sqlite_busy(error) or time.monotonic() >= deadline:
                raise
            time.sleep(WAL_RETRY_SECONDS)


def _configure_postgresql(dbapi_connection, _record) -> None:
    # No parallel workers: Reval's statements each read a range or a body's queue, for which
    # starting workers costs more than it saves, and the workers would take the cores that the
    # web server's processes and the sync's helper need (under 16 clients at a million doctors,
    # 35 requests a second without them against 28 with; see docs/performance.md).
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET max_parallel_workers_per_gather = 0")
    dbapi_connection.commit()


def bulk_page_cache(session: Session) -> None:
    """SQLite: gives the connection of ``session``'s transaction BULK_PAGE_CACHE_KIB of page cache
    until it goes back to the pool, where it returns to PAGE_CACHE_KIB and frees the rest
    (``_undo_at_checkin``). A web server's connections keep the smaller cache each."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    connection.exec_driver_sql(f"PRAGMA cache_size=-{BULK_PAGE_CACHE_KIB}")
    connection.connection.info[_BULK_PAGE_CACHE] = True


# SQLite: the schema a sync attaches to read rows packed by its helper process (see
# reconcile.common.PackedRows), and the connection's info key saying it is attached.
PACKED_ROWS_SCHEMA = "reval_packed"
_PACKED_ROWS_ATTACHED = "reval_packed_rows_attached"


def attach_packed_rows(connection: Connection, image: bytes) -> None:
    """Puts ``image`` (an SQLite database's, serialized) in PACKED_ROWS_SCHEMA on ``connection``,
    attaching the schema first if need be, within the connection's transaction. The schema is
    detached as the connection goes back to the pool, after its transaction has ended
    (``_undo_at_checkin``). Raises sqlite3.Error where this SQLite refuses to replace an image
    its transaction has read (see ``packed_rows_supported``)."""
    pooled = connection.connection
    if not pooled.info.get(_PACKED_ROWS_ATTACHED):
        connection.exec_driver_sql(f"ATTACH DATABASE ':memory:' AS {PACKED_ROWS_SCHEMA}")
        pooled.info[_PACKED_ROWS_ATTACHED] = True
    cast(sqlite3.Connection, pooled.driver_connection).deserialize(image, name=PACKED_ROWS_SCHEMA)


@functools.cache
def packed_rows_supported() -> bool:
    """Whether this process's SQLite lets an attached schema's image be replaced after the
    transaction has read it, as a sync does batch after batch. SQLite 3.40 does; its documentation
    says sqlite3_deserialize fails on a schema in a read transaction, and a later release may hold
    to that (or a build may lack serialize altogether): then rows are bound one by one instead."""
    probe = sqlite3.connect(":memory:", isolation_level=None)
    try:
        image = sqlite3.connect(":memory:")
        image.execute("CREATE TABLE t0 (c0)")
        serialized = image.serialize()
        image.close()
        probe.execute("CREATE TABLE t (c0)")
        probe.execute("BEGIN")
        probe.execute("INSERT INTO t VALUES (1)")
        probe.execute(f"ATTACH DATABASE ':memory:' AS {PACKED_ROWS_SCHEMA}")
        for _ in range(2):
            probe.deserialize(serialized, name=PACKED_ROWS_SCHEMA)
            probe.execute(f"INSERT INTO t SELECT c0 FROM {PACKED_ROWS_SCHEMA}.t0")
        probe.execute("COMMIT")
        return True
    except (sqlite3.Error, AttributeError):
        return False
    finally:
        probe.close()


# What a sync gives its connection for a while, taken back as the pool takes the connection back
# (its transaction over): the connection's info key saying it was given, and the statement that
# takes it back.
_UNDONE_AT_CHECKIN = {
    _PACKED_ROWS_ATTACHED: f"DETACH DATABASE {PACKED_ROWS_SCHEMA}",
    _BULK_PAGE_CACHE: f"PRAGMA cache_size=-{PAGE_CACHE_KIB}",
}


def _undo_at_checkin(dbapi_connection, record) -> None:
    if dbapi_connection is None:
        return
    for key, statement in _UNDONE_AT_CHECKIN.items():
        if record.info.get(key):
            # Where it fails the flag stays: the schema is not attached twice, and the next check-in tries again.
            with contextlib.suppress(sqlite3.Error):
                dbapi_connection.execute(statement)
                record.info[key] = False


def _busy_as_one_line(context, *, busy_seconds: float) -> Exception | None:
    """SQLite's "database is locked", after waiting ``busy_seconds`` for a writer: said as what it is."""
    if _sqlite_busy(context.original_exception):
        return DatabaseBusy(
            f"a sync holds the database (still locked after {busy_seconds:g} s); "
            "nothing was changed: try again when it has finished"
        )
    return None


def _sqlite_busy(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's "database is locked" (SQLITE_BUSY, whatever its extended code)."""
    return isinstance(error, sqlite3.OperationalError) and (getattr(error, "sqlite_errorcode", 0) & 0xFF) == SQLITE_BUSY


READ_ONLY = "reval_read_only"


def read_only(engine: Engine) -> Engine:
    """The same engine, for transactions that only read. Each reads one snapshot, so a page's
    keys and rows (and its count, where it counts itself) agree even while a sync commits:
    SQLite (deferred, under WAL) takes no write lock and keeps its snapshot; PostgreSQL reads at
    REPEATABLE READ, where a transaction that only reads never fails for another's writes."""
    options: dict = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    return engine.execution_options(**options)


def _begin_immediately(connection) -> None:
    # A writer takes the write lock at the start, so two writers queue instead of failing
    # mid-transaction; a reader begins deferred and, under WAL, never waits for a writer.
    read = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


@functools.cache
def offline_dialect(name: str) -> Dialect:
    """The dialect of Reval's engines for the database ``name`` ("sqlite" or "postgresql"), with
    no database behind it: to bind values in a process that never connects (a sync's helper)."""
    url = {"sqlite": "sqlite://", "postgresql": "postgresql+psycopg://"}[name]
    return create_engine(url, **ENGINE_OPTIONS).dialect


# Alembic is imported where migrations are looked at: a sync's helper process imports this module
# (for its JSON serializer) and never migrates.


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def schema_is_current(engine: Engine) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with read_only(engine).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


# The key of the PostgreSQL advisory lock that one migrating process holds ("reva").
MIGRATION_LOCK_KEY = 0x72657661


def upgrade_schema(engine: Engine) -> None:
    """Migrates to the latest schema in one transaction that holds the database's migration lock
    (SQLite: the write lock, taken as the transaction begins; PostgreSQL: an advisory lock): a
    second process starting at once waits, then finds the schema current and does nothing."""
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def ensure_schema(engine: Engine) -> None:
    """Migrate on first use, so a fresh machine needs no separate step."""
    if not schema_is_current(engine):
        upgrade_schema(engine)


def refresh_planner_statistics(engine: Engine, tables: Iterable[str], vacuum: bool = True) -> None:
    """PostgreSQL: brings the planner's statistics up to date for tables that a large change has
    just rewritten. Until autovacuum comes round, the planner takes a freshly filled table for
    nearly empty: it plans a queue page over the whole doctor table, and each range of GMC
    numbers a sync reads from the sources' tables by scanning all of them. ``vacuum``: also mark
    the pages all-visible, so a count reads the index alone; tables only read row by row need
    their statistics alone. SQLite plans from its indexes alone and needs none of this."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:  # VACUUM runs outside a transaction
        connection.exec_driver_sql(f"{'VACUUM (ANALYZE)' if vacuum else 'ANALYZE'} {', '.join(tables)}")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
