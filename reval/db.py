"""The database: engine set-up for SQLite and PostgreSQL, and migrations on first use."""

from __future__ import annotations

from pathlib import Path

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


class SerializedJson(str):
    """A JSON column's value already serialized (by a sync's helper process): stored as it is."""


def _json_dumps(value) -> str:
    if isinstance(value, SerializedJson):
        return value
    return orjson.dumps(value).decode()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        # psycopg 3 is the only PostgreSQL driver Reval ships with.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, json_serializer=_json_dumps, json_deserializer=orjson.loads)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_immediately)
    return engine


def _configure_sqlite(dbapi_connection, _record) -> None:
    # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _begin_immediately).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Larger pages for a new database (an existing one keeps its own): a national sync writes
    # hundreds of megabytes, and 16 KiB pages take a quarter of the writes and shallower indexes.
    cursor.execute("PRAGMA page_size=16384")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Up to 64 MiB of page cache (used only as needed): a sync reads back pages it wrote moments
    # ago, and the default 2 MiB sends those reads to the WAL file.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


READ_ONLY = "reval_read_only"


def read_only(engine: Engine) -> Engine:
    """The same engine, for transactions that only read (on SQLite: no write lock taken)."""
    return engine.execution_options(**{READ_ONLY: True})


def _begin_immediately(connection) -> None:
    # A writer takes the write lock at the start, so two writers queue instead of failing
    # mid-transaction; a reader begins deferred and, under WAL, never waits for a writer.
    read = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def schema_is_current(engine: Engine) -> bool:
    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    with read_only(engine).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() == head


def upgrade_schema(engine: Engine) -> None:
    command.upgrade(alembic_config(engine), "head")


def ensure_schema(engine: Engine) -> None:
    """Migrate on first use, so a fresh machine needs no separate step."""
    if not schema_is_current(engine):
        upgrade_schema(engine)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
