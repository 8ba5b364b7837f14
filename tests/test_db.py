"""The database as a command meets it: a sync holding SQLite's write lock, settings that name no
usable database, and files only their owner may read."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from reval.app import create_app
from reval.db import make_engine
from reval.extensions import database
from tests.conftest import Reval, assert_one_line_refusal, reval_from_settings
from tests.factories import EAST_OF_ENGLAND
from tests.matching import first_group

# --- a sync holding the database ---------------------------------------------------------------


@contextmanager
def write_lock_held(url: str):
    """Another process's write transaction, as a long sync holds one."""
    path = make_url(url).database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def impatient(migrated, app, tmp_path):
    """`reval` on the tests' database, waiting a fifth of a second for the write lock; its app is
    new, so its first command checks the schema too."""
    if make_url(migrated).get_backend_name() != "sqlite":
        pytest.skip("the write lock a sync holds is SQLite's; PostgreSQL readers and writers of other rows never wait")
    busy_app = create_app(
        {
            "REVAL_DATABASE_URL": migrated,
            "REVAL_INSTANCE_PATH": str(tmp_path / "busy-instance"),
            "REVAL_DB_BUSY_SECONDS": "0.2",
            "TESTING": True,
        }
    )
    yield Reval(busy_app)
    database(busy_app).engine.dispose()


# Commands that only read, and record nothing: they never wait for a sync's write lock.
READS = [
    ["runs"],
    ["requests"],
    ["designated-bodies"],
    ["rejections"],
    ["db", "current"],
]
# Views of doctors' personal data: each writes its access record before it shows anything, so on
# SQLite it waits for the write lock as a writer does, and shows nothing when it cannot record.
AUDITED_VIEWS = [
    ["export"],
    ["export", "--format", "csv", "--queue", "discrepancy"],
    ["history", "1000003"],
    ["explain", "1000003"],
]


def test_readers_read_while_a_sync_holds_the_database(synced, impatient, migrated):
    with write_lock_held(migrated):
        outputs = {" ".join(args): impatient(*args).output for args in READS}
    assert outputs["db current"].strip() == "up to date"
    assert EAST_OF_ENGLAND in outputs["designated-bodies"]


@pytest.mark.parametrize("args", AUDITED_VIEWS, ids=" ".join)
def test_a_view_it_cannot_record_while_a_sync_holds_the_database_shows_nothing(synced, impatient, migrated, args):
    with write_lock_held(migrated):
        result = impatient(*args, expect_exit=1)
    assert_one_line_refusal(result, 1, "a sync holds the database", "try again")
    assert "1000003" not in result.output


def test_audited_views_read_once_the_sync_lets_go(synced, impatient):
    assert json.loads(impatient("export").output)[2]["gmcReferenceNumber"] == "1000003"
    assert "DB_MISMATCH" in impatient("explain", "1000003").output


@pytest.mark.parametrize(
    "args",
    [
        ["hide", "1000003", "--designated-body", EAST_OF_ENGLAND, "--reason", "moving away"],
        ["sync", "--gmc-file", "{gmc}", "--tis-file", "{tis}"],
    ],
)
def test_a_writer_the_sync_keeps_waiting_gives_up_in_one_line_having_changed_nothing(
    synced,
    impatient,
    reval,
    migrated,
    snapshots,
    args,
):
    before = reval("export").output, reval("runs", "--format", "json").output
    with write_lock_held(migrated):
        result = impatient(*(a.format(gmc=snapshots[0], tis=snapshots[1]) for a in args), expect_exit=1)
    assert_one_line_refusal(result, 1, "a sync holds the database", "try again")
    assert (reval("export").output, reval("runs", "--format", "json").output) == before
    assert [e["kind"] for e in json.loads(reval("history", "1000003", "--json").stdout)] == ["CONNECTION", "DECISION"]


# --- settings that name no usable database -----------------------------------------------------


