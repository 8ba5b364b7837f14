"""The access audit: a record for each kind of view of doctors' personal data, written before the
data goes out (a failed record fails the view), read by national users at /audit and by
operators with `reval audit`, kept for the retention period."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from reval.cli.base import who
from reval.clock import utcnow
from reval.models import AccessRecord
from reval.services.audit import purge_expired_records
from tests.conftest import assert_one_line_refusal
from tests.factories import EAST_OF_ENGLAND
from tests.web.conftest import EAST_CONNECTED, EAST_MISMATCH

DOCTOR = EAST_MISMATCH[0]


def records(sessions) -> list[AccessRecord]:
    with sessions.begin() as session:
        return list(session.scalars(select(AccessRecord).order_by(AccessRecord.id)))


def test_the_doctor_page_is_recorded_with_the_session_and_request_id(sign_in, national, sessions):
    admin = sign_in()
    response = admin.get(f"/doctors/{DOCTOR}")
    assert response.status_code == 200
    [record] = records(sessions)
    assert (record.view, record.gmc_number, record.entry_point) == ("doctor", DOCTOR, "ui")
    assert (record.actor_name, record.actor_role, record.actor_bodies) == ("Ann Admin", "admin", [EAST_OF_ENGLAND])
    assert (record.actor_subject or "").startswith("session:") and record.request_id == response.headers["X-Request-ID"]


def test_a_doctor_not_seen_is_not_recorded(sign_in, national, sessions):
    assert sign_in(body="1-1RSSPZ7").get(f"/doctors/{DOCTOR}").status_code == 404
    assert records(sessions) == []


def test_explain_history_and_export_are_recorded_for_the_operator(reval, synced, sessions):
    reval("explain", "1000001")
    reval("history", "1000001")
    exported = json.loads(reval("export", "--queue", "connected", "--designated-body", EAST_OF_ENGLAND).stdout)
    explain, history, export = records(sessions)
    assert (explain.view, explain.gmc_number, explain.entry_point, explain.actor_name) == (
        "doctor",
        "1000001",
        "cli",
        who(None),
    )
    assert explain.actor_subject == f"cli:{who(None)}" and explain.request_id
    assert (history.view, history.gmc_number) == ("history", "1000001")
    assert (export.view, export.gmc_number, export.row_count) == ("export", None, len(exported))
    assert export.filters == {"body": EAST_OF_ENGLAND, "queue": "CONNECTED"}


def test_a_queue_download_is_recorded_with_its_view_and_row_count(sign_in, national, sessions):
    admin = sign_in()
    download = admin.get("/queues/connected/download?q=11000")
    rows = list(csv.reader(io.StringIO(download.text)))[1:]
    [record] = records(sessions)
    assert (record.view, record.row_count, record.entry_point) == ("queue-csv", len(rows), "ui")
    assert record.filters == {"body": EAST_OF_ENGLAND, "queue": "CONNECTED", "q": "11000"}
    assert len(rows) == len(EAST_CONNECTED)


def test_a_failed_audit_write_fails_the_view(sign_in, national, sessions):
    admin = sign_in()
    with sessions.begin() as session:
        session.execute(text("ALTER TABLE access_audit RENAME TO access_audit_away"))
    try:
        response = admin.get(f"/doctors/{DOCTOR}")
        assert response.status_code == 500 and DOCTOR not in response.text.replace(f"/doctors/{DOCTOR}", "")
        assert "Lovelace" not in response.text
    finally:
        with sessions.begin() as session:
            session.execute(text("ALTER TABLE access_audit_away RENAME TO access_audit"))
    assert records(sessions) == []


def test_records_older_than_the_retention_are_purged(sign_in, national, sessions):
    sign_in().get(f"/doctors/{DOCTOR}")
    [record] = records(sessions)
    assert purge_expired_records(sessions, record.recorded_at + timedelta(days=2190), 2190) == 0
    assert purge_expired_records(sessions, record.recorded_at + timedelta(days=2190, seconds=1), 2190) == 1
    assert records(sessions) == []


# --- reading it ---------------------------------------------------------------------------------


def test_national_users_filter_the_audit_by_person_doctor_and_dates(sign_in, national, sessions):
    sign_in().get(f"/doctors/{DOCTOR}")
    sign_in(name="Bob Viewer", role="viewer").get(f"/doctors/{EAST_MISMATCH[1]}")
    nina = sign_in(role="national", name="Nina National")
    page = nina.get("/audit")
    assert page.status_code == 200 and "Ann Admin" in page.text and "Bob Viewer" in page.text
    by_person = nina.get("/audit?actor=ann+admin").text
    assert "Ann Admin" in by_person and "Bob Viewer" not in by_person
    by_doctor = nina.get(f"/audit?doctor={EAST_MISMATCH[1]}").text
    assert "Bob Viewer" in by_doctor and "Ann Admin" not in by_doctor
    today = utcnow().date()
    assert "Ann Admin" in nina.get(f"/audit?since={today}&until={today + timedelta(days=1)}").text
    assert "Ann Admin" not in nina.get(f"/audit?until={today - timedelta(days=2)}").text


def test_the_audit_downloads_as_csv(sign_in, national, sessions):
    sign_in().get(f"/doctors/{DOCTOR}")
    download = sign_in(role="national", name="Nina National").get("/audit/download?actor=Ann+Admin")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    [row] = list(csv.DictReader(io.StringIO(download.text)))
    assert (row["actorName"], row["gmcNumber"], row["view"], row["entryPoint"]) == ("Ann Admin", DOCTOR, "doctor", "ui")


def test_the_audit_is_for_national_users_only(sign_in, national):
    admin = sign_in()
    assert admin.get("/audit").status_code == 404
    assert admin.get("/audit/download").status_code == 404


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("doctor=12345", "Enter a GMC number of 7 digits"),
        ("since[day]=31&since[month]=2&since[year]=2027", "real date"),
        ("since=2027-03-01&until=2027-02-01", "must be the same as or after"),
        ("actor=Ann%00Admin", "without tabs or line breaks"),
        (f"actor={'a' * 201}", "up to 200 characters"),
    ],
)
def test_bad_audit_filters_are_named_in_the_error_summary(sign_in, national, query, message):
    response = sign_in(role="national", name="Nina National").get(f"/audit?{query}")
    assert response.status_code == 200 and "There is a problem" in response.text and message in response.text


def test_reval_audit_filters_and_formats(reval, synced, sessions):
    reval("explain", "1000001")
    reval("history", "1000003", "--json")
    as_json = json.loads(reval("audit", "--format", "json").stdout)
    assert [row["gmcNumber"] for row in as_json] == ["1000003", "1000001"]  # newest first
    assert set(as_json[0]) == {
        "recordedAt",
        "actorName",
        "actorRole",
        "actorBodies",
        "actorSubject",
        "entryPoint",
        "requestId",
        "view",
        "gmcNumber",
        "filters",
        "rowCount",
    }
    mine = json.loads(reval("audit", "--actor", who(None).upper(), "--format", "json").stdout)
    assert len(mine) == 2 and {row["entryPoint"] for row in mine} == {"cli"}
    assert json.loads(reval("audit", "--actor", "Nobody Else", "--format", "json").stdout) == []
    rows = list(csv.DictReader(io.StringIO(reval("audit", "--doctor", "1000003", "--format", "csv").stdout)))
    assert [row["view"] for row in rows] == ["history"]
    table = reval("audit", "--since", utcnow().date().isoformat()).stdout.splitlines()
    assert table[0].split("\t")[0] == "recordedAt" and len(table) == 3
    assert reval("audit", "--since", (utcnow().date() + timedelta(days=2)).isoformat()).stdout.count("\n") == 1


def test_reval_audit_refuses_a_bad_gmc_number_in_one_line(app, tmp_path):
    from tests.conftest import reval_from_settings

    result = reval_from_settings(
        tmp_path, "audit", "--doctor", "12x", REVAL_DATABASE_URL=app.config["REVAL_DATABASE_URL"]
    )
    assert_one_line_refusal(result, 2, "12x")


def test_reval_audit_refuses_a_control_character_in_the_actor_in_one_line(app, tmp_path):
    from tests.conftest import reval_from_settings

    result = reval_from_settings(
        tmp_path, "audit", "--actor", "Ann\tAdmin", REVAL_DATABASE_URL=app.config["REVAL_DATABASE_URL"]
    )
    assert_one_line_refusal(result, 2, "actor")


def test_the_audit_is_paged_newest_first(sign_in, national, sessions):
    admin = sign_in()
    for number in EAST_CONNECTED[:3]:
        admin.get(f"/doctors/{number}")
    with sessions.begin() as session:  # 50 older views, so the three above fill page 1 with 47 of these
        first = session.scalars(select(AccessRecord)).first()
        for _ in range(50):
            session.add(
                AccessRecord(
                    **{
                        column.key: getattr(first, column.key)
                        for column in AccessRecord.__table__.columns
                        if column.key != "id"
                    }
                    | {"recorded_at": first.recorded_at - timedelta(days=1), "gmc_number": EAST_MISMATCH[1]}
                )
            )
    nina = sign_in(role="national", name="Nina National")
    first_page = nina.get("/audit").text
    assert "53 records, newest first" in first_page and "page=2" in first_page
    assert first_page.index(EAST_CONNECTED[2]) < first_page.index(EAST_MISMATCH[1])
    second_page = nina.get("/audit?page=2").text
    assert second_page.count(f'Record of <span class="app-code">{EAST_MISMATCH[1]}</span>') == 3
    assert nina.get("/audit?page=9").status_code == 302  # past the end: the last page
