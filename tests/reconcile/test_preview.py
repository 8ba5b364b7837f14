"""Seeing a change before it happens: `reval sync --dry-run` and `reval rules preview`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from reval.clock import utcnow
from reval.extensions import database
from reval.gmc.codes import Action
from reval.models import Base, Doctor, GmcConnection, RejectedTisPerson, SyncRun, TisPerson
from reval.reconcile.connections import record_connection_request
from reval.reconcile.decisions import person_spans
from reval.reconcile.helper import IN_THIS_PROCESS, SyncHelper
from reval.reconcile.lock import sync_lock
from reval.reconcile.preview import dry_run_sync, preview_moves
from reval.reconcile.sources import MassChangeGuard
from reval.reconcile.sync import GmcInput, SyncControls, TisInput, run_sync
from reval.rules import DEFAULT_RULE_TABLE, RuleEngine
from reval.snapshot_files import open_snapshot
from tests.conftest import assert_one_line_refusal
from tests.factories import (
    AS_OF,
    EAST_OF_ENGLAND,
    NORTH_EAST,
    WESSEX,
    days,
    gmc_doctor,
    gmc_snapshot,
    person,
    programme,
    sync_snapshots,
    tis_snapshot,
)

# Ada's programme ends in ten days: a sync as of then moves her to Discrepancies.
ENDING = person("1000001", programme(EAST_OF_ENGLAND, start=days(-400), end=days(10)), person_id=1)
GRACE = person("1000002", programme(WESSEX), person_id=2)  # not connected: DISCREPANCY throughout
MARY = person("1000003", programme(NORTH_EAST), person_id=3)


def every_row(sessions) -> dict[str, list[tuple]]:
    """Every table's rows, in a stable order: the database's content."""
    with sessions.begin() as session:
        return {
            table.name: sorted(
                (tuple(repr(value) for value in row) for row in session.execute(select(table))), key=repr
            )
            for table in Base.metadata.sorted_tables
        }


def decisions(sessions) -> dict[str, tuple]:
    with sessions.begin() as session:
        return {
            doctor.gmc_number: (doctor.queue, doctor.reason, tuple(sorted(doctor.visible_to)))
            for doctor in session.scalars(select(Doctor))
        }


def moves_between(before: dict[str, tuple], after: dict[str, tuple]) -> list[dict]:
    """The moves from one set of stored decisions to the next, worked out here from the rows."""
    moves = []
    for number in sorted(after):
        old = before.get(number)
        if old == after[number]:
            continue
        queue, reason, bodies = after[number]
        moves.append(
            {
                "gmcReferenceNumber": number,
                "from": {"queue": old[0] if old else None, "reason": old[1] if old else None},
                "to": {"queue": queue, "reason": reason},
                "designatedBodies": sorted(set(bodies) | set(old[2] if old else ())),
            }
        )
    return moves


@pytest.fixture
def first_night(reval, files):
    """Ada connected to East of England, Grace not connected, synced as of AS_OF; then tomorrow's
    snapshots: Ada gone from GMC's list, Mary new and connected to North East."""
    gmc = gmc_snapshot(files / "gmc1.json", {EAST_OF_ENGLAND: [gmc_doctor("1000001")], WESSEX: []})
    tis = tis_snapshot(files / "tis1.json", [ENDING, GRACE])
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF)
    gmc2 = gmc_snapshot(files / "gmc2.json", {EAST_OF_ENGLAND: [], WESSEX: [], NORTH_EAST: [gmc_doctor("1000003")]})
    tis2 = tis_snapshot(files / "tis2.json", [ENDING, GRACE, MARY])
    return gmc2, tis2