@pytest.mark.parametrize(
    "url, named",
    [
        ("mysql://reval:secret@db.example/reval", "names a database Reval cannot use (mysql)"),
        ("postgresql+psycopg2://reval@db.example/reval", "names a database Reval cannot use (postgresql+psycopg2)"),
        ("not a database", "is not a database URL"),
    ],
)
def test_an_unusable_database_url_is_refused_in_one_line(tmp_path, url, named):
    result = reval_from_settings(tmp_path, "runs", REVAL_DATABASE_URL=url)
    assert_one_line_refusal(result, 2, "REVAL_DATABASE_URL", named)
    assert "secret" not in result.output


def test_connections_made_at_once_to_a_brand_new_database_all_open(tmp_path):
    # Commands started together on a new database each turn it to WAL as they connect, and SQLite
    # turned one of two away at once (about one connection in fifty, three at a time, on the
    # development machine) rather than let both wait: "database is locked", never having waited.
    failures: list[Exception] = []
    for attempt in range(100):
        url = f"sqlite:///{tmp_path / f'new-{attempt}.sqlite'}"
        failures += connected_together([make_engine(url) for _ in range(3)])
    assert failures == []


def connected_together(engines) -> list[Exception]:
    """Each engine's first connection, made at the same moment in threads of their own; the
    failures, if any."""
    together, failures = threading.Barrier(len(engines)), []

    def connect(engine):
        together.wait()
        try:
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        except Exception as error:  # every failure is collected and shown
            failures.append(error)

    threads = [threading.Thread(target=connect, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.dispose()
    return failures


def test_an_sqlite_database_in_a_folder_that_does_not_exist_is_refused_not_created(tmp_path):
    missing = tmp_path / "typo" / "reval.sqlite"
    result = reval_from_settings(tmp_path, "runs", REVAL_DATABASE_URL=f"sqlite:///{missing}")
    assert_one_line_refusal(result, 2, "REVAL_DATABASE_URL", f"the folder '{missing.parent}'", "does not exist")
    assert not missing.parent.exists()


def test_a_busy_wait_that_is_not_a_number_is_refused_in_one_line(tmp_path):
    result = reval_from_settings(tmp_path, "runs", REVAL_DB_BUSY_SECONDS="a while")
    assert_one_line_refusal(result, 2, "REVAL_DB_BUSY_SECONDS must be a number (got 'a while')")


# --- personal data is its owner's --------------------------------------------------------------


@pytest.fixture
def permissive_umask():
    """The usual umask, under which files are made readable by everyone unless asked otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_instance_folder_and_its_database_are_made_readable_by_their_owner_only(tmp_path, permissive_umask):
    result = reval_from_settings(tmp_path, "designated-bodies", "load", _bodies_csv(tmp_path))
    assert result.exit_code == 0, result.output
    instance = tmp_path / "instance"
    files = sorted(instance.glob("reval.sqlite*"))
    assert [f.name for f in files][:1] == ["reval.sqlite"]
    assert (mode(instance), {f.name: mode(f) for f in files}) == (0o700, {f.name: 0o600 for f in files})


def test_a_new_sqlite_database_named_by_the_setting_is_readable_by_its_owner_only(tmp_path, permissive_umask):
    folder = tmp_path / "data"
    folder.mkdir()
    result = reval_from_settings(tmp_path, "runs", REVAL_DATABASE_URL=f"sqlite:///{folder / 'reval.sqlite'}")
    assert result.exit_code == 0, result.output
    assert mode(folder / "reval.sqlite") == 0o600
    assert mode(folder) == 0o755  # an existing folder is the operator's: left as it is


def _bodies_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bodies.csv"
    path.write_text("code,name,owner\nX-1,Somewhere,Somewhere LETB\n")
    return path


def test_a_page_that_must_write_while_a_sync_holds_the_database_says_so(synced, impatient, migrated, tmp_path):
    busy_web = create_app(
        {
            "REVAL_DATABASE_URL": migrated,
            "REVAL_INSTANCE_PATH": str(tmp_path / "busy-web"),
            "REVAL_DB_BUSY_SECONDS": "0.2",
            "REVAL_AUTH": "dev",
            "REVAL_SECURE_COOKIES": "0",
            "TESTING": True,
        }
    )
    client = busy_web.test_client()
    token = first_group(r'name="csrf_token" value="([^"]+)"', client.get("/auth/dev").text)
    client.post(
        "/auth/dev", data={"csrf_token": token, "name": "Nat", "role": "national", "designated_body": EAST_OF_ENGLAND}
    )
    token = first_group(r'name="csrf_token" value="([^"]+)"', client.get("/runs").text)
    with write_lock_held(migrated):
        response = client.post("/runs", data={"csrf_token": token})
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert "A sync is writing to the database. Nothing was changed" in response.text
    database(busy_web).engine.dispose()


def test_the_api_answers_a_busy_database_with_503_and_when_to_retry(app):
    from reval.api.problems import error_problem
    from reval.db import DatabaseBusy

    with app.test_request_context("/api/v1/doctors/1000003/hides", method="POST"):
        response = error_problem(DatabaseBusy("a sync holds the database"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert response.mimetype == "application/problem+json" and "try again later" in response.get_json()["detail"]


def test_bulk_inserts_fail_as_sqlalchemy_fails_and_leave_nothing_behind(migrated):
    """Rows go through executemany on SQLite and COPY on PostgreSQL; either way a duplicate key
    is SQLAlchemy's IntegrityError, and the transaction's rows are gone."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import IntegrityError

    from reval.db import make_engine
    from reval.models import DesignatedBodyRecord
    from reval.reconcile.common import insert_rows

    engine = make_engine(migrated)
    table = DesignatedBodyRecord.__table__
    rows = [
        {"code": "ZZ-PROBE1", "name": "Probe", "owner": "Probe One"},
        {"code": "ZZ-PROBE2", "name": "Probe", "owner": "Probe Two"},
        {"code": "ZZ-PROBE1", "name": "Probe", "owner": "Probe Three"},
    ]
    with pytest.raises(IntegrityError), engine.begin() as connection:
        insert_rows(connection, table, rows)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(table).where(table.c.code.like("ZZ-PROBE%"))) == 0
    engine.dispose()


def test_bulk_inserts_store_what_sqlalchemys_own_insert_stores(migrated):
    """Rows bound by Reval (JSON as text, COPY's binary format on PostgreSQL) read back exactly as
    the same rows inserted by SQLAlchemy do: every kind of value a sync writes."""
    from datetime import date, datetime

    from sqlalchemy import delete, insert, select

    from reval.db import make_engine
    from reval.models import DoctorEvent
    from reval.reconcile.common import insert_rows

    engine = make_engine(migrated)
    table = DoctorEvent.__table__
    moment = datetime(2026, 11, 29, 5, 6, 7, 890123, tzinfo=UTC)
    values = [
        (
            "9000001",
            None,
            {"queue": "DISCREPANCY", "visibleTo": ["1-AIIDR8", "1-AIIDSA"], "rule": 7},
            "tab\tand\nnew line",
        ),
        ("9000002", {"designatedBody": None}, {"designatedBody": "1-AIIDWA"}, 'back\\slash, quote " and ü'),
        ("9000003", [1, 2.5, True, None, "x"], None, None),
    ]
    rows = [
        {
            "gmc_number": number,
            "sync_run_id": None,
            "recorded_at": moment,
            "as_of": date(9999, 12, 31),
            "source": "TIS_SYNC",
            "kind": "DECISION",
            "old": old,
            "new": new,
            "detail": detail,
        }
        for number, old, new, detail in values
    ]
    stored = []
    try:
        for write in (
            lambda connection: insert_rows(connection, table, rows),
            lambda connection: connection.execute(insert(table), rows),
        ):
            with engine.begin() as connection:
                write(connection)
            with engine.begin() as connection:
                query = select(*[c for c in table.c if c.key != "id"]).where(table.c.gmc_number.like("900000%"))
                stored.append(connection.execute(query.order_by(table.c.gmc_number)).all())
                connection.execute(delete(table).where(table.c.gmc_number.like("900000%")))
    finally:
        engine.dispose()
    assert stored[0] == stored[1]
    assert [(row.old, row.new, row.detail, row.recorded_at, row.as_of) for row in stored[0]] == [
        (old, new, detail, moment, date(9999, 12, 31)) for _number, old, new, detail in values
    ]


def test_bulk_inserts_store_null_where_every_row_gives_none_as_sqlalchemys_insert_does(migrated):
    """A column every row of a batch leaves None may be left out of the insert (sqlite3 binds None
    slowly), but only where the database would store NULL for it: never over a default."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text

    from reval.db import make_engine
    from reval.reconcile.common import bound_rows, insert_rows

    table = Table(
        "zz_bulk_null_probe",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("plain", String(10)),
        Column("server_defaulted", String(10), server_default=text("'server'")),
        Column("python_defaulted", String(10), default="python"),
    )
    every_column_none = {"plain": None, "server_defaulted": None, "python_defaulted": None}
    rows = [{"id": 1, **every_column_none}, {"id": 2, **every_column_none}]
    engine = make_engine(migrated)
    stored = []
    try:
        for write in (
            lambda connection: insert_rows(connection, table, rows),
            lambda connection: connection.execute(insert(table), rows),
        ):
            with engine.connect() as connection, connection.begin() as transaction:
                table.create(connection)
                write(connection)
                stored.append(connection.execute(select(table).order_by(table.c.id)).all())
                transaction.rollback()
    finally:
        engine.dispose()
    assert stored[0] == stored[1] == [(1, None, None, None), (2, None, None, None)]
    assert bound_rows(engine.dialect, table, rows).columns == ("id", "server_defaulted", "python_defaulted")


def _refuse_to_replace_an_image(connection, image):
    # What sqlite3_deserialize's documentation says it may do with a schema its transaction has read.
    raise sqlite3.OperationalError("database is locked")


def test_packed_rows_store_what_bound_rows_store_batch_after_batch(migrated, monkeypatch):
    """SQLite: rows packed by a sync's helper (an in-memory database's image) go in by INSERT ...
    SELECT. Batch after batch on one connection, whatever each holds (a table empty in one, a
    column every row leaves NULL in another, a first table of another size), they store exactly
    what binding them row by row stores, as they do where SQLite refuses to replace the image
    (they are then bound); the schema they are read from is gone once the connection is back in
    the pool."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, select

    import reval.reconcile.common
    from reval.db import PACKED_ROWS_SCHEMA, make_engine
    from reval.reconcile.common import bound_rows, insert_each, pack_rows

    if make_url(migrated).get_backend_name() != "sqlite":
        pytest.skip("rows are packed for SQLite; PostgreSQL takes them by COPY")
    metadata = MetaData()
    tables = [
        Table("zz_packed_people", metadata, Column("id", Integer, primary_key=True), Column("name", String(20))),
        Table(
            "zz_packed_notes",
            metadata,
            Column("id", Integer, primary_key=True, autoincrement=False),
            Column("person", Integer),
            Column("text", String(40)),
        ),
    ]
    many = [{"name": f"person {number} of a batch that fills pages"} for number in range(2000)]
    # The same columns twice, over a first table of one row and then of many pages.
    batches: list[list[list[dict[str, Any]]]] = [
        [[{"name": "Ann"}], [{"id": 1, "person": 1, "text": "a note\nover two lines"}]],
        [many, [{"id": 2, "person": 2, "text": "ü"}]],
        [[], [{"id": 3, "person": None, "text": None}, {"id": 4, "person": None, "text": "' quoted"}]],
    ]
    engine = make_engine(migrated)
    stored = []
    try:
        for insert in ("packed", "packed and refused", "bound"):
            if insert == "packed and refused":
                monkeypatch.setattr(reval.reconcile.common, "attach_packed_rows", _refuse_to_replace_an_image)
            with engine.connect() as connection, connection.begin() as transaction:
                metadata.create_all(connection)
                for batch in batches:
                    bound = [bound_rows(engine.dialect, table, rows) for table, rows in zip(tables, batch, strict=True)]
                    insert_each(connection, tables, bound if insert == "bound" else pack_rows(bound))
                stored.append([connection.execute(select(table).order_by(table.c.id)).all() for table in tables])
                transaction.rollback()
            monkeypatch.undo()
            with engine.connect() as connection:
                schemas = [row[1] for row in connection.exec_driver_sql("PRAGMA database_list")]
                assert PACKED_ROWS_SCHEMA not in schemas
    finally:
        engine.dispose()
    assert stored[0] == stored[1] == stored[2]
    people, notes = stored[0]
    assert len(people) == 2001 and people[:2] == [(1, "Ann"), (2, "person 0 of a batch that fills pages")]
    assert notes == [(1, 1, "a note\nover two lines"), (2, 2, "ü"), (3, None, None), (4, None, "' quoted")]


