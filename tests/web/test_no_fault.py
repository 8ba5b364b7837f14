"""Property: no input answers 5xx. Hypothesis sends generated values to every form of the UI
(tests/api/test_no_fault.py does the same for the API)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import EAST_OF_ENGLAND
from tests.fuzzing import FUZZ, TEXT, VALUE, assert_no_fault
from tests.web.conftest import EAST_CONNECTED, EAST_MISMATCH, csrf_token

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

QUEUE_FIELDS = ("q", "reason", "owner", "failed", "sort", "order", "page", "body")
ACTION_FIELDS = ("body", "back", "reason", "until[day]", "until[month]", "until[year]")


@FUZZ
@given(
    tab=st.sampled_from(["connected", "discrepancies", "hidden", "historic", "failed-updates", "unassigned"]) | TEXT,
    fields=st.dictionaries(st.sampled_from(QUEUE_FIELDS), VALUE),
    download=st.booleans(),
)
def test_no_queue_search_faults(sign_in, national, tab, fields, download):
    admin = sign_in()
    path = f"/queues/{quote(tab, safe='')}" + ("/download" if download else "")
    assert_no_fault(admin.client.get(path, query_string=fields))


@FUZZ
@given(
    action=st.sampled_from(["hide", "unhide", "connect", "disconnect"]) | TEXT,
    fields=st.dictionaries(st.sampled_from(ACTION_FIELDS), VALUE),
    doctors=st.lists(st.sampled_from(EAST_MISMATCH + EAST_CONNECTED[:2]) | VALUE, max_size=3),
    confirm=st.booleans(),
)
def test_no_action_form_faults(sign_in, national, action, fields, doctors, confirm):
    admin = sign_in()
    path = f"/actions/{quote(action, safe='')}"
    data = {**fields, "doctor": doctors}
    if confirm:
        form = admin.client.get(f"/actions/hide?body={EAST_OF_ENGLAND}&doctor={EAST_MISMATCH[0]}")
        assert_no_fault(admin.client.post(path, data={"csrf_token": csrf_token(form.text), **data}))
    else:
        assert_no_fault(admin.client.get(path, query_string=data))


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["name", "role", "designated_body", "next"]), VALUE))
def test_no_sign_in_form_faults(web, national, fields):
    client = web.test_client()
    form = client.get("/auth/dev")
    assert_no_fault(client.post("/auth/dev", data={"csrf_token": csrf_token(form.text), **fields}))


@FUZZ
@given(number=VALUE, request_id=st.integers(min_value=-5, max_value=2**40), run_id=st.integers(-5, 2**40))
def test_no_doctor_results_or_resend_address_faults(sign_in, national, number, request_id, run_id):
    admin = sign_in()
    assert_no_fault(admin.get(f"/doctors/{quote(number, safe='')}"))
    assert_no_fault(admin.get(f"/results/{request_id}"))
    assert_no_fault(admin.get(f"/runs/{run_id}"))
    assert_no_fault(admin.post(f"/requests/{request_id}/resend"))


PREVIEW_FIELDS = (
    "as_of",
    "as_of[day]",
    "as_of[month]",
    "as_of[year]",
    "from_queue",
    "from_reason",
    "to_queue",
    "to_reason",
    "body",
    "page",
    "sort",
    "order",
)


@FUZZ
@given(
    path=st.sampled_from(["/rules/preview", "/rules/preview/doctors", "/rules/preview/doctors/download"]),
    fields=st.dictionaries(st.sampled_from(PREVIEW_FIELDS), VALUE),
    national_user=st.booleans(),
)
def test_no_rule_preview_faults(sign_in, national, path, fields, national_user):
    person = sign_in("national", EAST_OF_ENGLAND, "Nat National") if national_user else sign_in()
    assert_no_fault(person.client.get(path, query_string=fields))


AUDIT_FIELDS = (
    "actor",
    "doctor",
    "since",
    "until",
    "since[day]",
    "since[month]",
    "since[year]",
    "until[day]",
    "until[month]",
    "until[year]",
    "page",
)


@FUZZ
@given(
    fields=st.dictionaries(st.sampled_from(AUDIT_FIELDS), VALUE),
    download=st.booleans(),
    request_id=VALUE.filter(lambda text: "\n" not in text and "\r" not in text),  # HTTP carries no line breaks there
)
def test_no_audit_filter_or_request_id_faults(sign_in, national, fields, download, request_id):
    nina = sign_in(role="national", name="Nina National")
    path = "/audit/download" if download else "/audit"
    assert_no_fault(nina.client.get(path, query_string=fields, headers={"X-Request-ID": request_id}))


@FUZZ
@given(page=VALUE)
def test_no_archive_page_faults(sign_in, national, page):
    for role in ("national", "admin"):
        assert_no_fault(sign_in(role).client.get("/archive", query_string={"page": page}))
