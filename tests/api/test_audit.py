"""The access audit of the API's views of a doctor: the record and its history."""

from __future__ import annotations

from sqlalchemy import select

from reval.models import AccessRecord
from tests.web.conftest import EAST_MISMATCH

DOCTOR = EAST_MISMATCH[0]


def records(sessions) -> list[AccessRecord]:
    with sessions.begin() as session:
        return list(session.scalars(select(AccessRecord).order_by(AccessRecord.id)))


def test_the_api_doctor_and_history_are_recorded_with_the_token_subject(calling, sessions):
    caller = calling(sub="case-system-7")
    detail = caller.get(f"/api/v1/doctors/{DOCTOR}", headers={"X-Request-ID": "api-call-1"})
    history = caller.get(f"/api/v1/doctors/{DOCTOR}/history")
    assert detail.status_code == history.status_code == 200
    first, second = records(sessions)
    assert (first.view, first.entry_point, first.actor_subject, first.request_id) == (
        "doctor",
        "api",
        "token:case-system-7",
        "api-call-1",
    )
    assert (second.view, second.gmc_number, second.request_id) == ("history", DOCTOR, history.headers["X-Request-ID"])
