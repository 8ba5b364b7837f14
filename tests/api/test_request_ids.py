"""A request's id follows the work it starts: into the Celery task that delivers a connection
request, and into that task's GMC call, in a real worker's JSON log."""

from __future__ import annotations

import json

from tests.api.conftest import Caller
from tests.conftest import wait_for
from tests.factories import EAST_OF_ENGLAND
from tests.web.conftest import EAST_NOT_CONNECTED


def test_the_request_id_reaches_the_worker_and_its_gmc_call(gmc_app, workers, calling):
    worker = workers.start(REVAL_LOG_FORMAT="json")
    caller: Caller = calling(scopes="reval.read reval.write")
    created = caller.post(
        "/api/v1/connection-requests",
        {"gmcNumber": EAST_NOT_CONNECTED[0], "designatedBody": EAST_OF_ENGLAND, "action": "add", "reason": 1},
        headers={"X-Request-ID": "trace-to-the-worker-42"},
    )
    assert created.status_code == 201 and created.headers["X-Request-ID"] == "trace-to-the-worker-42"

    def gmc_call_logged() -> dict | None:
        """the worker to log its GMC call"""
        for line in workers.log_of(worker).splitlines():
            if line.startswith("{") and (record := json.loads(line))["logger"] == "reval.gmc.client":
                return record
        return None

    record = wait_for(gmc_call_logged)
    assert record["request_id"] == "trace-to-the-worker-42" and "TryAddDoctor" in record["message"]