def test_a_packed_row_that_breaks_a_constraint_stops_its_batch_and_the_rollback_takes_back_the_rest(migrated):
    """SQLite: a packed batch goes in without a statement journal (OR FAIL), so a row that breaks
    a constraint leaves the rows before it in the transaction; the error still reaches the caller,
    and the transaction's rollback, as a failed sync's, leaves nothing of the batch."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, func, select
    from sqlalchemy.exc import IntegrityError

    from reval.db import make_engine
    from reval.reconcile.common import bound_rows, insert_each, pack_rows

    if make_url(migrated).get_backend_name() != "sqlite":
        pytest.skip("rows are packed for SQLite; PostgreSQL takes them by COPY")
    table = Table(
        "zz_packed_unique",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("name", String(20), nullable=False),
    )
    engine = make_engine(migrated)
    try:
        with engine.connect() as connection:
            table.create(connection)
            connection.commit()
            try:
                transaction = connection.begin()
                rows = [{"id": 1, "name": "first"}, {"id": 2, "name": "second"}, {"id": 1, "name": "again"}]
                with pytest.raises(IntegrityError, match=r"UNIQUE constraint failed: zz_packed_unique\.id"):
                    insert_each(connection, [table], pack_rows([bound_rows(engine.dialect, table, rows)]))
                # Not undone by the statement: the transaction's rollback takes them back.
                assert connection.scalar(select(func.count()).select_from(table)) == 2
                transaction.rollback()
                assert connection.scalar(select(func.count()).select_from(table)) == 0
            finally:
                connection.rollback()
                table.drop(connection)
                connection.commit()
    finally:
        engine.dispose()


def test_a_read_sees_one_snapshot_while_another_transaction_commits(app):
    """A page's count, keys and rows are read in one transaction: a sync committing between them
    must not make them disagree."""
    from sqlalchemy import func, select

    from reval.models import DesignatedBodyRecord

    count = select(func.count()).select_from(DesignatedBodyRecord)
    with database(app).reads() as reading:
        before = reading.execute(count).scalar_one()
        with database(app).sessions.begin() as writing:
            writing.add(DesignatedBodyRecord(code="ZZ-SNAP", name="Snapshot", owner="Snapshot"))
        assert reading.scalar(count) == before
    with database(app).reads() as reading:
        assert reading.scalar(count) == before + 1


def test_postgresql_runs_reval_s_statements_without_parallel_workers(migrated):
    engine = make_engine(migrated)
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting: runs with REVAL_TEST_DATABASE_URL set to PostgreSQL")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar() == "0"
    finally:
        engine.dispose()


def test_statements_on_a_tis_persons_documents_are_cached_like_any_other():
    from sqlalchemy import Text, cast, select

    from reval.models import TisPerson

    # SQLAlchemy caches a statement only if every type in it says it may be (cache_ok, which each
    # TypeDecorator class must set itself); else it compiles the statement every time, and warns.
    statement = select(cast(TisPerson.programme_memberships, Text), cast(TisPerson.placements, Text))
    assert statement._generate_cache_key() is not None
