"""The shape of the house: Alembic owns a schema that matches the models; layers import downwards."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from reval.db import alembic_config, make_engine
from reval.models import Base
from reval.reconcile.decisions import person_spans

ROOT = Path(__file__).parent.parent


def test_migrations_build_exactly_the_models_schema(migrated):
    engine = make_engine(migrated)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_layers_import_only_downwards():
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT, check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sqlite_keeps_the_tables_read_by_gmc_number_in_that_order_and_the_migration_keeps_their_rows(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'reval.sqlite'}")
    config = alembic_config(engine)
    command.upgrade(config, "0003")
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO doctor_visibility VALUES ('1-1RSSQ05', '1234567')")
        connection.exec_driver_sql(
            "INSERT INTO gmc_connection (gmc_number, designated_body_code, record_hash)"
            " VALUES ('1234567', '1-1RSSQ05', 'h')"
        )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        tables: dict[str, str] = dict(
            connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all()
        )
        assert connection.exec_driver_sql("SELECT designated_body_code, gmc_number FROM doctor_visibility").all() == [
            ("1-1RSSQ05", "1234567")
        ]
        assert connection.exec_driver_sql("SELECT gmc_number, designated_body_code FROM gmc_connection").all() == [
            ("1234567", "1-1RSSQ05")
        ]
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    for name in ("gmc_connection", "doctor", "doctor_visibility"):
        assert "WITHOUT ROWID" in tables[name], name
    assert "WITHOUT ROWID" not in tables["tis_person"]  # keyed by TIS id, read by GMC number: no gain
    assert differences == []


def test_the_queue_index_migration_fills_each_bodys_names_and_sort_names_from_the_stored_decisions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'reval.sqlite'}")
    config = alembic_config(engine)
    command.upgrade(config, "0006")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO doctor (gmc_number, queue, reason, rule_number, rule_table, visible_to,"
            " programme_owner_designated_bodies, tis_person_ids, decided_as_of, decision_basis,"
            " sort_name, search_names)"
            " VALUES ('1234567', 'CONNECTED', 'CONNECTED', 1, 't', '[]', '[]', '[]', '2026-11-28', 'b', 'khan amara',"
            " '\namara\nkhan\n')"
        )
        connection.exec_driver_sql(
            "INSERT INTO doctor_visibility (designated_body_code, gmc_number, queue, reason) VALUES"
            " ('1-1RSSQ05', '1234567', 'CONNECTED', 'CONNECTED'), ('1-1RSSQ1B', '1234567', 'HIDDEN', 'HIDDEN_BY_ADMIN')"
        )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        assert sorted(
            connection.exec_driver_sql(
                "SELECT designated_body_code, queue, name, gmc_number FROM doctor_visibility_name"
            ).all()
        ) == [
            ("1-1RSSQ05", "CONNECTED", "amara", "1234567"),
            ("1-1RSSQ05", "CONNECTED", "khan", "1234567"),
            ("1-1RSSQ1B", "HIDDEN", "amara", "1234567"),
            ("1-1RSSQ1B", "HIDDEN", "khan", "1234567"),
        ]
        assert set(connection.exec_driver_sql("SELECT sort_name FROM doctor_visibility").scalars()) == {"khan amara"}
    engine.dispose()


def test_the_view_columns_migration_copies_each_doctors_sort_columns_and_what_each_body_can_do(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'reval.sqlite'}")
    config = alembic_config(engine)
    command.upgrade(config, "0011")
    with engine.begin() as connection:
        # Connected to one body, owned by another, decided as not belonging where connected.
        connection.exec_driver_sql(
            "INSERT INTO doctor (gmc_number, queue, reason, rule_number, rule_table, visible_to,"
            " programme_owner_designated_bodies, tis_person_ids, decided_as_of, decision_basis, designated_body_code,"
            " programme_name, programme_start, programme_end, programme_owners, last_changed_by)"
            " VALUES ('1234567', 'DISCREPANCY', 'DB_MISMATCH', 5, 't', '[]', '[\"1-1RSSQ1B\"]', '[]', '2026-11-28',"
            " 'b', '1-1RSSQ05', 'Surgery', '2025-08-06', '2028-08-01', '1-1RSSQ1B', 'Ann Admin')"
        )
        connection.exec_driver_sql(
            "INSERT INTO doctor_visibility (designated_body_code, gmc_number, queue, reason) VALUES"
            " ('1-1RSSQ05', '1234567', 'DISCREPANCY', 'DB_MISMATCH'),"
            " ('1-1RSSQ1B', '1234567', 'HIDDEN', 'HIDDEN_BY_ADMIN')"
        )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        assert connection.exec_driver_sql(
            "SELECT designated_body_code, programme_name, programme_start, programme_end, programme_owners,"
            " decided_as_of, last_changed_by, ready FROM doctor_visibility ORDER BY designated_body_code"
        ).all() == [
            ("1-1RSSQ05", "Surgery", "2025-08-06", "2028-08-01", "1-1RSSQ1B", "2026-11-28", "Ann Admin", "disconnect"),
            ("1-1RSSQ1B", "Surgery", "2025-08-06", "2028-08-01", "1-1RSSQ1B", "2026-11-28", "Ann Admin", "connect"),
        ]
    engine.dispose()


def test_the_spans_migration_fills_each_stored_persons_spans_from_their_documents(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'reval.sqlite'}")
    config = alembic_config(engine)
    command.upgrade(config, "0007")
    memberships = [
        {
            "programmeMembershipType": "SUBSTANTIVE",
            "programmeStartDate": "2025-08-06",
            "programmeEndDate": None,
            "programmeOwner": "Health Education England Wessex",
            "programmeName": "Cardiology",
            "curricula": [{"curriculumName": "Cardiology"}],
        }
    ]
    placements = [{"gradeAbbreviation": "F1", "dateFrom": "2025-08-06", "dateTo": "2026-08-05"}]
    with engine.begin() as connection:
        for person_id in (7, 8):
            connection.exec_driver_sql(
                "INSERT INTO tis_person"
                " (tis_person_id, gmc_number, status, programme_memberships, placements, record_hash)"
                " VALUES (?, '1234567', 'CURRENT', ?, ?, 'h')",
                (person_id, json.dumps(memberships if person_id == 7 else []), json.dumps(placements)),
            )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        spans: dict[int, str] = dict(connection.exec_driver_sql("SELECT tis_person_id, spans FROM tis_person").all())
    engine.dispose()
    # As the sync now writes them, so deciding reads the same from either.
    assert spans == {7: person_spans(memberships, placements), 8: person_spans([], placements)}
    assert json.loads(spans[7]) == [
        [["SUBSTANTIVE", "2025-08-06", None, "Health Education England Wessex", "Cardiology"]],
        [["F1", "2025-08-06", "2026-08-05"]],
    ]


def test_the_queue_filter_migration_fills_who_last_changed_each_doctor_from_requests_and_hides(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'reval.sqlite'}")
    config = alembic_config(engine)
    command.upgrade(config, "0008")
    with engine.begin() as connection:
        for number in ("1000001", "1000002", "1000003"):
            connection.exec_driver_sql(
                "INSERT INTO doctor (gmc_number, queue, reason, rule_number, rule_table, visible_to,"
                " programme_owner_designated_bodies, tis_person_ids, decided_as_of, decision_basis)"
                " VALUES (?, 'CONNECTED', 'CONNECTED', 9, 't', '[]', '[]', '[]', '2026-11-28', 'b')",
                (number,),
            )
        # 1000001: asked for a change, then hidden later; 1000002: hidden, then unhidden by someone else.
        connection.exec_driver_sql(
            "INSERT INTO connection_request (client_request_id, gmc_number, designated_body_code, action, reason,"
            " requested_by, requested_at, status, attempts)"
            " VALUES ('c1', '1000001', '1-1RSSQ05', 'ADD', '1', 'Ann Admin', '2026-11-28 09:00:00.000000',"
            " 'PENDING', 0)"
        )
        connection.exec_driver_sql(
            "INSERT INTO doctor_hide (gmc_number, designated_body_code, reason, hidden_by, hidden_at,"
            " programme_owner_designated_bodies, ended_at, end_reason) VALUES"
            " ('1000001', '1-1RSSQ05', 'x', 'Hal Hider', '2026-11-28 10:00:00.000000', '[]', NULL, NULL),"
            " ('1000002', '1-1RSSQ05', 'x', 'Hal Hider', '2026-11-28 10:00:00.000000', '[]',"
            " '2026-11-28 11:00:00.000000', 'unhidden by Una Unhider')"
        )
    command.upgrade(config, "head")
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT gmc_number, last_changed_by, decision_basis FROM doctor ORDER BY gmc_number"
        ).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("1000001", "Hal Hider", ""),
        ("1000002", "Una Unhider", ""),
        ("1000003", None, ""),  # the next sync decides everyone again, and fills the membership type
    ]


ENVIRONMENT_READS = {"environ", "environb", "getenv", "getenvb"}


def environment_reads(source: str) -> list[int]:
    """The lines of ``source`` that read the process's environment (``os.environ``, ``os.getenv``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_READS:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(node.lineno for alias in node.names if alias.name in ENVIRONMENT_READS)
    return sorted(found)


def test_only_the_settings_module_reads_the_environment():
    assert environment_reads("import os\nurl = os.environ.get('X')\nfrom os import getenv\n") == [2, 3]
    package = ROOT / "reval"
    readers = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(package.rglob("*.py"))
        if path != package / "settings.py"
        for line in environment_reads(path.read_text())
    ]
    assert readers == [], "read settings in reval/settings.py, and pass them on"
