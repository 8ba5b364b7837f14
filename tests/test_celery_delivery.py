"""Delivery of connection requests by a real Celery worker (`reval worker`) through the local Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from reval.app import celery_init_app
from reval.models import ConnectionRequest
from reval.gmc.simulator import InjectedFault
from tests.conftest import GMC_PASSWORD, GMC_USERNAME
from tests.factories import WESSEX

BROKER_URL = os.environ.get("REVAL_TEST_BROKER_URL", "redis://127.0.0.1:6379/15")


def wait_for(condition, seconds: float = 30.0):
    """Polls for an outcome another process produces; fails the test when it does not come."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting {seconds:g} s for {condition.__doc__ or condition}")


@pytest.fixture
def broker():
    connection = redis.Redis.from_url(BROKER_URL)
    connection.flushdb()  # this database number is the tests' own
    yield BROKER_URL
    connection.flushdb()


@pytest.fixture
def worker(gmc_app, broker, migrated, gmc_connect, tmp_path):
    environment = {
        **os.environ,
        "REVAL_DATABASE_URL": migrated,
        "REVAL_BROKER_URL": broker,
        "REVAL_GMC_URL": gmc_connect.url,
        "REVAL_GMC_USERNAME": GMC_USERNAME,
        "REVAL_GMC_PASSWORD": GMC_PASSWORD,
        "REVAL_DELIVERY_BACKOFF_SECONDS": "0.5",
    }
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("reval")), "worker", "--pool=solo", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env=environment, stdout=log, stderr=subprocess.STDOUT,
    )
    gmc_app.config["REVAL_BROKER_URL"] = broker
    celery_init_app(gmc_app)
    yield process
    process.terminate()
    process.wait(timeout=30)
    log.close()


def latest_request(sessions) -> ConnectionRequest:
    with sessions.begin() as session:
        return session.scalars(select(ConnectionRequest).order_by(ConnectionRequest.id.desc())).first()


def succeeded(sessions) -> bool:
    """the request to succeed"""
    return latest_request(sessions).status == "SUCCEEDED"


def test_a_worker_delivers_a_recorded_request(worker, reval, sessions, gmc_connect):
    output = reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", "--by", "ann").output
    assert "a worker will deliver it" in output
    wait_for(lambda: succeeded(sessions))
    assert "1000002" in gmc_connect.state.lists[WESSEX]


def test_a_worker_retries_a_transient_failure_when_its_timer_is_due(worker, reval, sessions, gmc_connect):
    gmc_connect.state.faults.append(InjectedFault("http-500", times=1))
    reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", "--by", "ann")
    wait_for(lambda: succeeded(sessions))
    assert latest_request(sessions).attempts == 2
