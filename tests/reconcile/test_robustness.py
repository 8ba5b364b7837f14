"""A sync that no single record, empty snapshot, second sync or killed process can break.

Each test runs real syncs on the test database (SQLite, or PostgreSQL with REVAL_TEST_DATABASE_URL).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import tracemalloc
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select
from sqlalchemy.engine.default import DefaultDialect

from reval.clock import utcnow
from reval.db import BULK_PAGE_CACHE_KIB, PAGE_CACHE_KIB
from reval.designated_bodies import DEFAULT_DESIGNATED_BODIES
from reval.extensions import database
from reval.models import (
    Base,
    Doctor,
    DoctorEvent,
    DoctorHide,
    GmcConnection,
    RejectedRecord,
    RejectedTisPerson,
    SyncRun,
    TisPerson,
)
from reval.progress import Progress
from reval.reconcile.lock import sync_lock
from reval.reconcile.reference import replace_designated_bodies
from reval.reconcile.sources import MassChangeGuard
from reval.reconcile.sync import (
    GmcInput,
    SyncControls,
    SyncFailed,
    SyncInterrupted,
    TisInput,
    failure_text,
    run_sync,
)
from reval.snapshot_files import open_snapshot
from reval.synthetic import generate
from tests.conftest import wait_for
from tests.factories import (
    AS_OF,
    EAST_OF_ENGLAND,
    NORTH_EAST,
    WESSEX,
    days,
    gmc_doctor,
    gmc_snapshot,
    person,
    placement,
    programme,
    tis_snapshot,
)

ALLOW = SyncControls(MassChangeGuard(allowed=True))


def sync_files(sessions, gmc_path=None, tis_path=None, controls=SyncControls(), as_of=AS_OF):
    gmc = GmcInput.from_file(gmc_path) if gmc_path else None
    tis = TisInput.from_file(tis_path) if tis_path else None
    return run_sync(sessions, gmc=gmc, tis=tis, as_of=as_of, controls=controls)


def doctors(sessions) -> dict[str, tuple[str, str]]:
    with sessions.begin() as session:
        return {d.gmc_number: (d.queue, d.reason) for d in session.scalars(select(Doctor))}


def count(sessions, model, *where) -> int:
    with sessions.begin() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def numbers(start: int, n: int) -> list[str]:
    return [f"{start + i:07d}" for i in range(n)]


# --- 1. one record never fails the whole sync --------------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=30),
    st.text(min_size=201, max_size=260),  # longer than any column
    st.sampled_from(
        ["Ada\x00Lovelace", "tab\there", "line\nbreak", "\u0085", "\x7f", "Ünïcödé", "'; DROP TABLE doctor;--"]
    ),
    st.none(),
    st.integers(),
)
HOSTILE_ID = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["²", "١٢٣", "-5", "0", str(2**63), str(2**63 - 1), " 42 ", "1e3", ""]),
    st.text(max_size=10),
    st.none(),
    st.booleans(),
)
HOSTILE_GMC = st.one_of(
    # Arabic-Indic and fullwidth digits on purpose: numbers that look right and are not.
    st.sampled_from(["١٢٣٤٥٦٧", "１２３４５６７", "123456", "12345678", " 7654321 ", "765432a", "", "unknown"]),  # noqa: RUF001
    st.text(max_size=9),
    st.integers(),
    st.none(),
)
HOSTILE_DATE = st.one_of(
    st.dates().map(str),  # 0001-01-01 to 9999-12-31
    st.sampled_from(
        ["9999-12-31", "1899-12-31", "1900-01-01", "2026-02-30", "2026-W01-1", "20260101", "31/12/2026", ""]
    ),
    st.text(max_size=12),
    st.none(),
)
HOSTILE_OPAQUE_ID = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70), st.uuids().map(str), st.text(max_size=120), st.none()
)


@st.composite
def hostile_person(draw, index: int):
    good_programme = programme(WESSEX)
    hostile_programme = {
        **good_programme,
        "id": draw(HOSTILE_OPAQUE_ID),
        "programmeStartDate": draw(st.one_of(st.just(days(-100)), HOSTILE_DATE)),
        "programmeEndDate": draw(st.one_of(st.just("9999-12-31"), HOSTILE_DATE)),
        "programmeName": draw(st.one_of(st.just("Surgery"), HOSTILE_TEXT)),
        "programmeOwner": draw(st.one_of(st.just("Wessex"), HOSTILE_TEXT)),
    }
    hostile_placement = {
        **placement(),
        "id": draw(HOSTILE_OPAQUE_ID),
        "dateTo": draw(st.one_of(st.just("9999-12-31"), HOSTILE_DATE)),
        "gradeAbbreviation": draw(st.one_of(st.just("ST1"), HOSTILE_TEXT)),
    }
    return {
        "tisPersonId": draw(st.one_of(st.just(900_000 + index), HOSTILE_ID)),
        "gmcNumber": draw(st.one_of(st.just(f"{8_000_000 + index:07d}"), HOSTILE_GMC)),
        "forenames": draw(st.one_of(st.just("Grace"), HOSTILE_TEXT)),
        "surname": draw(st.one_of(st.just("Hopper"), HOSTILE_TEXT)),
        "status": draw(st.one_of(st.just("CURRENT"), HOSTILE_TEXT)),
        "programmeMemberships": [hostile_programme],
        "placements": [hostile_placement],
    }


@st.composite
def hostile_gmc_doctor(draw, index: int):
    return gmc_doctor(
        draw(st.one_of(st.just(f"{8_000_000 + index:07d}"), HOSTILE_GMC)),
        DoctorFirstName=draw(st.one_of(st.just("Grace"), HOSTILE_TEXT)),
        DoctorLastName=draw(st.one_of(st.just("Hopper"), HOSTILE_TEXT)),
        SubmissionDate=draw(
            st.one_of(
                st.just("01/06/2027"),
                st.sampled_from(["31/12/9999", "01/01/1899", "٠١/٠٦/٢٠٢٧"]),  # noqa: RUF001 -- Arabic-Indic digits on purpose
                HOSTILE_TEXT,
            )
        ),
        DoctorStatus=draw(st.one_of(st.just("Not Under Notice"), HOSTILE_TEXT)),
    )


GOOD = [(f"{7_000_000 + i:07d}", 700_000 + i) for i in range(5)]


def empty_database(sessions) -> None:
    with sessions.begin() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
        replace_designated_bodies(session, DEFAULT_DESIGNATED_BODIES)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_hostile_records_are_rejected_or_decided_and_never_fail_the_sync(sessions, tmp_path_factory, data):
    empty_database(sessions)
    directory = tmp_path_factory.mktemp("hostile")
    hostile_people = [data.draw(hostile_person(i), label=f"person {i}") for i in range(4)]
    hostile_doctors = [data.draw(hostile_gmc_doctor(i), label=f"gmc doctor {i}") for i in range(4)]
    good_people = [person(number, programme(WESSEX), person_id=person_id) for number, person_id in GOOD]
    good_doctors = [gmc_doctor(number) for number, _ in GOOD]
    jsonl = data.draw(st.booleans(), label="jsonl")
    gmc_path = written(
        directory / "gmc",
        "designatedBodies",
        [{"designatedBodyCode": WESSEX, "doctors": good_doctors + hostile_doctors}],
        jsonl,
    )
    tis_path = written(directory / "tis", "people", good_people + hostile_people, jsonl)

    summary = sync_files(sessions, gmc_path, tis_path)

    assert summary["status"] in ("SUCCEEDED", "PARTIAL")
    decided = doctors(sessions)
    for number, _ in GOOD:
        assert decided[number] == ("CONNECTED", "CONNECTED")
    with sessions.begin() as session:
        rejected = list(session.scalars(select(RejectedRecord)))
        known = set(session.scalars(select(GmcConnection.gmc_number)))
        known |= set(session.scalars(select(TisPerson.gmc_number).where(TisPerson.gmc_number.is_not(None))))
        known |= set(session.scalars(select(RejectedTisPerson.gmc_number)))
        people_stored = session.scalar(select(func.count()).select_from(TisPerson))
    # Every record read is either stored or rejected with what was wrong, and named.
    tis_rejected = [r for r in rejected if r.source == "TIS"]
    assert people_stored + len(tis_rejected) >= len(good_people) + len(hostile_people) - _duplicate_ids(
        good_people + hostile_people
    )
    assert all(r.reason and r.message for r in rejected)
    # Every GMC number a source holds is decided: in a queue, with a reason.
    assert known <= decided.keys()
    assert all(number.isascii() and number.isdigit() and len(number) == 7 for number in decided)


def written(stem: Path, list_key: str, records: list, jsonl: bool) -> Path:
    """A snapshot file as any JSON writer could write it (integers beyond 64 bits included)."""
    if jsonl:
        path = stem.with_suffix(".jsonl")
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    else:
        path = stem.with_suffix(".json")
        path.write_text(json.dumps({list_key: records}))
    return path


def _duplicate_ids(people) -> int:
    ids = [
        p["tisPersonId"] for p in people if isinstance(p["tisPersonId"], int) and not isinstance(p["tisPersonId"], bool)
    ]
    return len(ids) - len(set(ids))


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("surname", "Love\x00lace", "surname"),
        ("forenames", "A" * 201, "forenames"),
        ("status", "C" * 101, "status"),
        ("tisPersonId", "²", "tisPersonId"),
        ("tisPersonId", 2**63, "tisPersonId"),
        ("tisPersonId", -4, "tisPersonId"),
        ("gmcNumber", "١٢٣٤٥٦٧", "gmcNumber"),
    ],
)
def test_a_record_that_storage_could_not_hold_is_rejected_with_its_field_and_value(
    sessions, files, field, value, named
):
    bad = person("1000002", programme(WESSEX), person_id=2, **{field: value})
    good = person("1000001", programme(WESSEX), person_id=1)
    tis_path = tis_snapshot(files / "tis.json", [good, bad])
    gmc_path = gmc_snapshot(files / "gmc.json", {WESSEX: [gmc_doctor("1000001"), gmc_doctor("1000002")]})
    summary = sync_files(sessions, gmc_path, tis_path)
    # A person who cannot be identified makes the snapshot incomplete: nobody is deleted on its account.
    assert summary["status"] == ("PARTIAL" if field == "tisPersonId" else "SUCCEEDED")
    [rejection] = summary["rejections"]
    assert rejection["field"] == named
    assert doctors(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    assert "1000002" in doctors(sessions)  # decided, on what GMC says and the rejection


def test_open_ended_dates_are_ordinary_dates(sessions, files, reval):
    open_ended = person(
        "1000001", programme(WESSEX, end="9999-12-31"), person_id=1, placements=[placement(end="9999-12-31")]
    )
    tis_path = tis_snapshot(files / "tis.json", [open_ended])
    gmc_path = gmc_snapshot(files / "gmc.json", {WESSEX: [gmc_doctor("1000001")]})
    assert sync_files(sessions, gmc_path, tis_path)["status"] == "SUCCEEDED"
    assert doctors(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    assert "9999-12-31" in reval("explain", "1000001").output
    refused = reval("explain", "1000001", "--as-of", "9999-12-31", expect_exit=2).output
    assert "9999-12-31" in refused and "Traceback" not in refused


def test_string_identifiers_are_carried_not_rejected(sessions, files):
    uuid_programme = programme(
        WESSEX, id="5b3f7a2e-9f7c-4d8e-b0a4-3c1a2f6e9d10", curricula=[{"id": "CUR-1", "curriculumName": "GP"}]
    )
    tis_path = tis_snapshot(
        files / "tis.json",
        [person("1000001", uuid_programme, person_id=1, placements=[{**placement(), "id": "PL-77"}])],
    )
    summary = sync_files(sessions, None, tis_path)
    assert summary["rejectedRecords"] == 0 and count(sessions, TisPerson) == 1


def test_a_failed_run_stores_no_personal_data(sessions, app):
    """A database error quotes its statement and values; what Reval stores and prints does not."""
    engine = database(app).engine
    with pytest.raises(Exception) as raised, engine.begin() as connection:
        connection.execute(
            GmcConnection.__table__.insert(),
            [
                {
                    "gmc_number": "1000001",
                    "designated_body_code": WESSEX,
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "record_hash": "x",
                },
                {
                    "gmc_number": "1000001",
                    "designated_body_code": WESSEX,
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "record_hash": "x",
                },
            ],
        )
    assert "Lovelace" in str(raised.value)  # the driver's own text names them
    text = failure_text(raised.value)
    assert "Lovelace" not in text and "1000001" not in text and "INSERT" not in text.upper()
    assert text.startswith("database error")


# --- 2. the mass-change guard ---------------------------------------------------------------------


def national(files, n=60):
    """A stored state of ``n`` connected Wessex trainees and, for the GMC guard, n in North East."""
    wessex, north_east = numbers(1_000_000, n), numbers(2_000_000, n)
    people = [person(number, programme(WESSEX), person_id=i + 1) for i, number in enumerate(wessex)]
    lists = {
        WESSEX: [gmc_doctor(number) for number in wessex],
        NORTH_EAST: [gmc_doctor(number) for number in north_east],
    }
    return people, lists


@pytest.mark.parametrize("snapshot", ["empty-json", "empty-jsonl", "cut-jsonl"])
def test_an_empty_or_cut_tis_snapshot_is_held_back(sessions, files, reval, caplog, snapshot):
    people, lists = national(files)
    gmc_path = gmc_snapshot(files / "gmc.json", lists)
    sync_files(sessions, gmc_path, tis_snapshot(files / "tis.json", people))
    hidden = reval("hide", people[0]["gmcNumber"], "--designated-body", WESSEX, "--reason", "on leave")
    assert hidden.exit_code == 0
    before = doctors(sessions)

    if snapshot == "empty-json":
        cut = files / "cut.json"
        cut.write_text('{"people": []}')
    elif snapshot == "empty-jsonl":
        cut = files / "cut.jsonl"
        cut.write_bytes(b"")
    else:
        cut = tis_snapshot(files / "cut.jsonl", people[: len(people) // 2], jsonl=True)  # cut at a line boundary
    result = reval("sync", "--gmc-file", gmc_path, "--tis-file", cut, "--as-of", AS_OF.isoformat(), "--json")
    summary = json.loads(result.stdout)

    assert summary["status"] == "PARTIAL"
    assert summary["tis"]["fetched"] is False
    reason = summary["tis"]["notFetchedReason"]
    deleting = 60 if snapshot != "cut-jsonl" else 30
    assert (
        f"delete {deleting} of the 60 stored TIS people" in reason and "REVAL_MAX_TIS_DELETIONS_PERCENT (5%)" in reason
    )
    assert "OPERATOR ALERT: TIS snapshot held back" in caplog.text
    assert count(sessions, TisPerson) == 60
    assert doctors(sessions) == before  # nobody moved to NOT_IN_TIS
    assert count(sessions, DoctorHide, DoctorHide.ended_at.is_(None)) == 1  # the admin's hide stands
    [run] = [r for r in json.loads(reval("runs", "--format", "json").stdout) if r["id"] == summary["syncRunId"]]
    assert run["status"] == "PARTIAL" and run["sources"]["tis"]["notFetched"]["TIS"] == reason

    # The day a change really is that large, an operator applies it once.
    allowed = json.loads(
        reval(
            "sync",
            "--gmc-file",
            gmc_path,
            "--tis-file",
            cut,
            "--as-of",
            AS_OF.isoformat(),
            "--allow-mass-changes",
            "--json",
        ).stdout
    )
    assert allowed["status"] == "SUCCEEDED" and allowed["tis"]["peopleDeleted"] == deleting


def test_a_gmc_list_that_would_disconnect_too_many_is_held_back_for_its_body_only(sessions, files, reval):
    people, lists = national(files)
    tis_path = tis_snapshot(files / "tis.json", people)
    sync_files(sessions, gmc_snapshot(files / "gmc.json", lists), tis_path)

    tonight = {WESSEX: lists[WESSEX][:-1], NORTH_EAST: []}  # Wessex loses one doctor; North East's list is empty
    summary = sync_files(sessions, gmc_snapshot(files / "tonight.json", tonight), tis_path)

    assert summary["status"] == "PARTIAL"
    reason = summary["gmc"]["designatedBodiesNotFetched"][NORTH_EAST]
    assert (
        "disconnect 60 of its 60 connected doctors" in reason and "REVAL_MAX_GMC_DISCONNECTIONS_PERCENT (10%)" in reason
    )
    assert WESSEX in summary["gmc"]["designatedBodiesFetched"] and summary["gmc"]["connectionsRemoved"] == 1
    assert count(sessions, GmcConnection, GmcConnection.designated_body_code == NORTH_EAST) == 60


def test_doctors_moving_to_a_later_list_are_not_disconnections(sessions, files):
    people, lists = national(files)
    tis_path = tis_snapshot(files / "tis.json", people)
    sync_files(sessions, gmc_snapshot(files / "gmc.json", lists), tis_path)
    # Half of North East's doctors move to Wessex, whose list comes after North East's.
    moving = lists[NORTH_EAST][:30]
    tonight = {NORTH_EAST: lists[NORTH_EAST][30:], WESSEX: lists[WESSEX] + moving}
    summary = sync_files(sessions, gmc_snapshot(files / "tonight.json", tonight), tis_path)
    assert summary["status"] == "SUCCEEDED" and summary["gmc"]["connectionsMoved"] == 30


def test_the_guard_holds_back_the_nightly_and_sharded_runs_too(sessions, files):
    from reval.reconcile.sync import run_sync_sharded

    people, lists = national(files)
    gmc_path = gmc_snapshot(files / "gmc.json", lists)
    sync_files(sessions, gmc_path, tis_snapshot(files / "tis.json", people))
    empty = tis_snapshot(files / "empty.json", [])
    summary = run_sync_sharded(
        sessions, gmc=GmcInput.from_file(gmc_path), tis=TisInput.from_file(empty), as_of=AS_OF, shards=3
    )
    assert summary["status"] == "PARTIAL" and summary["tis"]["fetched"] is False
    assert count(sessions, TisPerson) == 60


# --- 3. one sync at a time --------------------------------------------------------------------------


def test_a_sync_that_cannot_get_the_lock_is_skipped_with_a_reason(sessions, files, reval, app):
    tis_path = tis_snapshot(files / "tis.json", [person("1000001", programme(WESSEX), person_id=1)])
    gmc_path = gmc_snapshot(files / "gmc.json", {WESSEX: [gmc_doctor("1000001")]})
    files_and_day = ("--gmc-file", gmc_path, "--tis-file", tis_path, "--as-of", AS_OF.isoformat())
    with sync_lock(database(app).engine):
        result = reval("sync", *files_and_day, "--wait-seconds", "0", expect_exit=1)
        waited = reval("sync", *files_and_day, "--wait-seconds", "0.3", expect_exit=1)
    assert "skipped" in result.output and "holds the sync lock" in result.output
    assert "waiting up to 0.3 s" in waited.output and "skipped" in waited.output
    with sessions.begin() as session:
        runs = list(session.scalars(select(SyncRun).order_by(SyncRun.id)))
    assert [run.status for run in runs] == ["SKIPPED", "SKIPPED"]
    assert all("holds the sync lock" in run.error for run in runs)
    assert count(sessions, TisPerson) == 0
    reval("sync", *files_and_day)  # free again: it runs
    assert count(sessions, TisPerson) == 1


def test_two_syncs_at_once_never_record_a_move_twice(sessions, files, app):
    """The second sync waits for the first, then finds nothing left to move."""
    people, lists = national(files)
    tis_path = tis_snapshot(files / "tis.json", people)
    sync_files(sessions, gmc_snapshot(files / "gmc.json", lists), tis_path, ALLOW)
    moved = gmc_snapshot(files / "moved.json", {WESSEX: lists[NORTH_EAST], NORTH_EAST: lists[WESSEX]})

    waiting = threading.Event()
    results: list = []
    holder = sync_lock(database(app).engine)
    holder.__enter__()
    try:

        def second():
            controls = SyncControls(wait_seconds=60, on_wait=lambda _message: waiting.set())
            try:
                results.append(sync_files(sessions, moved, tis_path, controls))
            except Exception as error:
                results.append(error)
                waiting.set()

        thread = threading.Thread(target=second)
        thread.start()
        assert waiting.wait(30)
    finally:
        holder.__exit__(None, None, None)
    first = sync_files(sessions, moved, tis_path, SyncControls(wait_seconds=60))
    thread.join(60)
    summaries = [first, *results]
    assert sorted(s["gmc"]["connectionsMoved"] for s in summaries) == [0, 120]
    with sessions.begin() as session:
        moves = session.execute(
            select(DoctorEvent.gmc_number, func.count())
            .where(DoctorEvent.kind == "CONNECTION")
            .group_by(DoctorEvent.gmc_number)
        ).all()
    assert len(moves) == 120 and all(n == 2 for _, n in moves)  # connected last night, moved once tonight


# --- 4. a killed or interrupted sync --------------------------------------------------------------


@pytest.fixture(scope="module")
def large_dataset(tmp_path_factory):
    """Enough doctors that a sync runs for a few seconds and starts its helper process at once."""
    # Large enough that the sync is still running when a loaded machine's test gets to stop it.
    return generate(tmp_path_factory.mktemp("large"), 40_000, AS_OF, seed=3)


def start_sync(app, dataset, *extra, tis: Path | None = None) -> subprocess.Popen:
    environment = {
        **os.environ,
        **{k: str(v) for k, v in app.config.items() if k.startswith("REVAL_")},
        "REVAL_SYNC_HELPER": "1",
        "PYTHONFAULTHANDLER": "1",  # SIGABRT dumps every thread's stack: see stopped_sync_output
    }
    # Ctrl-C must reach the sync as from a terminal, even where these tests run with SIGINT
    # ignored (a shell's background job), which a child would inherit: a handler is not inherited.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reval",
                "sync",
                "--gmc-file",
                str(dataset.gmc),
                "--tis-file",
                str(tis or dataset.tis),
                "--as-of",
                AS_OF.isoformat(),
                *extra,
            ],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def running_run(app):
    """The run a sync holds the lock for, read without waiting for the sync's own transaction."""
    with database(app).reads.begin() as session:
        return session.scalars(select(SyncRun).where(SyncRun.status == "RUNNING", SyncRun.holder.is_not(None))).first()


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class HeldBackSnapshot:
    """A snapshot read through a named pipe: every line but the last is handed over, and the last
    never is until ``release``, so the sync reading it cannot finish however slow the machine."""

    def __init__(self, snapshot: Path, directory: Path):
        self.path = directory / snapshot.name
        os.mkfifo(self.path)
        *self.head, _last = snapshot.read_bytes().splitlines(keepends=True)
        self.handed_over, self.released = threading.Event(), threading.Event()
        self.writer = threading.Thread(target=self._write, name="held-back-snapshot", daemon=True)
        self.writer.start()

    def _write(self) -> None:
        with self.path.open("wb") as pipe:  # waits for the sync to open it
            pipe.writelines(self.head)
            pipe.flush()
            self.handed_over.set()
            self.released.wait()

    def release(self) -> None:
        self.released.set()
        self.writer.join(60)


