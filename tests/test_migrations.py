"""Migrating a brand-new database is done by one process at a time: a second command started at
the same moment waits for the first, then finds the schema current (PostgreSQL: an advisory lock;
SQLite: its write lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import JSON, bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from reval.db import MIGRATION_LOCK_KEY, alembic_config, make_engine, schema_is_current, upgrade_schema
from reval.models import TisPerson
from reval.settings import SETTINGS
from tests.conftest import wait_for


@contextmanager
def brand_new_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A database of the kind this run tests, made for the test and dropped after it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{tmp_path / 'brand-new.sqlite'}"
        return
    name = f"reval_migrations_{uuid.uuid4().hex[:12]}"
    server = make_engine(url.set(database="postgres").render_as_string(hide_password=False))
    with server.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        server.dispose()


def test_commands_started_together_on_a_brand_new_database_all_succeed(database_url, tmp_path):
    with brand_new_database(database_url, tmp_path) as url:
        environment = {k: v for k, v in os.environ.items() if k not in SETTINGS} | {
            "REVAL_DATABASE_URL": url,
            "REVAL_INSTANCE_PATH": str(tmp_path / "instance"),
        }
        reval = str(Path(sys.executable).with_name("reval"))
        processes = [
            subprocess.Popen([reval, "runs"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(3)
        ]
        outputs = [_finished(process) for process in processes]
        assert [code for code, _ in outputs] == [0, 0, 0], outputs
        engine = make_engine(url)
        assert schema_is_current(engine)
        engine.dispose()


def test_a_second_migration_waits_for_the_lock_the_first_holds(database_url, tmp_path):
    if make_url(database_url).get_backend_name() == "sqlite":
        pytest.skip("PostgreSQL's advisory lock; SQLite's write lock is taken as every writing transaction begins")
    with brand_new_database(database_url, tmp_path) as url:
        holder, migrating = make_engine(url), make_engine(url)
        with holder.connect() as connection, connection.begin() as transaction:
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
            migration = threading.Thread(target=upgrade_schema, args=(migrating,))
            migration.start()

            def waiting_for_the_lock() -> bool:
                """the migration waits on the advisory lock"""
                return bool(
                    connection.exec_driver_sql(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    ).scalar()
                )

            wait_for(waiting_for_the_lock)
            assert not schema_is_current(holder)
            transaction.rollback()
        migration.join(timeout=120)
        assert not migration.is_alive()
        assert schema_is_current(holder)
        holder.dispose()
        migrating.dispose()


def _finished(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Its exit code and its output, once it has ended."""
    output, _ = process.communicate(timeout=120)
    return process.returncode, output.decode()


def test_the_documents_migration_drops_their_keys_and_its_downgrade_puts_them_back(database_url, tmp_path):
    curricula = [{"curriculumName": "Cardiology", "curriculumStartDate": "2025-08-06", "curriculumEndDate": None}]
    membership = {
        "id": "7a",
        "programmeName": "Cardiology",
        "programmeNumber": "C1",
        "programmeMembershipType": "SUBSTANTIVE",
        "programmeStartDate": "2025-08-06",
        "programmeEndDate": None,
        "programmeOwner": "Health Education England Wessex",
        "trainingPathway": "CCT",
        "curricula": curricula,
    }
    placement = {"id": "9", "gradeAbbreviation": "F1", "dateFrom": "2025-08-06", "dateTo": "2026-08-05"}
    documents = {7: ([membership], [placement]), 8: ([], [])}
    with brand_new_database(database_url, tmp_path) as url:
        engine = make_engine(url)
        config = alembic_config(engine)

        def stored() -> dict[int, tuple]:
            with engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT tis_person_id, programme_memberships, placements FROM tis_person")
                ).all()
            return {
                person_id: (_decoded(memberships), _decoded(placements)) for person_id, memberships, placements in rows
            }

        try:
            command.upgrade(config, "0012")
            with engine.begin() as connection:
                for person_id, (memberships, placements) in documents.items():
                    connection.execute(
                        text(
                            "INSERT INTO tis_person (tis_person_id, gmc_number, status, programme_memberships,"
                            " placements, spans, record_hash)"
                            " VALUES (:id, '1234567', 'CURRENT', :memberships, :placements, '[[],[]]', 'h')"
                        ).bindparams(bindparam("memberships", type_=JSON), bindparam("placements", type_=JSON)),
                        {"id": person_id, "memberships": memberships, "placements": placements},
                    )
            command.upgrade(config, "head")
            assert stored() == {
                7: (
                    [
                        [
                            "7a",
                            "Cardiology",
                            "C1",
                            "SUBSTANTIVE",
                            "2025-08-06",
                            None,
                            "Health Education England Wessex",
                            "CCT",
                            [["Cardiology", "2025-08-06", None]],
                        ]
                    ],
                    [["9", "F1", "2025-08-06", "2026-08-05"]],
                ),
                8: ([], []),
            }
            with Session(engine) as session:  # the model reads them as the sync writes them now
                person = session.get(TisPerson, 7)
                assert person is not None and (person.programme_memberships, person.placements) == documents[7]
            command.downgrade(config, "0012")
            assert stored() == documents
        finally:
            engine.dispose()


def _decoded(value):
    """A JSON column's value read as it is: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value
