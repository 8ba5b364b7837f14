"""The GMC Connect client against the simulator over real HTTP: every class of outcome."""

from __future__ import annotations

import logging

import pytest
import requests

from reval.gmc.client import NAMESPACE, GmcClient, with_retries
from reval.gmc.codes import OutcomeKind
from reval.gmc.records import read_connected_doctor
from reval.gmc.simulator import InjectedFault
from reval.retrying import backoff_delay
from tests.conftest import GMC_PASSWORD, gmc_settings
from tests.factories import EAST_OF_ENGLAND, NORTH_EAST, gmc_doctor


@pytest.fixture
def client(gmc_connect) -> GmcClient:
    return GmcClient(gmc_settings(gmc_connect.url))


@pytest.fixture
def connected(gmc_connect):
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001", DoctorFirstName="Grace")
    return gmc_connect


def test_a_list_reads_every_connected_doctor_through_the_same_validation(client, connected):
    reply = client.get_doctors_for_db(EAST_OF_ENGLAND)
    assert reply.kind is OutcomeKind.SUCCESS and reply.return_code == "0" and reply.gmc_request_id
    [doctor] = reply.doctors
    assert read_connected_doctor(doctor)["first_name"] == "Grace"
    assert read_connected_doctor(doctor)["date_added"].isoformat() == "2024-08-15"


def test_an_accepted_add_shows_in_the_next_list_and_moves_the_doctor(client, connected):
    reply = client.try_add_doctor("1000001", NORTH_EAST, "1", "request-1", "admin")
    assert (reply.kind, reply.return_code) == (OutcomeKind.SUCCESS, "0")
    assert [d["GMCReferenceNumber"] for d in client.get_doctors_for_db(NORTH_EAST).doctors] == ["1000001"]
    assert client.get_doctors_for_db(EAST_OF_ENGLAND).doctors == []


@pytest.mark.parametrize(
    "call, code",
    [
        (lambda c: c.try_add_doctor("1000001", EAST_OF_ENGLAND, "1", "r", "admin"), "100"),
        (lambda c: c.try_remove_doctor("1000001", NORTH_EAST, "3", "r", "admin"), "140"),
    ],
    ids=["add-already-done", "remove-not-connected"],
)
def test_a_change_already_in_effect_counts_as_success(client, connected, call, code):
    reply = call(client)
    assert (reply.kind, reply.return_code) == (OutcomeKind.SUCCESS, code)


@pytest.mark.parametrize(
    "call, code, meaning",
    [
        (
            lambda c: c.try_add_doctor("12AB", EAST_OF_ENGLAND, "1", "r", "admin"),
            "70",
            "invalid doctor GMC reference number",
        ),
        (lambda c: c.get_doctors_for_db("1-NOSUCH"), "80", "invalid designated body code"),
        (lambda c: c.try_remove_doctor("1000001", EAST_OF_ENGLAND, "7", "r", "admin"), "120", "change code"),
        (lambda c: c.try_add_doctor("1000001", NORTH_EAST, "1", "r", ""), "110", "missing internal user"),
    ],
    ids=["malformed-number", "unknown-body", "bad-reason", "no-internal-user"],
)
def test_other_return_codes_are_permanent_with_their_meaning(client, connected, call, code, meaning):
    reply = call(client)
    assert (reply.kind, reply.return_code) == (OutcomeKind.PERMANENT, code)
    assert meaning in reply.message


def test_a_chosen_return_code_for_a_chosen_doctor(client, connected):
    connected.state.faults.append(InjectedFault("return-code", gmc_number="1000001", return_code="106"))
    locked = client.try_remove_doctor("1000001", EAST_OF_ENGLAND, "1", "r", "admin")
    assert (locked.kind, locked.return_code) == (OutcomeKind.PERMANENT, "106")
    assert "revalidation lock" in locked.message
    assert client.try_add_doctor("1000002", EAST_OF_ENGLAND, "1", "r", "admin").return_code == "0"


@pytest.mark.parametrize(
    "fault, message",
    [
        (InjectedFault("http-500"), "HTTP 500"),
        (InjectedFault("soap-fault"), "SOAP fault"),
        (InjectedFault("return-code", return_code="98"), "GMC internal error"),
        (InjectedFault("delay", seconds=30), "no answer within 0.3 s"),
    ],
    ids=["http-500", "soap-fault", "gmc-internal-error", "timeout"],
)
def test_transient_failures_are_classified_for_retry(gmc_connect, fault, message):
    gmc_connect.state.faults.append(fault)
    reply = GmcClient(gmc_settings(gmc_connect.url, read_timeout=0.3)).get_doctors_for_db(EAST_OF_ENGLAND)
    assert reply.kind is OutcomeKind.TRANSIENT and message in reply.message