def stopped_sync_output(process: subprocess.Popen, seconds: float) -> str:
    """The standard error of a sync just stopped. One still running ``seconds`` later is made to
    dump where each of its threads was, and its helper's (faulthandler, on SIGABRT, into the same
    standard error), and the test fails with that."""
    try:
        return process.communicate(timeout=seconds)[1]
    except subprocess.TimeoutExpired:
        for helper in children_of(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(helper, signal.SIGABRT)
        process.send_signal(signal.SIGABRT)
        _out, err = process.communicate(timeout=30)
        pytest.fail(f"the sync had not ended {seconds:g} s after it was stopped; its threads then:\n{err[-8000:]}")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_sync_is_recorded_as_interrupted(app, sessions, large_dataset, stop, tmp_path):
    tis = HeldBackSnapshot(large_dataset.tis, tmp_path)
    process = start_sync(app, large_dataset, tis=tis.path)
    try:
        run = wait_for(lambda: running_run(app), 60)
        assert tis.handed_over.wait(60)  # all but the last person handed over: the sync cannot finish
        process.send_signal(stop)
        err = stopped_sync_output(process, 60)
    finally:
        process.kill()
        tis.release()
    assert process.returncode == 128 + stop, err[-2000:]
    assert f"sync run {run.id} interrupted" in err and "Traceback" not in err
    with sessions.begin() as session:
        stopped = session.get(SyncRun, run.id)
        assert (stopped.status, stopped.error) == ("FAILED", "interrupted")
        assert session.scalar(select(func.count()).select_from(TisPerson)) == 0  # nothing of it committed


def test_a_sync_stopped_inside_a_database_call_is_recorded_as_interrupted(sessions, tmp_path, monkeypatch):
    # Ctrl-C or SIGTERM can land while the driver itself is executing (its signal handler runs
    # inside executemany): the statement it stops stays open in the cursor, and on SQLite so do
    # the transaction and its write lock, until that cursor is let go of. Recording the
    # interruption then waited 30 s for the lock and reported the database busy instead.
    if sessions.kw["bind"].dialect.name != "sqlite":
        pytest.skip("SQLite keeps a closed connection's lock while a statement of it lives; PostgreSQL writes by COPY")
    small = generate(tmp_path, 50, AS_OF, seed=3)
    driver_executemany = DefaultDialect.do_executemany

    def stopped_at_the_tenth_row(dialect, cursor, statement, parameters, context=None):
        def rows():
            for index, row in enumerate(parameters):
                if index == 10:
                    raise KeyboardInterrupt  # as SIGINT's handler raises it, mid-statement
                yield row

        driver_executemany(dialect, cursor, statement, rows(), context)

    monkeypatch.setattr(DefaultDialect, "do_executemany", stopped_at_the_tenth_row)
    with pytest.raises(SyncInterrupted) as stopped:
        sync_files(sessions, small.gmc, small.tis, ALLOW)
    monkeypatch.undo()
    with sessions.begin() as session:
        run = session.get(SyncRun, stopped.value.run_id)
        assert (run.status, run.error) == ("FAILED", "interrupted")
        assert session.scalar(select(func.count()).select_from(GmcConnection)) == 0  # nothing of it committed


class StoppedBeforeDeciding(Progress):
    def begin(self, phase: str, unit: str) -> None:
        if phase == "decide":
            raise RuntimeError("stopped before deciding")


def test_a_sync_writes_with_the_bulk_page_cache_and_the_pool_gets_the_usual_one_back(sessions, tmp_path):
    """SQLite: a sync's connection writes with BULK_PAGE_CACHE_KIB of page cache (a national
    sync's tables that fill out of key order need it), and is back at PAGE_CACHE_KIB once in the
    pool, after a sync that failed as after one that succeeded: a web server's connections stay small."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's page cache is per connection; PostgreSQL's shared buffers are the server's")
    small = generate(tmp_path, 50, AS_OF, seed=3)
    cache_while_writing: dict[str, set[int]] = defaultdict(set)

    def note_cache(_connection, cursor, statement, _parameters, _context, _executemany):
        written = re.match(r"\s*INSERT (?:OR FAIL )?INTO (?:main\.)?(gmc_connection|tis_person|doctor)\b", statement)
        if written:
            cache_while_writing[written[1]].add(cursor.connection.execute("PRAGMA cache_size").fetchone()[0])

    def pooled_caches() -> set[int]:
        held = [engine.connect() for _ in range(max(1, engine.pool.checkedin()))]
        try:
            return {connection.exec_driver_sql("PRAGMA cache_size").scalar() for connection in held}
        finally:
            for connection in held:
                connection.close()

    event.listen(engine, "before_cursor_execute", note_cache)
    try:
        assert sync_files(sessions, small.gmc, small.tis, ALLOW)["status"] == "SUCCEEDED"
        assert pooled_caches() == {-PAGE_CACHE_KIB}
        with pytest.raises(SyncFailed, match="stopped before deciding"):
            sync_files(sessions, small.gmc, small.tis, SyncControls(ALLOW.guard, progress=StoppedBeforeDeciding()))
    finally:
        event.remove(engine, "before_cursor_execute", note_cache)
    assert pooled_caches() == {-PAGE_CACHE_KIB}
    assert dict(cache_while_writing) == {
        "gmc_connection": {-BULK_PAGE_CACHE_KIB},
        "tis_person": {-BULK_PAGE_CACHE_KIB},
        "doctor": {-BULK_PAGE_CACHE_KIB},
    }


def test_a_killed_sync_is_abandoned_and_its_helper_ends(app, sessions, large_dataset, files):
    process = start_sync(app, large_dataset)
    try:
        run = wait_for(lambda: running_run(app), 60)
        helpers = wait_for(lambda: children_of(process.pid), 60)
        process.kill()
        process.wait(30)
    finally:
        process.kill()
    wait_for(lambda: not any(alive(pid) for pid in helpers), 15)  # the helper (and the tracker) end with it

    assert running_run(app).id == run.id  # left behind by kill -9
    tis_path = tis_snapshot(files / "tis.json", [person("1000001", programme(WESSEX), person_id=1)])
    sync_files(sessions, None, tis_path, ALLOW)
    with sessions.begin() as session:
        abandoned = session.get(SyncRun, run.id)
        assert abandoned.status == "ABANDONED" and "stopped before it finished" in abandoned.error


# --- 5. GMC snapshots nobody could read ---------------------------------------------------------------


def test_a_gmc_snapshot_of_garbage_lines_is_partial_with_each_line_rejected(sessions, files):
    garbage = files / "gmc.jsonl"
    garbage.write_bytes(b"not json\n{]\n" + b'{"designatedBodyCode": "' + WESSEX.encode() + b'", "doctors": [{"GMC\n')
    summary = sync_files(sessions, garbage, None)
    assert summary["status"] == "PARTIAL" and summary["gmc"]["designatedBodiesFetched"] == []
    locators = [r["locator"] for r in summary["rejections"]]
    assert locators == ["line 1", "line 2", "line 3"]
    assert "line 3" in summary["gmc"]["designatedBodiesNotFetched"][WESSEX]
    assert "could not be read" in summary["gmc"]["designatedBodiesNotFetched"][WESSEX]


def test_a_gmc_document_of_unreadable_entries_is_partial(sessions, files):
    document = files / "gmc.json"
    document.write_text('{"designatedBodies": [1, "x", null]}')
    summary = sync_files(sessions, document, None)
    assert summary["status"] == "PARTIAL"
    assert [r["locator"] for r in summary["rejections"]] == [
        "designatedBodies[0]",
        "designatedBodies[1]",
        "designatedBodies[2]",
    ]


def test_a_cut_gmc_jsonl_names_the_body_whose_list_was_cut(sessions, files):
    people, lists = national(files)
    whole = gmc_snapshot(files / "gmc.jsonl", lists, jsonl=True).read_bytes()
    cut = files / "cut.jsonl"
    cut.write_bytes(whole[: len(whole) - 200])  # North East's line, cut mid-record
    summary = sync_files(sessions, cut, tis_snapshot(files / "tis.json", people))
    assert summary["status"] == "PARTIAL"
    why = summary["gmc"]["designatedBodiesNotFetched"][NORTH_EAST]
    assert "line 2" in why and "could not be read" in why and "no list" not in why


# --- 6. decisions from records we refused ------------------------------------------------------------


def test_a_doctor_whose_only_tis_record_was_rejected_is_a_discrepancy(sessions, files, reval):
    broken = person("1000001", programme(WESSEX, start="31/02/2025"), person_id=1)
    tis_path = tis_snapshot(files / "tis.json", [broken])
    gmc_path = gmc_snapshot(files / "gmc.json", {EAST_OF_ENGLAND: [gmc_doctor("1000001")]})
    summary = sync_files(sessions, gmc_path, tis_path)
    assert doctors(sessions)["1000001"] == ("DISCREPANCY", "TIS_RECORD_REJECTED")
    with sessions.begin() as session:
        assert session.get(Doctor, "1000001").visible_to == [EAST_OF_ENGLAND, WESSEX]
    explained = reval("explain", "1000001").output
    assert f"rejected in sync run {summary['syncRunId']}" in explained
    assert "programmeStartDate" in explained and "31/02/2025" in explained and "TIS_RECORD_REJECTED" in explained

    # Once TIS sends a record Reval can take, the doctor is decided on it.
    fixed = person("1000001", programme(EAST_OF_ENGLAND), person_id=1)
    sync_files(sessions, gmc_path, tis_snapshot(files / "fixed.json", [fixed]))
    assert doctors(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    assert count(sessions, RejectedTisPerson) == 0


def test_a_rejected_record_with_an_earlier_version_keeps_that_version(sessions, files):
    good = person("1000001", programme(WESSEX), person_id=1)
    gmc_path = gmc_snapshot(files / "gmc.json", {WESSEX: [gmc_doctor("1000001")]})
    sync_files(sessions, gmc_path, tis_snapshot(files / "tis.json", [good]))
    broken = person("1000001", programme(WESSEX, start="31/02/2025"), person_id=1)
    sync_files(sessions, gmc_path, tis_snapshot(files / "broken.json", [broken]))
    assert doctors(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    assert count(sessions, RejectedTisPerson) == 0


# --- 7. memory of a large .json snapshot -------------------------------------------------------------


def test_a_json_snapshot_is_streamed(files):
    people = [person(f"{1_000_000 + i:07d}", programme(WESSEX), person_id=i + 1) for i in range(20_000)]
    path = tis_snapshot(files / "tis.json", people)
    size = path.stat().st_size
    del people
    tracemalloc.start()
    try:
        read = sum(1 for _ in open_snapshot(path, label="TIS", list_key="people"))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert read == 20_000
    # Read whole, the records alone would take several times the file's size.
    assert peak < size / 4, f"peak {peak} bytes reading a {size}-byte file"


def test_a_json_snapshot_cut_short_is_incomplete(sessions, files):
    people = [person(f"{1_000_000 + i:07d}", programme(WESSEX), person_id=i + 1) for i in range(40)]
    whole = tis_snapshot(files / "tis.json", people).read_bytes()
    sync_files(sessions, None, files / "tis.json")
    cut = files / "cut.json"
    cut.write_bytes(whole[: len(whole) // 2])
    summary = sync_files(sessions, None, cut, ALLOW)  # even allowed, a cut file deletes nobody
    assert summary["status"] == "PARTIAL" and summary["tis"]["complete"] is False
    assert summary["tis"]["peopleDeleted"] == 0 and count(sessions, TisPerson) == 40


# --- 8. an admin's change is never undone by an older list ---------------------------------------------


def admin_connects(reval, number: str, body: str) -> None:
    """An admin's connection, sent to GMC (the simulator) and confirmed there."""
    output = reval("connect", number, "--designated-body", body, "--reason", "1", "--by", "ann").output
    assert "succeeded" in output.lower(), output


def test_a_list_taken_before_an_admin_change_does_not_undo_it_in_a_nightly_run(
    gmc_app, reval, sessions, files, gmc_connect
):
    from reval.extensions import gmc_client
    from reval.reconcile.nightly import reconcile_staged, record_run_start, stage_gmc_list

    sync_files(sessions, None, tis_snapshot(files / "tis.json", [person("1000001", programme(WESSEX), person_id=1)]))
    run_id = record_run_start(sessions, AS_OF, utcnow())
    for body in DEFAULT_DESIGNATED_BODIES:
        stage_gmc_list(sessions, run_id, gmc_client(gmc_app), body.code)  # at 00:31: nobody on Wessex's list
    admin_connects(reval, "1000001", WESSEX)  # at 00:35, confirmed by GMC
    assert doctors(sessions)["1000001"] == ("CONNECTED", "CONNECTED")

    reconcile_staged(sessions, run_id, AS_OF)
    assert doctors(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    with sessions.begin() as session:
        assert session.get(GmcConnection, "1000001").designated_body_code == WESSEX
        kinds = [e.kind for e in session.scalars(select(DoctorEvent).where(DoctorEvent.sync_run_id == run_id))]
    assert "CONNECTION" not in kinds  # no false disconnection in history


def test_a_list_taken_before_an_admin_change_does_not_undo_it_in_a_live_sync(
    gmc_app, reval, sessions, files, gmc_connect
):
    """The live sync fetches its lists, then waits for the lock while an admin's change is confirmed."""
    from reval.gateway import AppGateway
    from reval.services.context import Actor, Context
    from reval.services.sync import sync_now

    tis_path = tis_snapshot(files / "tis.json", [person("1000001", programme(WESSEX), person_id=1)])
    sync_files(sessions, None, tis_path)
    waiting, results = threading.Event(), []

    def live_sync(**options):
        with gmc_app.app_context():
            context = Context(sessions, sessions, Actor.operator("cron"), AppGateway(gmc_app, wait_for_delivery=True))
            return sync_now(context, tis_file=tis_path, as_of=AS_OF, **options)

    def waiting_sync():
        try:
            results.append(live_sync(wait_seconds=60, on_wait=lambda _message: waiting.set()))
        except Exception as error:
            results.append(error)
            waiting.set()

    with sync_lock(database(gmc_app).engine):
        thread = threading.Thread(target=waiting_sync)
        thread.start()
        assert waiting.wait(60)  # its lists are fetched: nobody on Wessex's
        admin_connects(reval, "1000001", WESSEX)
    thread.join(60)
    [summary] = results
    assert summary.gmc["connectionsRemoved"] == 0
    assert doctors(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
    # The next list, taken after the change, settles it.
    again = live_sync()
    assert again.gmc["connectionsRemoved"] == 0 and doctors(sessions)["1000001"] == ("CONNECTED", "CONNECTED")