def test_a_dry_run_writes_nothing_and_lists_the_moves_the_sync_then_makes(reval, sessions, first_night):
    gmc, tis = first_night
    sources = ("--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF + timedelta(days=1), "--allow-mass-changes")
    rows_before, decided_before = every_row(sessions), decisions(sessions)

    dry_run = json.loads(reval("sync", "--dry-run", *sources, "--format", "json").stdout)

    assert every_row(sessions) == rows_before
    assert set(dry_run) == {
        "asOf",
        "ruleTable",
        "doctors",
        "moves",
        "rejectedRecords",
        "heldBack",
        "archived",
        "restored",
    }
    assert dry_run["asOf"] == (AS_OF + timedelta(days=1)).isoformat()
    assert dry_run["doctors"] == 3 and dry_run["rejectedRecords"] == 0 and dry_run["heldBack"] == []
    reval("sync", *sources)
    assert dry_run["moves"] == moves_between(decided_before, decisions(sessions))
    assert [move["gmcReferenceNumber"] for move in dry_run["moves"]] == ["1000001", "1000003"]
    assert dry_run["moves"][0]["from"] == {"queue": "CONNECTED", "reason": "CONNECTED"}
    assert dry_run["moves"][1]["from"] == {"queue": None, "reason": None}


def test_a_dry_run_prints_the_syncs_summary_as_what_would_happen(reval, sessions, first_night):
    gmc, tis = first_night
    rows_before = every_row(sessions)
    output = reval(
        "sync", "--dry-run", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF, "--allow-mass-changes"
    ).stdout
    assert output.startswith(f"Dry run, nothing written: a sync as of {AS_OF} with rules ")
    assert "decisions would change" in output
    assert "2 doctors would move" in output
    assert "CONNECTED (CONNECTED) → DISCREPANCY (NOT_CONNECTED): 1" in output
    assert every_row(sessions) == rows_before


def test_a_dry_run_is_held_back_by_the_guard_as_the_sync_would_be(reval, sessions, first_night, caplog):
    gmc, tis = first_night
    rows_before = every_row(sessions)
    dry_run = json.loads(
        reval("sync", "--dry-run", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF, "--format", "json").stdout
    )
    assert [(held["source"], held.get("designatedBody")) for held in dry_run["heldBack"]] == [("GMC", EAST_OF_ENGLAND)]
    assert "1000001" not in [move["gmcReferenceNumber"] for move in dry_run["moves"]]
    assert every_row(sessions) == rows_before
    alerts = [record.getMessage() for record in caplog.records if "OPERATOR ALERT" in record.getMessage()]
    assert alerts and all(alert.startswith("Dry run, nothing written: OPERATOR ALERT") for alert in alerts)


def test_a_dry_run_counts_the_records_the_sync_would_reject(reval, sessions, files, first_night):
    gmc, _tis = first_night
    bad = tis_snapshot(files / "bad.json", [ENDING, GRACE, person("not-a-number", programme(WESSEX), person_id=9)])
    rows_before = every_row(sessions)
    sources = ("--gmc-file", gmc, "--tis-file", bad, "--as-of", AS_OF, "--allow-mass-changes")
    dry_run = json.loads(reval("sync", "--dry-run", *sources, "--json").stdout)
    assert dry_run["rejectedRecords"] == 1
    assert every_row(sessions) == rows_before


def test_a_dry_run_waits_for_the_lock_and_records_no_skipped_run(app, reval, sessions, first_night):
    gmc, tis = first_night
    rows_before = every_row(sessions)
    with sync_lock(database(app).engine):
        result = reval("sync", "--dry-run", "--gmc-file", gmc, "--tis-file", tis, "--wait-seconds", 0, expect_exit=1)
    assert_one_line_refusal(result, 1, "another sync holds the sync lock", "changed nothing")
    assert every_row(sessions) == rows_before


def test_a_real_sync_is_not_blocked_once_the_dry_run_has_copied(reval, sessions, first_night):
    """The dry run lets go of the lock before its sync: a sync after it runs at once."""
    gmc, tis = first_night
    reval("sync", "--dry-run", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF)
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF, "--wait-seconds", 0)
    with sessions.begin() as session:
        assert [run.status for run in session.scalars(select(SyncRun).order_by(SyncRun.id))] == [
            "SUCCEEDED",
            "PARTIAL",
        ]


@pytest.mark.parametrize("as_of", [AS_OF + timedelta(days=9), AS_OF + timedelta(days=10), AS_OF + timedelta(days=200)])
def test_a_preview_lists_exactly_the_moves_the_next_sync_makes(reval, sessions, files, first_night, as_of):
    gmc = gmc_snapshot(files / "gmc1.json", {EAST_OF_ENGLAND: [gmc_doctor("1000001")], WESSEX: []})
    tis = tis_snapshot(files / "tis1.json", [ENDING, GRACE])
    rows_before, decided_before = every_row(sessions), decisions(sessions)

    preview = json.loads(reval("rules", "preview", "--as-of", as_of, "--format", "json").stdout)

    assert every_row(sessions) == rows_before
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", as_of)
    assert preview["moves"] == moves_between(decided_before, decisions(sessions))
    assert preview["doctors"] == 2 and preview["asOf"] == as_of.isoformat()
    assert (preview["moves"] != []) == (as_of > AS_OF + timedelta(days=9))


def test_a_preview_prints_moves_by_from_and_to_then_body_then_doctor(reval, first_night):
    output = reval("rules", "preview", "--as-of", AS_OF + timedelta(days=30)).stdout
    lines = output.splitlines()
    assert lines[0].startswith(f"Rule preview, nothing written: 2 doctors decided as of {AS_OF + timedelta(days=30)}")
    assert lines[2:] == [
        "CONNECTED (CONNECTED) → DISCREPANCY (PROGRAMME_EXPIRED): 1",
        f"  {EAST_OF_ENGLAND}: 1",
        "    1000001",
    ]


