"""Delivery of connection requests by a real Celery worker (`reval worker`) through the local Redis."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from reval.gmc.simulator import InjectedFault
from reval.models import ConnectionRequest
from tests.conftest import wait_for
from tests.factories import WESSEX


@pytest.fixture
def worker(gmc_app, workers):
    return workers.start(REVAL_DELIVERY_BACKOFF_SECONDS="0.5")


def latest_request(sessions) -> ConnectionRequest:
    with sessions.begin() as session:
        return session.scalars(select(ConnectionRequest).order_by(ConnectionRequest.id.desc())).first()


def succeeded(sessions) -> bool:
    """the request to succeed"""
    return latest_request(sessions).status == "SUCCEEDED"


def test_a_worker_delivers_a_recorded_request(worker, reval, sessions, gmc_connect):
    output = reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", "--by", "ann", "--force").output
    assert "a worker will deliver it" in output
    wait_for(lambda: succeeded(sessions))
    assert "1000002" in gmc_connect.state.lists[WESSEX]


def test_a_worker_retries_a_transient_failure_when_its_timer_is_due(worker, reval, sessions, gmc_connect):
    gmc_connect.state.faults.append(InjectedFault("http-500", times=1))
    reval("connect", "1000002", "--designated-body", WESSEX, "--reason", "1", "--by", "ann", "--force")
    wait_for(lambda: succeeded(sessions))
    assert latest_request(sessions).attempts == 2
