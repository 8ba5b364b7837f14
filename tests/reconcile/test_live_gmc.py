"""The sync reading GMC Connect live: the same reconciliation as a file, and failures kept apart."""

from __future__ import annotations

import json

import pytest

from reval.gmc.simulator import InjectedFault
from tests.factories import AS_OF, EAST_OF_ENGLAND, NORTH_EAST, WESSEX, gmc_doctor, person, programme, tis_snapshot


@pytest.fixture
def tis_file(files):
    return tis_snapshot(
        files / "tis.json",
        [
            person("1000001", programme(EAST_OF_ENGLAND), person_id=1),
            person("1000002", programme(WESSEX), person_id=2),
        ],
    )


def live_sync(reval, tis_file, *options, expect_exit=0):
    return json.loads(
        reval(
            "sync", "--tis-file", tis_file, "--as-of", AS_OF.isoformat(), "--json", *options, expect_exit=expect_exit
        ).stdout
    )


def exported(reval):
    return {row["gmcReferenceNumber"]: row for row in json.loads(reval("export").stdout)}


def test_a_live_sync_fetches_every_configured_body(gmc_app, reval, gmc_connect, tis_file):
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001", DateAdded="02/03/2025")
    gmc_connect.state.lists[NORTH_EAST]["1000002"] = gmc_doctor("1000002")
    summary = live_sync(reval, tis_file)
    assert summary["status"] == "SUCCEEDED" and len(summary["gmc"]["designatedBodiesFetched"]) == 14
    assert summary["gmc"]["designatedBodiesNotFetched"] == {}
    doctors = exported(reval)
    assert (doctors["1000001"]["queue"], doctors["1000001"]["designatedBody"]) == ("CONNECTED", EAST_OF_ENGLAND)
    assert (doctors["1000002"]["queue"], doctors["1000002"]["reason"]) == ("DISCREPANCY", "DB_MISMATCH")
    listed = [call for call in gmc_connect.state.calls if call["operation"] == "GetDoctorsForDB"]
    assert len(listed) == 14 and all(call["InternalUser"] and call["ClientRequestID"] for call in listed)


def test_a_body_that_keeps_failing_is_not_fetched_and_keeps_its_doctors(gmc_app, reval, gmc_connect, tis_file):
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001")
    gmc_connect.state.lists[NORTH_EAST]["1000002"] = gmc_doctor("1000002")
    live_sync(reval, tis_file)

    # Tonight East of England's list fails every time, and North East's doctor has really left.
    gmc_connect.state.faults.append(
        InjectedFault("return-code", designated_body_code=EAST_OF_ENGLAND, return_code="98")
    )
    del gmc_connect.state.lists[NORTH_EAST]["1000002"]
    summary = live_sync(reval, tis_file, "--allow-mass-changes")  # North East's one doctor leaving is all of them

    assert summary["status"] == "PARTIAL"
    reason = summary["gmc"]["designatedBodiesNotFetched"][EAST_OF_ENGLAND]
    assert (
        "return code 98 (GMC internal error)" in reason and "after 3 attempts" in reason and "GMC request id" in reason
    )
    assert set(summary["gmc"]["designatedBodiesNotFetched"]) == {EAST_OF_ENGLAND}
    doctors = exported(reval)
    assert doctors["1000001"]["designatedBody"] == EAST_OF_ENGLAND  # never a disconnection inferred
    assert doctors["1000002"]["designatedBody"] is None  # the other bodies were applied
    assert "not fetched" in reval("sync", "--tis-file", tis_file, "--as-of", AS_OF.isoformat()).output


def test_a_transient_failure_is_retried_within_the_sync(gmc_app, reval, gmc_connect, tis_file):
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001")
    gmc_connect.state.faults.append(InjectedFault("http-500", designated_body_code=EAST_OF_ENGLAND, times=2))
    summary = live_sync(reval, tis_file)
    assert summary["status"] == "SUCCEEDED" and exported(reval)["1000001"]["designatedBody"] == EAST_OF_ENGLAND


def test_live_gmc_records_are_validated_like_a_file(gmc_app, reval, gmc_connect, tis_file):
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001", DateAdded="2025-03-02")
    summary = live_sync(reval, tis_file)
    [rejection] = summary["rejections"]
    assert rejection["source"] == "GMC" and "2025-03-02" in rejection["message"]


def test_a_live_sync_without_gmc_settings_is_refused(app, reval, tis_file):
    assert "REVAL_GMC_URL" in reval("sync", "--tis-file", tis_file, expect_exit=2).output