def test_a_preview_as_csv_has_a_row_per_move(reval, first_night):
    output = reval("rules", "preview", "--as-of", AS_OF + timedelta(days=30), "--format", "csv").stdout
    assert output.splitlines() == [
        "gmcReferenceNumber,fromQueue,fromReason,toQueue,toReason,designatedBodies",
        f"1000001,CONNECTED,CONNECTED,DISCREPANCY,PROGRAMME_EXPIRED,{EAST_OF_ENGLAND}",
    ]


def test_a_preview_of_today_after_a_sync_of_today_moves_nobody(reval, first_night):
    preview = json.loads(reval("rules", "preview", "--as-of", AS_OF, "--format", "json").stdout)
    assert preview["moves"] == [] and preview["doctors"] == 2


@pytest.mark.parametrize(
    "args",
    [
        ("rules", "preview", "--as-of", "1999-12-31"),
        ("rules", "preview", "--as-of", "2999-01-01"),
        ("sync", "--dry-run", "--as-of", "1999-12-31"),
    ],
)
def test_an_as_of_date_out_of_bounds_is_refused_as_for_a_sync(reval, sessions, args):
    rows_before = every_row(sessions)
    assert_one_line_refusal(reval(*args, expect_exit=2), 2, "as-of date", "is outside 2000-01-01")
    assert every_row(sessions) == rows_before


def test_a_preview_date_that_is_no_date_is_refused(reval):
    result = reval("rules", "preview", "--as-of", "next week", expect_exit=2)
    assert "next week" in result.output


def test_rules_alone_still_prints_the_table(reval):
    assert reval("rules").stdout.startswith("Rule table ")
    assert "Check:" in reval("rules", "--check").stdout


def test_a_dry_run_of_a_sync_that_would_fail_says_so_and_writes_nothing(reval, sessions, files, first_night):
    empty_gmc, empty_tis = gmc_snapshot(files / "none.json", {}), tis_snapshot(files / "nobody.json", [])
    rows_before = every_row(sessions)
    result = reval("sync", "--dry-run", "--quiet", "--gmc-file", empty_gmc, "--tis-file", empty_tis, expect_exit=1)
    assert_one_line_refusal(result, 1, "the sync would fail (dry run, nothing written)", "gave no designated body")
    assert every_row(sessions) == rows_before


def test_a_preview_in_a_helper_process_equals_one_worked_alone(sessions, first_night):
    with sessions() as session:
        alone = preview_moves(session, as_of=AS_OF + timedelta(days=30), helper=IN_THIS_PROCESS)
        with SyncHelper(True, start_now=True, preload=("reval.reconcile.preview",)) as helper:
            shared = preview_moves(session, as_of=AS_OF + timedelta(days=30), helper=helper)
        assert helper.uses_process
    assert shared == alone and [move.gmc_number for move in alone.moves] == ["1000001"]


def test_a_preview_decides_the_doctors_a_source_has_and_no_decision_yet(sessions, first_night):
    """As between a sharded run's applying its sources and deciding them: Mary is on North East's
    list, one doctor is a TIS person only and another a TIS person whose record was rejected, and
    none has a decision; the preview decides them all."""
    with sessions.begin() as session:
        run_id = session.scalar(select(SyncRun.id).order_by(SyncRun.id.desc()).limit(1))
        session.add(RejectedTisPerson(tis_person_id=8, gmc_number="1000008", owners=[WESSEX], sync_run_id=run_id))
        session.add(GmcConnection(gmc_number="1000003", designated_body_code=NORTH_EAST, record_hash="x"))
        session.add(
            TisPerson(
                tis_person_id=9,
                gmc_number="1000009",
                programme_memberships=[],
                placements=[],
                spans=person_spans([], []),
                record_hash="x",
            )
        )
    with sessions() as session:
        preview = preview_moves(session, as_of=AS_OF, helper=IN_THIS_PROCESS)
    assert preview.doctors == 5
    assert [(move.gmc_number, move.from_queue, move.to_queue) for move in preview.moves] == [
        ("1000003", None, "DISCREPANCY"),
        ("1000008", None, "DISCREPANCY"),
        ("1000009", None, "HIDDEN"),
    ]


def test_a_preview_of_a_new_rule_table_lists_the_moves_its_first_sync_makes(sessions, files, first_night):
    """After a deploy: version 3 puts doctors not connected in a queue of their own reason."""
    rows = tuple(
        replace(row, reason="NOT_CONNECTED_YET") if row.reason == "NOT_CONNECTED" else row
        for row in DEFAULT_RULE_TABLE.rows
    )
    engine = RuleEngine(replace(DEFAULT_RULE_TABLE, version="3", rows=rows))
    decided_before = decisions(sessions)
    with sessions() as session:
        preview = preview_moves(session, as_of=AS_OF, engine=engine)
    assert preview.rule_table == "reval-default@3"

    lists = {EAST_OF_ENGLAND: [gmc_doctor("1000001")], WESSEX: []}
    sync_snapshots(sessions, files, lists, [ENDING, GRACE], "1", as_of=AS_OF, engine=engine)
    assert [move.as_json() for move in preview.moves] == moves_between(decided_before, decisions(sessions))
    assert [(move.gmc_number, move.to_reason) for move in preview.moves] == [("1000002", "NOT_CONNECTED_YET")]


