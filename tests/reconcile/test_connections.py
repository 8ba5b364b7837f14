"""Connection changes through the outbox: recorded first, delivered, retried, failed visibly, resent."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from reval.extensions import gmc_client
from reval.gmc.simulator import InjectedFault
from reval.models import ConnectionRequest, DoctorEvent
from reval.reconcile import connections
from reval.reconcile.connections import DeliveryPolicy, deliver_request
from tests.conftest import GMC_PASSWORD
from tests.factories import AS_OF, EAST_OF_ENGLAND, WESSEX, gmc_doctor, gmc_snapshot, person, programme, tis_snapshot

NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def synced(gmc_app, reval, files, gmc_connect):
    """1000001 connected to East of England as TIS says; 1000002 in Wessex's programme, not connected."""
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001")
    gmc = gmc_snapshot(files / "gmc.json", {EAST_OF_ENGLAND: [gmc_doctor("1000001")]})
    tis = tis_snapshot(
        files / "tis.json",
        [
            person("1000001", programme(EAST_OF_ENGLAND), person_id=1),
            person("1000002", programme(WESSEX), person_id=2),
        ],
    )
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", AS_OF.isoformat())
    return gmc_app


def exported(reval, number):
    return next(row for row in json.loads(reval("export").stdout) if row["gmcReferenceNumber"] == number)


def requests_listed(reval, *args):
    return json.loads(reval("requests", "--format", "json", *args).stdout)


def history(reval, number):
    return [(event["source"], event["kind"]) for event in json.loads(reval("history", number, "--json").stdout)]


def test_a_connection_accepted_by_gmc_moves_the_doctor_at_once(reval, synced, gmc_connect):
    assert exported(reval, "1000002")["queue"] == "DISCREPANCY"
    output = reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", "--by", "ann").output
    assert "succeeded" in output
    assert "1000002" in gmc_connect.state.lists[WESSEX]
    doctor = exported(reval, "1000002")
    assert (doctor["queue"], doctor["designatedBody"], doctor["gmcUpdateFailed"]) == ("CONNECTED", WESSEX, False)
    [request] = requests_listed(reval)
    assert request | {"requestedAt": None, "lastAttemptAt": None} == {
        "id": request["id"],
        "gmcReferenceNumber": "1000002",
        "designatedBodyCode": WESSEX,
        "action": "ADD",
        "reason": "1",
        "status": "SUCCEEDED",
        "returnCode": "0",
        "message": "TryAddDoctor: return code 0 (success)",
        "attempts": 1,
        "requestedBy": "ann",
        "requestedAt": None,
        "lastAttemptAt": None,
        "nextAttemptAt": None,
        "clientRequestId": request["clientRequestId"],
        "gmcRequestId": request["gmcRequestId"],
        "resendOf": None,
        "forced": False,
        "supersededBy": None,
    }
    assert history(reval, "1000002")[-3:] == [("ADMIN", "GMC_REQUEST"), ("ADMIN", "CONNECTION"), ("ADMIN", "DECISION")]


def test_a_disconnection_removes_the_connection_and_re_decides(reval, synced, gmc_connect):
    reval("disconnect", "1000001", "--designated-body", EAST_OF_ENGLAND, "--reason", "2", "--by", "ann")
    assert "1000001" not in gmc_connect.state.lists[EAST_OF_ENGLAND]
    doctor = exported(reval, "1000001")
    assert doctor["designatedBody"] is None and doctor["queue"] == "DISCREPANCY"


@pytest.mark.parametrize(
    "args, message",
    [
        (["connect", "12345", "--designated-body", WESSEX, "--reason", "1"], "12345"),
        (["connect", "1000002", "--designated-body", "1-NOWHERE", "--reason", "1"], "1-NOWHERE"),
        (["connect", "1000002", "--designated-body", WESSEX, "--reason", "3"], "reason '3' does not fit ADD"),
        (
            ["disconnect", "1000001", "--designated-body", EAST_OF_ENGLAND, "--reason", "4"],
            "reason '4' does not fit REMOVE",
        ),
    ],
    ids=["bad-number", "unknown-body", "add-reason", "remove-reason"],
)
def test_bad_requests_are_refused_before_anything_is_recorded(reval, synced, sessions, gmc_connect, args, message):
    with sessions.begin() as session:
        events_before = session.scalar(select(func.count()).select_from(DoctorEvent))
    result = reval(*args, expect_exit=2)
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(ConnectionRequest)) == 0
        assert session.scalar(select(func.count()).select_from(DoctorEvent)) == events_before
    assert not [call for call in gmc_connect.state.calls if call["operation"] != "GetDoctorsForDB"]


