"""The scheduled reconciliation on real Celery workers, Redis and the GMC and TIS simulators."""

from __future__ import annotations

import json
import signal

import pytest
import redis
from kombu import Connection
from sqlalchemy import select

from reval.gmc.simulator import InjectedFault as GmcFault
from reval.models import SyncRun
from reval.settings import Settings
from reval.tasks import RunLock, beat_schedule, person_ids_of
from reval.tis.simulator import InjectedFault as TisFault
from tests.conftest import wait_for
from tests.factories import AS_OF, EAST_OF_ENGLAND, WESSEX, gmc_doctor, person, programme


@pytest.fixture
def services(gmc_app, tis_app, gmc_connect, tis_service):
    """GMC: 1000001 connected to East of England. TIS: 1000001 there and 1000002 in Wessex."""
    gmc_connect.state.lists[EAST_OF_ENGLAND]["1000001"] = gmc_doctor("1000001")
    for number, owner, person_id in (("1000001", EAST_OF_ENGLAND, 1), ("1000002", WESSEX, 2)):
        tis_service.state.people[person_id] = person(number, programme(owner), person_id=person_id)
    return gmc_connect, tis_service


def runs(sessions) -> list[SyncRun]:
    with sessions.begin() as session:
        return list(session.scalars(select(SyncRun).order_by(SyncRun.id)))


def finished(sessions, count: int = 1):
    """the runs to finish"""
    done = [run for run in runs(sessions) if run.status != "RUNNING"]
    return done if len(done) >= count else None


def latest_finished(sessions):
    """the latest run to finish"""
    latest = runs(sessions)[-1]
    return latest if latest.status != "RUNNING" else None


def exported(reval):
    return {row["gmcReferenceNumber"]: row for row in json.loads(reval("export").stdout)}


def test_the_nightly_run_fans_out_and_reconciles_once_all_have_reported(services, workers, reval, sessions):
    workers.start()
    output = reval("nightly", "--wait", "--as-of", AS_OF.isoformat()).output
    [run] = runs(sessions)
    assert run.status == "SUCCEEDED" and f"run {run.id} succeeded" in output
    summary = run.summary or {}
    assert len(summary["gmc"]["designatedBodiesFetched"]) == 14 and summary["tis"]["peopleRead"] == 2
    doctors = exported(reval)
    assert (doctors["1000001"]["queue"], doctors["1000002"]["reason"]) == ("CONNECTED", "NOT_CONNECTED")
    assert not redis.Redis.from_url(workers.broker_url).exists(RunLock.NAME)  # released
    listed = json.loads(reval("runs", "--format", "json").stdout)
    assert listed[0]["status"] == "SUCCEEDED" and listed[0]["queues"]["CONNECTED"]["after"] == 1


def test_a_second_trigger_while_one_runs_is_skipped_and_recorded(services, workers, reval, sessions):
    _gmc, tis = services
    tis.state.faults.append(TisFault("delay", seconds=3, path="/api/people", times=1))  # the first run is slow
    workers.start()
    workers.start()
    assert "running" in reval("nightly", "--as-of", AS_OF.isoformat()).output
    assert "skipped" in reval("nightly", "--as-of", AS_OF.isoformat()).output
    first, second = wait_for(lambda: finished(sessions, 2))
    assert (first.status, second.status) == ("SUCCEEDED", "SKIPPED")
    assert "another nightly run" in second.error
    assert "skipped" in reval("runs").output


def test_a_source_outage_is_retried_then_the_run_fails(services, workers, reval, sessions):
    gmc, tis = services
    gmc.state.faults.append(GmcFault("http-500"))
    tis.state.faults.append(TisFault("page-fails", page=0))
    workers.app.config.update(REVAL_NIGHTLY_RETRIES="1", REVAL_NIGHTLY_RETRY_MINUTES="0.01")
    process = workers.start(REVAL_GMC_ATTEMPTS="1", REVAL_TIS_ATTEMPTS="1")
    reval("nightly", "--as-of", AS_OF.isoformat())
    first, retried = wait_for(lambda: finished(sessions, 2))
    assert (first.status, retried.status) == ("FAILED", "FAILED")
    assert "no source could be fetched" in first.error and "HTTP 500" in first.error
    wait_for(lambda: workers.log_of(process).count("OPERATOR ALERT") == 2)
    assert len(runs(sessions)) == 2  # at most the configured number of retries


