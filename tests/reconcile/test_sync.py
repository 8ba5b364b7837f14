"""Sync behaviour: idempotence, unfetched lists, deletions, history, hides, rejections, atomicity."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest
from sqlalchemy import func, select

from reval.designated_bodies import DEFAULT_DESIGNATED_BODIES, DesignatedBody
from reval.models import DoctorEvent, GmcConnection, RejectedRecord, SyncRun, TisPerson
from reval.reconcile.hides import record_hide
from reval.reconcile.queries import doctor_history
from reval.reconcile.reference import replace_designated_bodies
from reval.reconcile.sources import MassChangeGuard
from reval.reconcile.sync import GmcInput, SyncControls, SyncFailed, TisInput, run_sync
from reval.snapshot_files import open_snapshot
from tests.factories import (
    AS_OF,
    EAST_OF_ENGLAND,
    NORTH_EAST,
    WESSEX,
    days,
    exported,
    gmc_doctor,
    gmc_snapshot,
    person,
    placement,
    programme,
    tis_snapshot,
)

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)


@pytest.fixture
def sync(sessions, files):
    counter = iter(range(1000))

    def run(gmc_lists=None, people=None, as_of=AS_OF, jsonl=False, allow_mass_changes=False):
        n = next(counter)
        suffix = ".jsonl" if jsonl else ".json"
        gmc = tis = None
        if gmc_lists is not None:
            path = gmc_snapshot(files / f"gmc{n}{suffix}", gmc_lists, jsonl)
            gmc = GmcInput(str(path), open_snapshot(path, label="GMC", list_key="designatedBodies"))
        if people is not None:
            path = tis_snapshot(files / f"tis{n}{suffix}", people, jsonl)
            tis = TisInput(str(path), open_snapshot(path, label="TIS", list_key="people"))
        controls = SyncControls(MassChangeGuard(allowed=allow_mass_changes))
        return run_sync(sessions, gmc=gmc, tis=tis, as_of=as_of, controls=controls)

    return run


def decisions(sessions, body=None):
    return {row["gmcReferenceNumber"]: (row["queue"], row["reason"]) for row in exported(sessions, body)}


def events(sessions, number):
    with sessions.begin() as session:
        return [(e.source, e.kind, e.old, e.new) for e in doctor_history(session, number)]


def count(sessions, model):
    with sessions.begin() as session:
        return session.scalar(select(func.count()).select_from(model))


CONNECTED_ADA = {EAST_OF_ENGLAND: [gmc_doctor("1000001")]}
ADA = person("1000001", programme(EAST_OF_ENGLAND), person_id=1)


def test_first_sync_decides_and_records_history(sync, sessions):
    summary = sync(CONNECTED_ADA, [ADA])
    assert decisions(sessions) == {"1000001": ("CONNECTED", "CONNECTED")}
    assert summary["queues"]["CONNECTED"] == {"before": 0, "after": 1, "in": 1, "out": 0}
    assert [(source, kind) for source, kind, _old, _new in events(sessions, "1000001")] == [
        ("GMC_SYNC", "CONNECTION"),
        ("GMC_SYNC", "DECISION"),
    ]


@pytest.mark.parametrize("jsonl", [False, True])
def test_resyncing_the_same_snapshots_changes_nothing(sync, sessions, jsonl):
    people = [ADA, person("1000002", programme(WESSEX), person_id=2)]
    sync(CONNECTED_ADA, people, jsonl=jsonl)
    before = count(sessions, DoctorEvent)
    summary = sync(CONNECTED_ADA, people, jsonl=jsonl)
    assert summary["events"] == 0 and summary["decisionsChanged"] == 0
    assert count(sessions, DoctorEvent) == before
    assert decisions(sessions) == {"1000001": ("CONNECTED", "CONNECTED"), "1000002": ("DISCREPANCY", "NOT_CONNECTED")}


def test_a_body_absent_from_the_gmc_file_keeps_its_doctors(sync, sessions):
    sync({EAST_OF_ENGLAND: [gmc_doctor("1000001")], WESSEX: [gmc_doctor("1000002")]}, [ADA])
    summary = sync({WESSEX: [gmc_doctor("1000002")]}, [ADA])
    assert decisions(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    assert EAST_OF_ENGLAND in summary["gmc"]["designatedBodiesNotFetched"]
    assert summary["gmc"]["connectionsRemoved"] == 0


def test_a_doctor_missing_from_a_fetched_list_has_been_disconnected(sync, sessions):
    ended = person("1000001", programme(EAST_OF_ENGLAND, start=days(-900), end=days(-10)), person_id=1)
    sync(CONNECTED_ADA, [ended])
    assert decisions(sessions)["1000001"] == ("DISCREPANCY", "PROGRAMME_EXPIRED")
    summary = sync({EAST_OF_ENGLAND: []}, [ended], allow_mass_changes=True)
    assert summary["gmc"]["connectionsRemoved"] == 1
    assert decisions(sessions)["1000001"] == ("HISTORIC", "PREVIOUSLY_CONNECTED")
    assert ("GMC_SYNC", "CONNECTION", {"designatedBody": EAST_OF_ENGLAND}, {"designatedBody": None}) in events(
        sessions, "1000001"
    )


def test_a_doctor_moved_between_fetched_lists_is_moved(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    summary = sync({EAST_OF_ENGLAND: [], WESSEX: [gmc_doctor("1000001")]}, [ADA])
    assert summary["gmc"]["connectionsMoved"] == 1
    assert decisions(sessions)["1000001"] == ("DISCREPANCY", "DB_MISMATCH")


def test_a_person_absent_from_a_full_tis_snapshot_has_been_deleted(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    summary = sync(CONNECTED_ADA, [], allow_mass_changes=True)
    assert summary["tis"]["peopleDeleted"] == 1
    assert decisions(sessions)["1000001"] == ("DISCREPANCY", "NOT_IN_TIS")
    assert events(sessions, "1000001")[-1][:2] == ("TIS_SYNC", "DECISION")


def test_a_persons_documents_are_stored_without_their_keys_and_read_back_as_tis_sent_them(sync, sessions):
    curriculum = {"curriculumName": "General Practice", "curriculumStartDate": days(-100), "curriculumEndDate": None}
    membership = programme(EAST_OF_ENGLAND, curricula=[curriculum])
    ada = person("1000001", membership, person_id=1, placements=[placement("F1", days(-30), None)])
    sync(CONNECTED_ADA, [ada])  # a first sync: a new person, inserted
    ada["placements"].append(placement("F2", days(100), days(200)))
    sync(CONNECTED_ADA, [ada])  # a changed person: updated in place
    with sessions.begin() as session:
        stored = (
            session.connection()
            .exec_driver_sql("SELECT programme_memberships, placements FROM tis_person WHERE tis_person_id = 1")
            .one()
        )
        read = session.get(TisPerson, 1)
        assert read is not None
        assert (read.programme_memberships, read.placements) == (ada["programmeMemberships"], ada["placements"])
    stored_memberships, stored_placements = (orjson.loads(text) if isinstance(text, str) else text for text in stored)
    assert stored_memberships == [
        [
            membership["id"],
            "General Practice",
            "GP1",
            "SUBSTANTIVE",
            membership["programmeStartDate"],
            membership["programmeEndDate"],
            "East of England",
            "CCT",
            [["General Practice", days(-100), None]],
        ]
    ]
    assert stored_placements == [
        [p["id"], p["gradeAbbreviation"], p["dateFrom"], p["dateTo"]] for p in ada["placements"]
    ]


def test_a_sync_without_tis_keeps_tis_people(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    sync(CONNECTED_ADA, None)
    assert count(sessions, TisPerson) == 1
    assert decisions(sessions)["1000001"] == ("CONNECTED", "CONNECTED")


def test_a_rejected_record_keeps_its_previous_state_and_is_logged(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    broken = person("1000001", programme(EAST_OF_ENGLAND, start="2026-02-30"), person_id=1)
    summary = sync({EAST_OF_ENGLAND: [gmc_doctor("1000001", DateAdded="2024-08-15")]}, [broken])
    assert summary["rejectedRecords"] == 2
    assert count(sessions, TisPerson) == 1 and count(sessions, GmcConnection) == 1
    assert decisions(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    with sessions.begin() as session:
        logged = {(r.source, r.record_key, r.field) for r in session.scalars(select(RejectedRecord))}
    assert logged == {
        ("TIS", "1", "programmeMemberships[0].programmeStartDate"),
        ("GMC", "1000001", "DateAdded"),
    }


def test_a_record_without_a_readable_id_makes_the_snapshot_incomplete(sync, sessions, files):
    sync(CONNECTED_ADA, [ADA, person("1000002", programme(WESSEX), person_id=2)])
    path = files / "broken.jsonl"
    path.write_text('{"tisPersonId": 1, "gmcNumber": "1000001", "status": "CURRENT"}\nnot json at all\n')
    summary = run_sync(
        sessions, gmc=None, tis=TisInput(str(path), open_snapshot(path, label="TIS", list_key="people")), as_of=AS_OF
    )
    assert summary["tis"]["complete"] is False and summary["tis"]["peopleDeleted"] == 0
    assert count(sessions, TisPerson) == 2


def test_two_records_for_one_person_keep_the_first(sync, sessions):
    summary = sync(None, [ADA, person("1000009", programme(WESSEX), person_id=1)])
    assert summary["rejectedRecords"] == 1
    assert summary["rejections"][0]["message"] == "tisPersonId: appears twice; the later record is ignored (got 1)"
    assert set(decisions(sessions)) == {"1000001"}


def test_a_sync_failing_midway_leaves_the_previous_state(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    before = decisions(sessions), count(sessions, DoctorEvent)

    def people_then_disk_error():
        yield "people[0]", person("1000001", programme(WESSEX), person_id=1)
        raise OSError("disk read error")

    with pytest.raises(SyncFailed):
        run_sync(sessions, gmc=None, tis=TisInput("flaky", people_then_disk_error()), as_of=AS_OF)
    assert (decisions(sessions), count(sessions, DoctorEvent)) == before
    with sessions.begin() as session:
        last = session.scalars(select(SyncRun).order_by(SyncRun.id.desc())).first()
        assert last.status == "FAILED" and "disk read error" in last.error


def test_a_programme_ending_moves_the_doctor_on_its_end_date(sync, sessions):
    ending = person("1000001", programme(EAST_OF_ENGLAND, start=days(-500), end=days(2)), person_id=1)
    sync(CONNECTED_ADA, [ending])
    sync(CONNECTED_ADA, [ending], as_of=date.fromisoformat(days(1)))
    assert decisions(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    summary = sync(CONNECTED_ADA, [ending], as_of=date.fromisoformat(days(2)))
    assert summary["doctorsDecided"] == 1
    assert decisions(sessions)["1000001"] == ("DISCREPANCY", "PROGRAMME_EXPIRED")


def test_changing_programme_owners_re_decides_without_new_data(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    with sessions.begin() as session:
        renamed = [
            b if b.code != EAST_OF_ENGLAND else DesignatedBody(b.code, b.name, "EoE") for b in DEFAULT_DESIGNATED_BODIES
        ]
        replace_designated_bodies(session, renamed)
    sync(CONNECTED_ADA, [ADA])
    assert decisions(sessions)["1000001"] == ("DISCREPANCY", "UNKNOWN_PROGRAMME_OWNER")


def hide(sessions, number, body, until=None):
    with sessions.begin() as session:
        record_hide(session, number, body, "on maternity leave", until, "admin@eoe", as_of=AS_OF, now=NOW)


def test_a_hide_applies_only_to_its_designated_body(sync, sessions):
    sync(CONNECTED_ADA, [person("1000001", programme(WESSEX), person_id=1)])  # DB_MISMATCH: EoE sees it
    sync(
        {EAST_OF_ENGLAND: []},
        [person("1000002", programme(WESSEX), programme(NORTH_EAST), person_id=2)],
        allow_mass_changes=True,
    )
    hide(sessions, "1000002", WESSEX)
    assert decisions(sessions, WESSEX)["1000002"] == ("HIDDEN", "HIDDEN_BY_ADMIN")
    assert decisions(sessions, NORTH_EAST)["1000002"] == ("DISCREPANCY", "OVERLAPPING_PROGRAMMES")
    assert decisions(sessions)["1000002"] == ("DISCREPANCY", "OVERLAPPING_PROGRAMMES")
    assert events(sessions, "1000002")[-1][:2] == ("ADMIN", "HIDE")


def test_a_hide_ends_on_its_until_date(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    hide(sessions, "1000001", EAST_OF_ENGLAND, until=date.fromisoformat(days(3)))
    sync(CONNECTED_ADA, [ADA], as_of=date.fromisoformat(days(2)))
    assert decisions(sessions, EAST_OF_ENGLAND)["1000001"] == ("HIDDEN", "HIDDEN_BY_ADMIN")
    summary = sync(CONNECTED_ADA, [ADA], as_of=date.fromisoformat(days(3)))
    assert summary["hidesEnded"] == 1
    assert decisions(sessions, EAST_OF_ENGLAND)["1000001"] == ("CONNECTED", "CONNECTED")
    assert events(sessions, "1000001")[-1][:2] == ("ADMIN", "HIDE_ENDED")


def test_a_hide_ends_when_the_gmc_connection_changes(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    hide(sessions, "1000001", EAST_OF_ENGLAND)
    sync({EAST_OF_ENGLAND: [], WESSEX: [gmc_doctor("1000001")]}, [ADA])
    assert decisions(sessions, WESSEX)["1000001"] == ("DISCREPANCY", "DB_MISMATCH")
    with sessions.begin() as session:
        last = doctor_history(session, "1000001")[-1]
    assert (last.kind, last.source) == ("HIDE_ENDED", "GMC_SYNC")
    assert last.detail == f"GMC connection changed from {EAST_OF_ENGLAND} to {WESSEX}"


def test_a_hide_ends_when_programme_owners_change(sync, sessions):
    sync(CONNECTED_ADA, [ADA])
    hide(sessions, "1000001", EAST_OF_ENGLAND)
    sync(CONNECTED_ADA, [person("1000001", programme(WESSEX), person_id=1)])
    assert decisions(sessions, EAST_OF_ENGLAND)["1000001"] == ("DISCREPANCY", "DB_MISMATCH")
    assert events(sessions, "1000001")[-1][1] == "HIDE_ENDED"


def test_a_sync_that_changes_many_records_refreshes_the_planners_statistics_and_a_quiet_one_does_not(sync, sessions):
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's planner statistics; SQLite plans from its indexes alone")
    queue_tables = ("doctor", "doctor_visibility", "doctor_visibility_name")
    source_tables = ("gmc_connection", "tis_person", "rejected_tis_person")  # read by range while deciding

    def refreshes() -> dict[str, tuple[int, int]]:
        with engine.connect() as connection:
            counts = {
                name: (vacuums, analyses)
                for name, vacuums, analyses in connection.exec_driver_sql(
                    "SELECT relname, vacuum_count, analyze_count FROM pg_stat_user_tables"
                ).all()
            }
        return {table: counts[table] for table in queue_tables + source_tables}

    before = refreshes()
    sync(CONNECTED_ADA, [ADA])  # a first sync changes every decision and fills both sources
    after_first = refreshes()
    assert all(after_first[table] == (before[table][0] + 1, before[table][1] + 1) for table in queue_tables), (
        before,
        after_first,
    )
    assert all(after_first[table] == (before[table][0], before[table][1] + 1) for table in source_tables), (
        before,
        after_first,
    )
    sync(CONNECTED_ADA, [ADA])  # unchanged: nothing to learn
    assert refreshes() == after_first