def test_a_live_dry_run_only_reads_gmc_and_delivers_no_request(gmc_app, reval, sessions, gmc_connect, files):
    tis = tis_snapshot(files / "tis.json", [ENDING, GRACE])
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001")
    reval("sync", "--tis-file", tis, "--as-of", AS_OF)
    with sessions.begin() as session:  # due now: a real sync without workers would deliver it
        record_connection_request(
            session,
            gmc_number_text="1000002",
            designated_body=WESSEX,
            action=Action.ADD,
            reason="1",
            requested_by="ann",
            now=utcnow(),
        )
    del gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"]
    gmc_connect.state.calls.clear()
    rows_before = every_row(sessions)

    dry_run = json.loads(
        reval("sync", "--dry-run", "--tis-file", tis, "--as-of", AS_OF, "--allow-mass-changes", "--json").stdout
    )

    assert {call["operation"] for call in gmc_connect.state.calls} == {"GetDoctorsForDB"}
    assert [(move["gmcReferenceNumber"], move["to"]["reason"]) for move in dry_run["moves"]] == [
        ("1000001", "NOT_CONNECTED")
    ]
    assert every_row(sessions) == rows_before


def test_a_preview_asked_again_is_the_same_until_a_sync_or_a_change(reval, sessions, files, first_night):
    later = AS_OF + timedelta(days=30)
    first = json.loads(reval("rules", "preview", "--as-of", later, "--format", "json").stdout)
    assert json.loads(reval("rules", "preview", "--as-of", later, "--format", "json").stdout) == first
    # Ada's programme is extended: a sync stores it, and the preview follows at once.
    extended = person("1000001", programme(EAST_OF_ENGLAND, start=days(-400), end=days(100)), person_id=1)
    gmc = gmc_snapshot(files / "gmc3.json", {EAST_OF_ENGLAND: [gmc_doctor("1000001")], WESSEX: []})
    reval(
        "sync", "--gmc-file", gmc, "--tis-file", tis_snapshot(files / "tis3.json", [extended, GRACE]), "--as-of", AS_OF
    )
    again = json.loads(reval("rules", "preview", "--as-of", later, "--format", "json").stdout)
    assert [move["gmcReferenceNumber"] for move in first["moves"]] == ["1000001"] and again["moves"] == []


def test_a_real_sync_runs_while_a_dry_run_reads_its_sources(sessions, files, first_night):
    """The dry run holds the sync lock only while it copies the database: by the time it reads
    its sources, a real sync takes the lock at once (no wait) and runs to the end."""
    gmc, tis = first_night
    real_runs: list[str] = []

    def lists_read_after_a_real_sync():
        summary = run_sync(
            sessions,
            gmc=None,
            tis=TisInput(str(tis), open_snapshot(tis, label="TIS", list_key="people")),
            as_of=AS_OF,
            controls=SyncControls(wait_seconds=0),
        )
        real_runs.append(summary["status"])
        yield from open_snapshot(gmc, label="GMC", list_key="designatedBodies")

    dry_run = dry_run_sync(
        sessions,
        gmc=GmcInput(str(gmc), lists_read_after_a_real_sync()),
        tis=None,
        as_of=AS_OF,
        controls=SyncControls(MassChangeGuard(allowed=True)),
    )
    assert real_runs == ["SUCCEEDED"]
    assert [move.gmc_number for move in dry_run.moves] == ["1000001", "1000003"]


def test_a_dry_run_of_a_missing_file_is_refused_as_the_sync_refuses_it(reval, sessions, files, first_night):
    _gmc, tis = first_night
    rows_before = every_row(sessions)
    missing = files / "no-such-gmc.json"
    for command in (("sync",), ("sync", "--dry-run")):
        result = reval(*command, "--gmc-file", missing, "--tis-file", tis, expect_exit=2)
        assert_one_line_refusal(result, 2, str(missing))
    assert every_row(sessions) == rows_before


def test_reval_bench_times_a_preview_of_every_doctor_that_moves_nobody(reval):
    """Right after a sync as of the same day, a preview decides every doctor and moves none."""
    figures = json.loads(reval("bench", "--doctors", "300", "--json", "--quiet").output)
    assert figures["previewDoctors"] == figures["decided"] and figures["previewMoves"] == 0
    assert figures["previewSeconds"] > 0 and figures["previewToFullSyncDecide"] > 0