def test_a_worker_killed_mid_run_leaves_the_previous_state_whole_and_its_task_is_redelivered(
    services, workers, reval, sessions
):
    _gmc, tis = services
    reval("sync", "--as-of", AS_OF.isoformat())  # the previous state
    before = exported(reval)
    tis.state.people[2]["programmeMemberships"] = [programme(EAST_OF_ENGLAND)]
    tis.state.faults.append(TisFault("delay", seconds=30, path="/api/people"))
    process = workers.start(REVAL_NIGHTLY_LOCK_SECONDS="2")
    tis.state.calls.clear()
    reval("nightly", "--as-of", AS_OF.isoformat())
    wait_for(lambda: "/api/people" in tis.state.calls)  # this run's pull is under way
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    assert exported(reval) == before
    assert runs(sessions)[-1].status == "RUNNING"
    wait_for(lambda: not redis.Redis.from_url(workers.broker_url).exists(RunLock.NAME), seconds=10)

    # The killed worker's task was never acknowledged: another worker gets it and the run completes.
    tis.state.faults.clear()
    workers.start(REVAL_BROKER_VISIBILITY_TIMEOUT="2")
    run = wait_for(lambda: latest_finished(sessions), seconds=60)
    assert run.status == "SUCCEEDED"
    assert exported(reval)["1000002"]["programmeOwnerDesignatedBodies"] == [EAST_OF_ENGLAND]


def test_a_person_changed_message_re_decides_the_doctor_within_seconds(services, workers, reval, sessions):
    _gmc, tis = services
    reval("sync", "--as-of", AS_OF.isoformat())
    tis.state.people[2]["programmeMemberships"] = [programme(EAST_OF_ENGLAND)]
    process = workers.start()
    with Connection(workers.broker_url) as connection:
        queue = connection.SimpleQueue("reval.tis.person-changed")
        queue.put({"not": "what TIS sends"})
        queue.put({"personIds": [2]})
        queue.close()
    wait_for(lambda: exported(reval)["1000002"]["programmeOwnerDesignatedBodies"] == [EAST_OF_ENGLAND])
    assert "Dropped a malformed reval.tis.person-changed message" in workers.log_of(process)


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"{not json", "not JSON"),
        ({"personIds": "12"}, "no personIds list"),
        ({"personIds": [1, -2]}, "positive whole"),
    ],
)
def test_malformed_person_changed_messages_are_named(body, problem):
    with pytest.raises(ValueError, match=problem):
        person_ids_of(body)


def test_the_schedule_runs_nightly_at_half_past_midnight_london_time_by_default():
    schedule = beat_schedule(Settings.from_mapping({}))
    nightly = schedule["nightly-run"]["schedule"]
    assert (nightly.hour, nightly.minute) == ({0}, {30})
    assert schedule["deliver-connection-requests"]["schedule"].total_seconds() == 300
    assert beat_schedule(Settings.from_mapping({"REVAL_NIGHTLY_AT": "01:15"}))["nightly-run"]["schedule"].hour == {1}


def test_a_run_with_more_doctors_than_a_shard_holds_spreads_its_decisions(services, workers, reval, sessions):
    workers.start(REVAL_SHARD_SIZE="1")
    workers.start(REVAL_SHARD_SIZE="1")
    reval("nightly", "--wait", "--as-of", AS_OF.isoformat())
    [run] = runs(sessions)
    summary = run.summary or {}
    assert run.status == "SUCCEEDED" and summary["shards"] == 2
    assert summary["doctorsDecided"] == 2 and summary["queues"]["CONNECTED"] == {
        "before": 0,
        "after": 1,
        "in": 1,
        "out": 0,
    }
    doctors = exported(reval)
    assert (doctors["1000001"]["queue"], doctors["1000002"]["reason"]) == ("CONNECTED", "NOT_CONNECTED")
    assert not redis.Redis.from_url(workers.broker_url).exists(RunLock.NAME)


def test_triggering_without_a_worker_says_so(services, workers, reval, monkeypatch):
    monkeypatch.setattr("reval.cli.runs.NIGHTLY_START_SECONDS", 1)
    result = reval("nightly", expect_exit=1)
    assert "is `reval worker` running?" in result.output
