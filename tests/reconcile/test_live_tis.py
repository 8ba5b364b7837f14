"""Syncs pulling TIS live: full pulls, deletions only after a complete one, and targeted refreshes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from reval.models import DoctorEvent, TisPerson
from reval.tis.simulator import InjectedFault
from tests.factories import AS_OF, EAST_OF_ENGLAND, WESSEX, gmc_doctor, person, programme


@pytest.fixture
def live(gmc_app, tis_app, gmc_connect, tis_service):
    """GMC: 1000001 connected to East of England. TIS: 1000001 there, 1000002 in Wessex, a placeholder."""
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001")
    for number, owner, person_id in (("1000001", EAST_OF_ENGLAND, 1), ("1000002", WESSEX, 2), ("1000009", WESSEX, 9)):
        tis_service.state.people[person_id] = person(number, programme(owner), person_id=person_id)
    tis_service.state.people[9]["role"] = "Dummy Record"
    return tis_service


def sync(reval, *options, expect_exit=0):
    return json.loads(reval("sync", "--as-of", AS_OF.isoformat(), "--json", *options, expect_exit=expect_exit).stdout)


def refresh(reval, *ids, expect_exit=0):
    result = reval("refresh-people", *map(str, ids), "--as-of", AS_OF.isoformat(), "--json", expect_exit=expect_exit)
    return json.loads(result.stdout) if expect_exit == 0 else result


def exported(reval):
    return {row["gmcReferenceNumber"]: row for row in json.loads(reval("export").stdout)}


def stored_people(sessions):
    with sessions.begin() as session:
        return sorted(session.scalars(select(TisPerson.tis_person_id)))


def test_a_sync_pulls_gmc_and_tis_live(reval, live, sessions):
    summary = sync(reval)
    assert summary["status"] == "SUCCEEDED"
    assert summary["tis"]["peopleRead"] == 2 and summary["tis"]["complete"]
    doctors = exported(reval)
    assert (doctors["1000001"]["queue"], doctors["1000002"]["reason"]) == ("CONNECTED", "NOT_CONNECTED")
    assert "1000009" not in doctors  # a dummy record is not a trainee
    assert stored_people(sessions) == [1, 2]


def test_a_person_missing_from_a_complete_pull_is_deleted(reval, live, sessions):
    sync(reval)
    del live.state.people[2]
    summary = sync(reval, "--allow-mass-changes")  # one of two people: far more than the guard lets through
    assert summary["tis"]["peopleDeleted"] == 1 and stored_people(sessions) == [1]


def test_a_pull_that_fails_part_way_deletes_nobody_and_still_applies_gmc(reval, live, sessions, gmc_connect):
    sync(reval)
    del live.state.people[2]
    for person_id in (5, 6):  # two pages now: [1, 5] and [6, 9]
        live.state.people[person_id] = person(f"100000{person_id}", programme(WESSEX), person_id=person_id)
    live.state.faults.append(InjectedFault("page-fails", page=1))  # fails on every attempt
    del gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"]
    summary = sync(reval, "--allow-mass-changes")
    assert summary["status"] == "PARTIAL"
    assert summary["tis"]["fetched"] is False and "page 1" in summary["tis"]["notFetchedReason"]
    assert stored_people(sessions) == [1, 2]  # nobody deleted on a partial pull's account
    assert exported(reval)["1000001"]["designatedBody"] is None  # GMC's lists were applied
    assert (
        "TIS  not fetched in this run (the full pull failed part-way"
        in reval("sync", "--as-of", AS_OF.isoformat()).output
    )


def test_a_refresh_re_decides_only_the_people_it_pulls(reval, live, sessions):
    sync(reval)
    live.state.people[2]["programmeMemberships"] = [programme(EAST_OF_ENGLAND)]
    live.state.people[1]["surname"] = "Changed but not refreshed"
    summary = refresh(reval, 2)
    assert summary["tis"]["peopleUpdated"] == 1 and summary["doctorsDecided"] == 1
    doctors = exported(reval)
    assert doctors["1000002"]["programmeOwnerDesignatedBodies"] == [EAST_OF_ENGLAND]
    assert doctors["1000001"]["lastName"] != "Changed but not refreshed"
    assert [call for call in live.state.calls if call == "/api/people"] == [
        "/api/people"
    ] * 2  # only the full sync paged


def test_a_refresh_is_idempotent(reval, live, sessions):
    sync(reval)
    live.state.people[2]["programmeMemberships"] = [programme(EAST_OF_ENGLAND)]
    refresh(reval, 2)
    with sessions.begin() as session:
        events = session.scalar(select(func.count()).select_from(DoctorEvent))
    again = refresh(reval, 2)
    assert again["events"] == 0 and again["tis"]["peopleUpdated"] == 0
    with sessions.begin() as session:
        assert session.scalar(select(func.count()).select_from(DoctorEvent)) == events


def test_a_person_answering_404_has_been_deleted(reval, live, sessions):
    sync(reval)
    del live.state.people[2]
    summary = refresh(reval, 2)
    assert summary["tis"]["peopleDeleted"] == 1 and stored_people(sessions) == [1]
    assert exported(reval)["1000002"]["tisPersonIds"] == []


def test_a_refresh_that_cannot_reach_tis_changes_nothing(reval, live, sessions):
    sync(reval)
    live.state.faults.append(InjectedFault("http-500"))
    result = refresh(reval, 2, expect_exit=1)
    assert "nothing changed" in result.output and "HTTP 500" in result.output


def test_files_still_override_either_side(reval, live, files):
    from tests.factories import gmc_snapshot

    gmc = gmc_snapshot(files / "gmc.json", {WESSEX: [gmc_doctor("1000002")]})
    summary = json.loads(reval("sync", "--gmc-file", gmc, "--as-of", AS_OF.isoformat(), "--json").stdout)
    assert summary["gmc"]["source"] == str(gmc) and summary["tis"]["source"].startswith("TIS http://")
    assert exported(reval)["1000002"]["queue"] == "CONNECTED"


def test_a_live_sync_without_tis_settings_is_refused(gmc_app, reval):
    assert "REVAL_TIS_URL" in reval("sync", expect_exit=2).output


def test_the_nightly_job_runs_in_process_without_a_broker(reval, live, gmc_connect, app):
    from reval.gmc.simulator import InjectedFault as GmcFault

    app.config["REVAL_DELIVERY_BACKOFF_SECONDS"] = "0"  # a failed attempt is due again at once
    gmc_connect.state.faults.append(GmcFault("http-500", operation="TryAddDoctor", times=1))
    assert (
        "pending" in reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", "--force").output
    )  # not synced yet
    output = reval("nightly", "--as-of", AS_OF.isoformat()).stdout
    assert "succeeded" in output.splitlines()[0]
    assert "Connection requests: 1 due: 1 succeeded, 0 failed, 0 still pending" in output
    assert exported(reval)["1000002"]["queue"] == "CONNECTED"


def test_a_nightly_reconciliation_delivered_again_leaves_the_finished_run_alone(reval, live, sessions, app):
    from reval.extensions import gmc_client, tis_client
    from reval.models import SyncRun
    from reval.reconcile.connections import DeliveryPolicy
    from reval.reconcile.nightly import apply_staged, reconcile_staged, run_nightly_in_process

    with app.app_context():
        summary = run_nightly_in_process(sessions, gmc_client(), tis_client(), AS_OF, DeliveryPolicy())
    run_id = summary["syncRunId"]
    assert reconcile_staged(sessions, run_id, AS_OF)["status"] == "SUCCEEDED"
    apply_staged(sessions, run_id, AS_OF)  # nothing staged is left, and nothing fails for it
    with sessions.begin() as session:
        assert session.get(SyncRun, run_id).status == "SUCCEEDED"


def test_without_a_broker_a_sync_delivers_pending_requests_too(reval, live, gmc_connect, app):
    from reval.gmc.simulator import InjectedFault as GmcFault

    app.config["REVAL_DELIVERY_BACKOFF_SECONDS"] = "0"
    gmc_connect.state.faults.append(GmcFault("http-500", operation="TryAddDoctor", times=1))
    assert (
        "pending" in reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", "--force").output
    )  # not synced yet
    summary = sync(reval)
    assert summary["connectionRequestsDelivered"]["SUCCEEDED"] == 1
    assert "Connection requests: 0 due: 0 succeeded" in reval("sync", "--as-of", AS_OF.isoformat()).output