def test_a_transient_failure_waits_for_its_backoff_timer(reval, synced, gmc_connect):
    gmc_connect.state.faults.append(InjectedFault("http-500", times=1))
    with time_machine.travel(NOON, tick=False):
        assert "pending" in reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1").output
        [request] = requests_listed(reval, "--status", "pending")
        assert request["attempts"] == 1 and "HTTP 500" in request["message"]
        assert NOON < datetime.fromisoformat(request["nextAttemptAt"]) <= NOON + timedelta(seconds=60)
        assert reval("deliver").output.startswith("0 due")
    with time_machine.travel(NOON + timedelta(minutes=2), tick=False):
        assert reval("deliver").output.startswith("1 due: 1 succeeded")
    [request] = requests_listed(reval)
    assert request["status"] == "SUCCEEDED" and request["attempts"] == 2


def test_deliver_all_ignores_the_backoff_timers(reval, synced, gmc_connect):
    gmc_connect.state.faults.append(InjectedFault("soap-fault", times=1))
    with time_machine.travel(NOON, tick=False):
        reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1")
        assert reval("deliver", "--all").output.startswith("1 due: 1 succeeded")


def test_retries_are_bounded_then_the_request_fails(synced, sessions, gmc_connect, reval):
    gmc_connect.state.faults.append(InjectedFault("return-code", return_code="98"))
    policy = DeliveryPolicy(max_attempts=3, backoff_seconds=0)
    with time_machine.travel(NOON, tick=False):
        reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1")
        with synced.app_context():
            later = NOON + timedelta(hours=2)
            for _ in range(2):
                connections.deliver_due_requests(sessions, gmc_client(), now=lambda: later, policy=policy)
    [request] = requests_listed(reval)
    assert (request["status"], request["attempts"]) == ("FAILED", 3)
    assert request["message"].startswith("gave up after 3 attempts") and "GMC internal error" in request["message"]


def test_a_permanent_failure_flags_the_doctor_until_a_resend_succeeds(reval, synced, gmc_connect):
    gmc_connect.state.faults.append(InjectedFault("return-code", gmc_number="1000002", return_code="106", times=1))
    failed = reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", expect_exit=1)
    assert "revalidation lock" in failed.output and "reval resend" in failed.output
    [request] = requests_listed(reval, "--status", "failed")
    assert (request["returnCode"], request["attempts"]) == ("106", 1)
    doctor = exported(reval, "1000002")
    assert doctor["gmcUpdateFailed"] is True and doctor["queue"] == "DISCREPANCY"  # where the rules put it
    assert ("ADMIN", "GMC_REQUEST_FAILED") in history(reval, "1000002")

    assert "succeeded" in reval("resend", str(request["id"])).output
    first, resent = requests_listed(reval)
    assert (first["status"], resent["status"], resent["resendOf"]) == ("FAILED", "SUCCEEDED", first["id"])
    assert resent["clientRequestId"] != first["clientRequestId"]
    assert exported(reval, "1000002")["gmcUpdateFailed"] is False


def test_only_a_failed_request_is_resent(reval, synced):
    reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1")
    [request] = requests_listed(reval)
    assert "not failed" in reval("resend", str(request["id"]), expect_exit=2).output
    assert "no connection request 999" in reval("resend", "999", expect_exit=2).output


