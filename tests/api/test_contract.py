"""The API keeps its published contract: the committed OpenAPI document is the code's, and
schemathesis, fuzzing every operation with a valid token, finds no server error, no answer that
breaks the schema and no undocumented status code."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from reval.api import openapi_document
from reval.api.tokens import TokenSettings, dev_key, mint_dev_token
from reval.app import create_app
from reval.extensions import database
from reval.extensions import settings as app_settings
from tests.api.conftest import ALL_SCOPES
from tests.factories import EAST_OF_ENGLAND, WESSEX

COMMITTED = Path(__file__).parent.parent.parent / "docs" / "openapi.json"


def test_the_committed_document_is_the_codes(api):
    document = openapi_document(api)
    assert json.loads(COMMITTED.read_text()) == json.loads(document), (
        "run `reval openapi > docs/openapi.json` and review the diff"
    )
    assert COMMITTED.read_text() == document


def test_the_served_document_is_the_committed_one(api):
    response = api.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.json == json.loads(COMMITTED.read_text())


# The schema is read at collection, from an app of its own: its document is the same whatever
# the database, and its development key signs the fuzzer's token (the calls go to ``fuzzed``).
INSTANCE = Path(tempfile.mkdtemp(prefix="reval-contract-"))
atexit.register(shutil.rmtree, INSTANCE, True)
DOCUMENT_APP = create_app(
    {
        "REVAL_DATABASE_URL": f"sqlite:///{INSTANCE / 'unused.sqlite'}",
        "REVAL_AUTH": "dev",
        "REVAL_INSTANCE_PATH": str(INSTANCE),
    }
)
TOKEN = mint_dev_token(
    dev_key(INSTANCE),
    TokenSettings.from_settings(app_settings(DOCUMENT_APP)),
    "fuzzer",
    ALL_SCOPES,
    [EAST_OF_ENGLAND, WESSEX],
    120,
)
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/openapi.json",
    DOCUMENT_APP,
    config=SchemathesisConfig.from_dict(
        {
            "auth": {"openapi": {"bearerAuth": {"bearer": TOKEN}}},
            # Reusing an Idempotency-Key with another body is refused (422) by design; a conditional GET
            # whose If-None-Match matches (the fuzzer sends "*") is answered 304 Not Modified, as HTTP says.
            # The changes feed's since is a cursor the feed gave or an RFC 3339 time, which no schema
            # can say: any other string is refused as malformed (400).
            "checks": {
                "positive_data_acceptance": {"expected-statuses": [200, 201, 202, 304, 400, 401, 403, 404, 409, 422]}
            },
        }
    ),
)


@pytest.fixture
def fuzzed(app, national):
    """The API on the national dataset, trusting the fuzzer's development token."""
    settings_ = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    served = create_app(
        settings_
        | {"REVAL_AUTH": "dev", "REVAL_INSTANCE_PATH": str(INSTANCE), "REVAL_API_RATE_LIMITS": "0", "TESTING": True}
    )
    yield served
    database(served).engine.dispose()


@schema.parametrize()
@settings(max_examples=15, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_the_contract(case, fuzzed):
    response = case.call_and_validate(app=fuzzed)
    ANSWERED.setdefault(case.operation.label, set()).add(response.status_code)


ANSWERED: dict[str, set[int]] = {}


def test_the_fuzzing_got_past_authentication():
    """A suite whose every call was refused at the door would pass the checks above and prove nothing."""
    if not ANSWERED:
        pytest.fail("run with test_every_operation_keeps_the_contract")
    for operation in (
        "GET /api/v1/designated-bodies",
        "GET /api/v1/designated-bodies/{code}/doctors",
        "GET /api/v1/rules",
        "GET /api/v1/runs",
        "GET /api/v1/connection-requests",
        "GET /api/v1/changes",
    ):
        assert 200 in ANSWERED[operation], (operation, ANSWERED[operation])
    assert 422 in ANSWERED["POST /api/v1/doctors/{gmcNumber}/hides"], ANSWERED
