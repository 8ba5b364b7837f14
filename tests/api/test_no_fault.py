"""Property: no input answers 5xx. Hypothesis sends generated values to every API operation that
takes them, beside schemathesis (tests/api/test_contract.py), which works from the API's document."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.api.conftest import Caller
from tests.factories import EAST_OF_ENGLAND
from tests.fuzzing import FUZZ, JSON, VALUE, assert_no_fault
from tests.web.conftest import EAST_CONNECTED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@FUZZ
@given(body=JSON, number=st.sampled_from(EAST_CONNECTED[:3]) | VALUE, code=st.sampled_from([EAST_OF_ENGLAND]) | VALUE)
def test_no_api_write_faults(api, issuer, body, number, code):
    admin = Caller(api, issuer.token("reval.read reval.write"))
    assert_no_fault(admin.post(f"/api/v1/doctors/{quote(number, safe='')}/hides", body))
    assert_no_fault(admin.delete(f"/api/v1/doctors/{quote(number, safe='')}/hides/{quote(code, safe='')}"))
    assert_no_fault(admin.post("/api/v1/connection-requests", body))


@FUZZ
@given(
    code=st.sampled_from([EAST_OF_ENGLAND]) | VALUE,
    query=st.dictionaries(
        st.sampled_from(
            [
                "queue",
                "q",
                "reason",
                "programmeOwner",
                "gmcUpdateFailed",
                "sort",
                "order",
                "page",
                "pageSize",
                "status",
                "asOf",
            ]
        ),
        VALUE,
    ),
)
def test_no_api_read_faults(api, issuer, code, query):
    reader = Caller(api, issuer.token("reval.read"))
    assert_no_fault(reader.get(f"/api/v1/designated-bodies/{quote(code, safe='')}/queues", query_string=query))
    assert_no_fault(reader.get(f"/api/v1/designated-bodies/{quote(code, safe='')}/doctors", query_string=query))
    assert_no_fault(reader.get("/api/v1/connection-requests", query_string=query))
    assert_no_fault(reader.get("/api/v1/rules/preview", query_string=query))


@FUZZ
@given(
    number=st.sampled_from(EAST_CONNECTED[:3]) | VALUE,
    request_id=VALUE.filter(lambda text: "\n" not in text and "\r" not in text),  # HTTP carries no line breaks there
)
def test_no_audited_read_or_request_id_faults(api, issuer, number, request_id):
    reader = Caller(api, issuer.token("reval.read"))
    headers = {"X-Request-ID": request_id}
    assert_no_fault(reader.get(f"/api/v1/doctors/{quote(number, safe='')}", headers=headers))
    assert_no_fault(reader.get(f"/api/v1/doctors/{quote(number, safe='')}/history", headers=headers))


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["since", "pageSize", "organization", "_lastUpdated", "_count", "page"]),
        VALUE,
    ),
    number=st.sampled_from(EAST_CONNECTED[:3]) | VALUE,
)
def test_no_faults_in_the_changes_feed_or_the_fhir_view(api, issuer, query, number):
    reader = Caller(api, issuer.token("reval.read"))
    assert_no_fault(reader.get("/api/v1/changes", query_string=query))
    assert_no_fault(reader.get("/fhir/r4/PractitionerRole", query_string={"organization": EAST_OF_ENGLAND} | query))
    assert_no_fault(reader.get(f"/fhir/r4/PractitionerRole/{quote(number, safe='')}"))
