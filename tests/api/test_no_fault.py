"""Property: no input answers 5xx. Hypothesis sends generated values to every API operation that
takes them, beside schemathesis (tests/api/test_contract.py), which works from the API's document."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.conftest import Caller
from tests.factories import EAST_OF_ENGLAND
from tests.web.conftest import EAST_CONNECTED

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Any text a browser or a client could send: control characters, any script, no lone surrogates.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
VALUE = st.one_of(
    TEXT,
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "99999999999999999999",
            "2026-13-45",
            EAST_OF_ENGLAND,
            EAST_CONNECTED[0],
            "yes",
            "desc",
            "../../etc/passwd",
            "%00",
            "\r\n",
        ]
    ),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_no_fault(response) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:500])


@SETTINGS
@given(body=JSON, number=st.sampled_from(EAST_CONNECTED[:3]) | VALUE, code=st.sampled_from([EAST_OF_ENGLAND]) | VALUE)
def test_no_api_write_faults(api, issuer, body, number, code):
    admin = Caller(api, issuer.token("reval.read reval.write"))
    assert_no_fault(admin.post(f"/api/v1/doctors/{quote(number, safe='')}/hides", body))
    assert_no_fault(admin.delete(f"/api/v1/doctors/{quote(number, safe='')}/hides/{quote(code, safe='')}"))
    assert_no_fault(admin.post("/api/v1/connection-requests", body))


@SETTINGS
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
