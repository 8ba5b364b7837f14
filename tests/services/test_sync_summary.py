"""A sync's summary, typed for its readers, is written back exactly as it was stored."""

from __future__ import annotations

import json

from sqlalchemy import select

from reval.models import SyncRun
from reval.services.terms import RunStatus, SyncSummary
from tests.factories import EAST_OF_ENGLAND, gmc_doctor, gmc_snapshot, person, programme, tis_snapshot


def stored_summary(reval, files, sessions) -> tuple[dict, str]:
    gmc = gmc_snapshot(files / "gmc.json", {EAST_OF_ENGLAND: [gmc_doctor("1000001")]})
    tis = tis_snapshot(files / "tis.json", [person("1000001", programme(EAST_OF_ENGLAND))])
    printed = reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", "2026-11-21", "--json").stdout
    with sessions() as session:
        return session.scalars(select(SyncRun.summary)).one(), printed


def test_sync_json_prints_the_summary_as_stored_key_for_key_in_order(reval, files, sessions):
    stored, printed = stored_summary(reval, files, sessions)
    assert list(json.loads(printed).items()) == list(stored.items())


def test_a_summary_read_and_written_back_is_the_json_it_was_read_from(reval, files, sessions):
    stored, _printed = stored_summary(reval, files, sessions)
    summary = SyncSummary.from_json(stored)
    assert summary.status is RunStatus.SUCCEEDED and summary.doctors == 1 and summary.as_of == "2026-11-21"
    assert json.dumps(summary.to_json()) == json.dumps(stored)


def test_a_field_set_after_reading_is_written_at_the_end():
    summary = SyncSummary.from_json({"syncRunId": 4, "status": "PARTIAL", "doctors": 2})
    summary.connection_requests_delivered = {"due": 1, "SUCCEEDED": 1, "FAILED": 0, "PENDING": 0}
    summary.doctors = 3
    assert list(summary.to_json().items()) == [
        ("syncRunId", 4),
        ("status", "PARTIAL"),
        ("doctors", 3),
        ("connectionRequestsDelivered", {"due": 1, "SUCCEEDED": 1, "FAILED": 0, "PENDING": 0}),
    ]


def test_a_run_that_stopped_early_writes_only_what_it_had():
    summary = SyncSummary.from_json({"status": "SKIPPED"})
    assert summary.status is RunStatus.SKIPPED and summary.queues == {} and summary.sync_run_id is None
    assert summary.to_json() == {"status": "SKIPPED"}