def test_a_refused_connection_is_transient(gmc_connect):
    reply = GmcClient(gmc_settings("http://127.0.0.1:9/GMCWebServices/WebService.asmx")).get_doctors_for_db(
        EAST_OF_ENGLAND
    )
    assert reply.kind is OutcomeKind.TRANSIENT and "could not connect" in reply.message


def test_wrong_credentials_alert_an_operator_and_never_show_the_password(gmc_connect, caplog):
    caplog.set_level(logging.DEBUG)  # zeep logs every envelope at DEBUG
    client = GmcClient(gmc_settings(gmc_connect.url, password="wrong-" + GMC_PASSWORD))
    reply = client.get_doctors_for_db(EAST_OF_ENGLAND)
    assert (reply.kind, reply.return_code) == (OutcomeKind.ACCESS, "99")
    assert any("OPERATOR ALERT" in record.getMessage() for record in caplog.records)
    assert (
        GMC_PASSWORD not in caplog.text
        and GMC_PASSWORD not in repr(reply)
        and GMC_PASSWORD not in repr(client.settings)
    )
    assert "<ns0:Password>***</ns0:Password>" in caplog.text or "Password>***<" in caplog.text


def test_retries_stop_at_the_first_success(gmc_connect):
    gmc_connect.state.faults.append(InjectedFault("http-500", times=2))
    client = GmcClient(gmc_settings(gmc_connect.url))
    delays: list[float] = []
    reply, attempts = with_retries(lambda: client.get_doctors_for_db(EAST_OF_ENGLAND), 5, 1.0, sleep=delays.append)
    assert reply.succeeded and attempts == 3 and len(delays) == 2


def test_retries_are_bounded_and_permanent_failures_are_not_retried(gmc_connect):
    client = GmcClient(gmc_settings(gmc_connect.url))
    gmc_connect.state.faults.append(InjectedFault("soap-fault"))
    reply, attempts = with_retries(lambda: client.get_doctors_for_db(EAST_OF_ENGLAND), 4, 0.0, sleep=lambda _: None)
    assert reply.kind is OutcomeKind.TRANSIENT and attempts == 4
    gmc_connect.state.faults.clear()
    reply, attempts = with_retries(lambda: client.get_doctors_for_db("1-NOSUCH"), 4, 0.0, sleep=lambda _: None)
    assert reply.return_code == "80" and attempts == 1


def test_backoff_doubles_with_full_jitter_up_to_a_cap():
    assert [backoff_delay(n, 2.0, rand=lambda: 1.0) for n in range(4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_delay(20, 2.0, cap_seconds=600, rand=lambda: 1.0) == 600
    assert backoff_delay(3, 2.0, rand=lambda: 0.25) == 4.0


def test_the_simulator_serves_the_wsdl_at_its_own_address(gmc_connect):
    wsdl = requests.get(gmc_connect.url + "?wsdl", timeout=5)
    assert wsdl.status_code == 200 and f'location="{gmc_connect.url}"' in wsdl.text
    assert NAMESPACE + "TryAddDoctor" in wsdl.text


def test_the_simulator_insists_on_the_soap_action_of_the_operation(gmc_connect):
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        f'<GetDoctorsForDB xmlns="{NAMESPACE}"/></soap:Body></soap:Envelope>'
    )
    answer = requests.post(
        gmc_connect.url, data=envelope, headers={"SOAPAction": NAMESPACE + "TryAddDoctor"}, timeout=5
    )
    assert answer.status_code == 500 and "does not match GetDoctorsForDB" in answer.text


def test_faults_are_injected_over_the_control_api(gmc_connect, client):
    base = gmc_connect.url.split("/GMCWebServices")[0]
    created = requests.post(
        f"{base}/simulator/faults", json={"kind": "return-code", "returnCode": "98", "times": 1}, timeout=5
    )
    assert created.status_code == 201
    assert client.get_doctors_for_db(EAST_OF_ENGLAND).return_code == "98"
    assert client.get_doctors_for_db(EAST_OF_ENGLAND).return_code == "0"
    refused = requests.post(f"{base}/simulator/faults", json={"kind": "meteor"}, timeout=5)
    assert refused.status_code == 400 and "meteor" in refused.json()["error"]