def test_refused_credentials_fail_the_request_and_alert_an_operator(reval, synced, caplog):
    synced.config["REVAL_GMC_PASSWORD"] = "not-the-password"
    synced.extensions.pop("reval.gmc", None)
    caplog.set_level(logging.DEBUG)
    reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", expect_exit=1)
    [request] = requests_listed(reval)
    assert (request["status"], request["returnCode"]) == ("FAILED", "99")
    assert any("OPERATOR ALERT" in record.getMessage() for record in caplog.records)
    assert GMC_PASSWORD not in caplog.text and "not-the-password" not in caplog.text
    assert "not-the-password" not in reval("history", "1000002", "--json").output


class SimulatedCrash(BaseException):
    """The worker dies between GMC's answer and recording it."""


def test_a_delivery_repeated_after_a_crash_does_not_repeat_the_change(
    synced, sessions, gmc_connect, reval, monkeypatch
):
    with synced.app_context():
        client = gmc_client()
    with time_machine.travel(NOON, tick=False):
        monkeypatch.setattr(
            connections, "record_delivery_outcome", lambda *args: (_ for _ in ()).throw(SimulatedCrash())
        )
        with synced.app_context(), sessions.begin() as session:
            request_id = connections.record_connection_request(
                session,
                gmc_number_text="1000002",
                designated_body=WESSEX,
                action=connections.Action.ADD,
                reason="1",
                requested_by="ann",
                now=NOON,
            ).id
        with pytest.raises(SimulatedCrash):
            deliver_request(sessions, client, request_id, now=lambda: NOON)
        monkeypatch.undo()
    assert "1000002" in gmc_connect.state.lists[WESSEX]  # GMC accepted it
    [request] = requests_listed(reval)
    assert request["status"] == "PENDING"

    # While the crashed attempt's lease runs, nobody sends it again.
    assert deliver_request(sessions, client, request_id, now=lambda: NOON + timedelta(minutes=1)) is None
    with synced.app_context():
        delivered = deliver_request(sessions, client, request_id, now=lambda: NOON + timedelta(minutes=6))
    assert delivered is not None
    assert (delivered.status, delivered.return_code, delivered.attempts) == ("SUCCEEDED", "100", 2)
    adds = [call for call in gmc_connect.state.calls if call["operation"] == "TryAddDoctor"]
    assert len(adds) == 2 and adds[0]["ClientRequestID"] == adds[1]["ClientRequestID"]
    assert exported(reval, "1000002")["designatedBody"] == WESSEX


def test_connect_without_gmc_or_a_broker_is_refused_before_recording(app, reval, sessions):
    result = reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", expect_exit=2)
    assert "REVAL_GMC_URL" in result.output
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(ConnectionRequest)) == 0


def test_history_and_explain_say_each_gmc_request_in_a_line_and_when_the_last_one_failed(reval, synced, gmc_connect):
    gmc_connect.state.faults.append(InjectedFault("return-code", gmc_number="1000002", return_code="106", times=1))
    with time_machine.travel("2026-11-21 09:15 +0000", tick=False):
        reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", expect_exit=1)
    [request] = requests_listed(reval)
    asked = (
        f"GMC request {request['id']}: ADD {WESSEX}, reason 1 (the doctor has a connection with this designated body)"
    )
    answered = f"failed; GMC answered 106: {request['message']}"
    lines = reval("history", "1000002").output.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d (GMT|BST)  ", line) for line in lines), lines
    assert not any("{" in line or "designatedBody=" in line for line in lines)
    assert lines[-2:] == [
        f"2026-11-21 09:15 GMT           Admin {asked}, pending",
        f"2026-11-21 09:15 GMT           Admin {asked}, {answered}",
    ]
    explained = reval("explain", "1000002").output
    assert f"GMC requests:\n  2026-11-21 09:15 GMT {asked}, {answered}\n" in explained
    assert explained.endswith(
        f"GMC update failed: request {request['id']}, the last for {WESSEX}, failed at 2026-11-21 09:15 GMT; "
        f"`reval resend {request['id']}` tries again\n"
    )

    reval("resend", str(request["id"]))
    explained = reval("explain", "1000002").output
    assert (
        f"{answered} (superseded by request {request['id'] + 1})" in explained and "GMC update failed" not in explained
    )
