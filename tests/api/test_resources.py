"""The API's resources: what they answer, how they page and filter (as `reval export` does), the
outbox behind connection requests, idempotency keys, caching and the one error shape."""

from __future__ import annotations

import pytest

from reval.app import create_app
from reval.clock import utcnow
from reval.extensions import database
from reval.gmc.simulator import InjectedFault
from tests.api.conftest import ALL_SCOPES, AUDIENCE, Caller
from tests.conftest import wait_for
from tests.factories import AS_OF, EAST_OF_ENGLAND, exported, gmc_doctor
from tests.web.conftest import EAST_CONNECTED, EAST_MISMATCH, EAST_NOT_CONNECTED

BODY = f"/api/v1/designated-bodies/{EAST_OF_ENGLAND}"


@pytest.fixture
def admin(calling):
    return calling(scopes="reval.read reval.write")


def all_pages(caller: Caller, path: str) -> list[dict]:
    """Follows the Link headers from the first page to the last."""
    items: list[dict] = []
    url: str | None = path
    while url:
        response = caller.get(url)
        assert response.status_code == 200, response.json
        items += response.json["items"]
        links = dict(reversed(part.split("; rel=")) for part in response.headers["Link"].split(", "))
        url = links.get('"next"', "<>")[1:-1] or None
    return items


def test_the_bodies_a_caller_may_see(calling):
    assert [b["code"] for b in calling().get("/api/v1/designated-bodies").json["items"]] == [EAST_OF_ENGLAND]
    assert len(calling(scopes="reval.read reval.national").get("/api/v1/designated-bodies").json["items"]) == 14


def test_queue_counts(calling):
    counts = calling().get(f"{BODY}/queues").json
    assert counts == {
        "designatedBody": EAST_OF_ENGLAND,
        "gmcUpdateFailed": 0,
        "queues": {"CONNECTED": 25, "DISCREPANCY": 3, "HIDDEN": 0, "HISTORIC": 0},
    }
    assert calling().get(f"{BODY}/queues?reason=db_mismatch").json["queues"]["DISCREPANCY"] == 2


def test_pages_agree_with_reval_export(calling, sessions):
    caller = calling()
    api_rows = all_pages(caller, f"{BODY}/doctors?pageSize=7")
    export_rows = exported(sessions, EAST_OF_ENGLAND)
    assert [row["gmcReferenceNumber"] for row in api_rows] == [row["gmcReferenceNumber"] for row in export_rows]
    for api_row, export_row in zip(api_rows, export_rows, strict=True):
        assert {key: api_row[key] for key in export_row} == export_row  # the export's fields, the same
    first = caller.get(f"{BODY}/doctors?pageSize=7").json
    assert (first["total"], first["page"], first["pageSize"], len(first["items"])) == (28, 1, 7, 7)


def test_filters_and_sort(calling):
    caller = calling()
    mismatched = caller.get(f"{BODY}/doctors?queue=discrepancy&reason=DB_MISMATCH").json["items"]
    assert [row["gmcReferenceNumber"] for row in mismatched] == EAST_MISMATCH
    named = caller.get(f"{BODY}/doctors?q=zeph").json["items"]
    assert [row["gmcReferenceNumber"] for row in named] == ["1100003"]
    by_name = caller.get(f"{BODY}/doctors?queue=CONNECTED&sort=name&order=desc&pageSize=2").json["items"]
    assert [row["gmcReferenceNumber"] for row in by_name] == ["1100003", "1100004"]  # Zephaniah, Okafor
    assert caller.get(f"{BODY}/doctors?gmcUpdateFailed=true").json["total"] == 0


def test_the_national_ui_s_filters_narrow_pages_and_counts(admin, calling):
    caller = calling()
    ready = caller.get(f"{BODY}/doctors?ready=disconnect").json["items"]
    assert [row["gmcReferenceNumber"] for row in ready] == EAST_MISMATCH
    assert caller.get(f"{BODY}/queues?ready=connect").json["queues"] == {
        "CONNECTED": 0,
        "DISCREPANCY": 1,
        "HIDDEN": 0,
        "HISTORIC": 0,
    }
    assert caller.get(f"{BODY}/doctors?programme=general+practice").json["total"] == 28
    assert caller.get(f"{BODY}/doctors?programme=Surgery").json["total"] == 0
    assert caller.get(f"{BODY}/doctors?submittedFrom=2027-06-01&submittedTo=2027-06-01").json["total"] == 27
    assert caller.get(f"{BODY}/doctors?submittedTo=2027-05-31").json["total"] == 0
    assert caller.get(f"{BODY}/doctors?endedFrom=2000-01-01&changedTo=2026-11-21").json["total"] == 28
    assert caller.get(f"{BODY}/doctors?changedFrom=2026-11-22").json["total"] == 0
    number = EAST_CONNECTED[0]
    hide = admin.post(f"/api/v1/doctors/{number}/hides", {"designatedBody": EAST_OF_ENGLAND, "reason": "x"})
    assert hide.status_code == 201
    changed = caller.get(f"{BODY}/doctors?changedBy=CASE-SYSTEM").json["items"]
    assert [(row["gmcReferenceNumber"], row["lastChangedBy"]) for row in changed] == [(number, "case-system")]
    assert changed[0]["programmeMembershipType"] == "SUBSTANTIVE"


def test_a_date_range_that_ends_before_it_starts_is_refused_naming_its_end(calling):
    response = calling().get(f"{BODY}/doctors?endedFrom=2027-01-02&endedTo=2027-01-01")
    assert response.status_code == 422 and "endedTo" in response.json["errors"], response.json


def test_a_page_size_over_500_is_refused(calling):
    response = calling().get(f"{BODY}/doctors?pageSize=501")
    assert response.status_code == 422 and "pageSize" in response.json["errors"]
    assert calling().get(f"{BODY}/doctors?pageSize=500").status_code == 200


@pytest.mark.parametrize(
    "query, field",
    [
        ("sort=shoe_size", "sort"),
        ("queue=LIMBO", "queue"),
        ("page=0", "page"),
        ("reason=NOPE", "reason"),
        ("programmeOwner=NOWHERE", "programmeOwner"),
        ("ready=soon", "ready"),
        ("submittedFrom=2027-02-31", "submittedFrom"),
        ("changedTo=27-1-1", "changedTo"),
    ],
)
def test_bad_query_values_name_the_field(calling, query, field):
    response = calling().get(f"{BODY}/doctors?{query}")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert field in response.json["errors"], response.json


def test_a_doctor_with_the_explanation_and_a_cache_validator(calling):
    caller = calling()
    response = caller.get(f"/api/v1/doctors/{EAST_MISMATCH[0]}")
    doctor = response.json
    assert doctor["decision"]["reason"] == "DB_MISMATCH" and doctor["explanation"]["matchedRow"] == 10
    assert doctor["explanation"]["rowsTried"][8]["failed"] == [
        {"fact": "connected_to_programme_owner", "required": True, "actual": False}
    ]
    assert doctor["gmc"]["designatedBody"] == EAST_OF_ENGLAND and doctor["tisPeople"][0]["programmeMemberships"]
    unchanged = caller.get(f"/api/v1/doctors/{EAST_MISMATCH[0]}", headers={"If-None-Match": response.headers["ETag"]})
    assert (
        unchanged.status_code == 304 and unchanged.data == b"" and unchanged.headers["ETag"] == response.headers["ETag"]
    )


def test_a_gmc_number_that_is_not_seven_digits_is_refused(calling):
    response = calling().get("/api/v1/doctors/12345")
    assert response.status_code == 422 and "gmcNumber" in response.json["errors"]


def test_history_oldest_first(calling):
    events = calling().get(f"/api/v1/doctors/{EAST_MISMATCH[0]}/history").json["items"]
    assert [event["kind"] for event in events] == ["CONNECTION", "DECISION"]
    assert events[0]["description"].startswith("GMC connection: connected to")


def test_hide_and_unhide(admin, calling):
    number = EAST_CONNECTED[0]
    created = admin.post(f"/api/v1/doctors/{number}/hides", {"designatedBody": EAST_OF_ENGLAND, "reason": "on leave"})
    assert created.status_code == 201 and created.json["hiddenBy"] == "case-system"
    assert calling().get(f"{BODY}/queues").json["queues"]["HIDDEN"] == 1
    again = admin.post(f"/api/v1/doctors/{number}/hides", {"designatedBody": EAST_OF_ENGLAND, "reason": "again"})
    assert again.status_code == 409
    ended = admin.delete(f"/api/v1/doctors/{number}/hides/{EAST_OF_ENGLAND}")
    assert ended.status_code == 200 and ended.json["endedAt"]
    assert calling().get(f"{BODY}/queues").json["queues"]["HIDDEN"] == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"designatedBody": EAST_OF_ENGLAND, "reason": "x", "until": "2000-01-01"}, "until"),
        ({"designatedBody": EAST_OF_ENGLAND, "reason": ""}, "reason"),
        ({"designatedBody": EAST_OF_ENGLAND}, "reason"),
        ({"designatedBody": EAST_OF_ENGLAND, "reason": "x", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_hide_is_refused_naming_the_field(admin, body, field):
    response = admin.post(f"/api/v1/doctors/{EAST_CONNECTED[0]}/hides", body)
    assert response.status_code == 422 and field in response.json["errors"], response.json


def test_malformed_json_is_a_bad_request(admin):
    response = admin.client.post(
        f"/api/v1/doctors/{EAST_CONNECTED[0]}/hides",
        data="{not json",
        content_type="application/json",
        headers=admin.headers,
    )
    assert response.status_code == 400 and response.mimetype == "application/problem+json"


def test_a_wrong_method_is_refused_with_allow(admin):
    response = admin.delete("/api/v1/rules")
    assert response.status_code == 405 and "GET" in response.headers["Allow"]


def test_the_rule_table_as_data(calling):
    table = calling().get("/api/v1/rules").json
    assert table["label"] == "reval-default@2" and len(table["rows"]) == 15
    assert table["rows"][9] | {"when": None} == {
        "number": 10,
        "reason": "DB_MISMATCH",
        "label": "Connected to another body",
        "queue": "DISCREPANCY",
        "visibleTo": ["GMC DB"],
        "when": None,
        "description": table["rows"][9]["description"],
    }


def test_a_fault_answers_500_with_an_id_in_the_log_and_no_detail(app, issuer, national, caplog, monkeypatch):
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    served = create_app(settings | {"REVAL_API_ISSUER": issuer.url, "REVAL_API_AUDIENCE": AUDIENCE})  # not TESTING
    monkeypatch.setattr("reval.api.resources.tab_counts", lambda *args: 1 / 0)
    response = Caller(served, issuer.token()).get(f"{BODY}/queues")
    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    assert "ZeroDivisionError" not in response.text and "Traceback" not in response.text
    assert response.json["errorId"] in caplog.text
    database(served).engine.dispose()


def test_too_many_requests_answer_429_with_retry_after(app, issuer, national):
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    limited = create_app(
        settings
        | {
            "REVAL_API_ISSUER": issuer.url,
            "REVAL_API_AUDIENCE": AUDIENCE,
            "REVAL_API_RATE_LIMIT": "3/minute",
            "TESTING": True,
        }
    )
    caller = Caller(limited, issuer.token())
    statuses = [caller.get(f"{BODY}/queues").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = caller.get(f"{BODY}/queues")
    assert refused.mimetype == "application/problem+json" and int(refused.headers["Retry-After"]) >= 1
    # Per caller: another caller has a bucket of its own.
    assert Caller(limited, issuer.token(sub="another-system")).get(f"{BODY}/queues").status_code == 200
    database(limited).engine.dispose()


# --- connection requests, through the outbox ------------------------------------------------------


@pytest.fixture
def gmc_api(gmc_app, gmc_connect, issuer, national):
    """The API with GMC Connect at the simulator, which lists East of England's doctors."""
    for number in EAST_CONNECTED + EAST_MISMATCH:
        gmc_connect.state.lists[EAST_OF_ENGLAND][number] = gmc_doctor(number)
    settings = {key: value for key, value in gmc_app.config.items() if key.startswith("REVAL_")}
    served = create_app(
        settings
        | {
            "REVAL_API_ISSUER": issuer.url,
            "REVAL_API_AUDIENCE": AUDIENCE,
            "REVAL_API_RATE_LIMITS": "0",
            "REVAL_DELIVERY_BACKOFF_SECONDS": "0",
            "TESTING": True,
        }
    )
    yield Caller(served, issuer.token("reval.read reval.write"))
    database(served).engine.dispose()


def connect(caller: Caller, number: str = EAST_NOT_CONNECTED[0], **headers):
    return caller.post(
        "/api/v1/connection-requests",
        {
            "gmcNumber": number,
            "designatedBody": EAST_OF_ENGLAND,
            "action": "add",
            "reason": 1,
        },
        headers=headers,
    )


def status_of(caller: Caller, request_id: int, wanted: str) -> dict | None:
    state = caller.get(f"/api/v1/connection-requests/{request_id}").json
    return state if state["status"] == wanted else None


def test_a_connection_request_is_recorded_then_delivered(gmc_api, gmc_connect):
    created = connect(gmc_api)
    assert created.status_code == 201 and created.json["status"] == "PENDING"
    assert created.headers["Location"] == f"/api/v1/connection-requests/{created.json['id']}"
    done = wait_for(lambda: status_of(gmc_api, created.json["id"], "SUCCEEDED"))
    assert done["returnCode"] == "0" and EAST_NOT_CONNECTED[0] in gmc_connect.state.lists[EAST_OF_ENGLAND]
    assert gmc_api.get(f"/api/v1/doctors/{EAST_NOT_CONNECTED[0]}").json["decision"]["queue"] == "CONNECTED"


def test_a_transient_failure_is_retried(gmc_api, gmc_connect, reval):
    gmc_connect.state.faults.append(InjectedFault("http-500", operation="TryAddDoctor", times=1))
    created = connect(gmc_api).json
    # The first attempt's outcome, not its claim (which counts the attempt before GMC answers).
    waiting = wait_for(
        lambda: (
            (state := gmc_api.get(f"/api/v1/connection-requests/{created['id']}").json)["attempts"] == 1
            and state["message"]
            and state
        )
    )
    assert waiting["status"] == "PENDING" and waiting["nextAttemptAt"] > waiting["lastAttemptAt"]
    reval("deliver", "--all")
    assert status_of(gmc_api, created["id"], "SUCCEEDED")


def test_a_refused_change_fails_visibly_and_is_resent(gmc_api, gmc_connect):
    gmc_connect.state.faults.append(
        InjectedFault("return-code", gmc_number=EAST_NOT_CONNECTED[0], return_code="106", times=1)
    )
    created = connect(gmc_api).json
    failed = wait_for(lambda: status_of(gmc_api, created["id"], "FAILED"))
    assert failed["returnCode"] == "106" and "revalidation lock" in failed["message"] and failed["gmcUpdateFailed"]
    assert gmc_api.get(f"{BODY}/queues").json["gmcUpdateFailed"] == 1
    resent = gmc_api.post(f"/api/v1/connection-requests/{created['id']}/resend")
    assert resent.status_code == 201 and resent.json["resendOf"] == created["id"]
    assert wait_for(lambda: status_of(gmc_api, resent.json["id"], "SUCCEEDED"))
    assert gmc_api.get(f"/api/v1/connection-requests/{created['id']}").json["supersededBy"] == resent.json["id"]
    assert gmc_api.get(f"{BODY}/queues").json["gmcUpdateFailed"] == 0
    again = gmc_api.post(f"/api/v1/connection-requests/{created['id']}/resend")
    assert again.status_code == 409 and f"request {resent.json['id']}" in again.json["detail"]


def test_a_reason_that_does_not_fit_the_action_is_refused(gmc_api):
    response = gmc_api.post(
        "/api/v1/connection-requests",
        {
            "gmcNumber": EAST_NOT_CONNECTED[0],
            "designatedBody": EAST_OF_ENGLAND,
            "action": "ADD",
            "reason": "3",
        },
    )
    assert response.status_code == 422 and "reason" in response.json["errors"]
    response = gmc_api.post(
        "/api/v1/connection-requests",
        {
            "gmcNumber": "12",
            "designatedBody": EAST_OF_ENGLAND,
            "action": "ADD",
            "reason": "1",
        },
    )
    assert response.status_code == 422 and "gmcNumber" in response.json["errors"]


def test_an_idempotency_key_makes_a_request_safe_to_repeat(gmc_api, gmc_connect):
    first = connect(gmc_api, **{"Idempotency-Key": "case-42"})
    repeated = connect(gmc_api, **{"Idempotency-Key": "case-42"})
    assert repeated.status_code == 201 and repeated.json["id"] == first.json["id"]
    assert repeated.headers["Idempotent-Replayed"] == "true"
    other_body = connect(gmc_api, EAST_CONNECTED[0], **{"Idempotency-Key": "case-42"})
    assert other_body.status_code == 422 and "Idempotency-Key" in other_body.json["errors"]
    wait_for(lambda: status_of(gmc_api, first.json["id"], "SUCCEEDED"))
    assert len(gmc_api.get("/api/v1/connection-requests").json["items"]) == 1
    assert len([call for call in gmc_connect.state.calls if call["operation"] == "TryAddDoctor"]) == 1


def test_requests_are_listed_and_filtered(gmc_api):
    created = connect(gmc_api).json
    wait_for(lambda: status_of(gmc_api, created["id"], "SUCCEEDED"))
    assert [r["id"] for r in gmc_api.get("/api/v1/connection-requests?status=succeeded").json["items"]] == [
        created["id"]
    ]
    assert gmc_api.get("/api/v1/connection-requests?status=FAILED").json["items"] == []
    assert gmc_api.get(f"/api/v1/connection-requests?gmcNumber={EAST_CONNECTED[0]}").json["total"] == 0


# --- runs ----------------------------------------------------------------------------------------


def test_a_national_caller_starts_a_run_and_a_second_is_refused_while_it_runs(api, issuer, sessions):
    from reval.models import SyncRun

    caller = Caller(api, issuer.token(ALL_SCOPES))
    with sessions.begin() as session:  # a run already under way
        session.add(
            SyncRun(
                started_at=utcnow(), as_of=AS_OF, status="RUNNING", rule_table="reval-default@1", rejected_records=0
            )
        )
    refused = caller.post("/api/v1/runs")
    assert refused.status_code == 409 and "already running" in refused.json["detail"]


def test_runs_are_listed_with_a_validator(calling):
    caller = calling()
    runs = caller.get("/api/v1/runs").json["items"]
    assert runs[0]["status"] == "SUCCEEDED"
    one = caller.get(f"/api/v1/runs/{runs[0]['id']}")
    assert (
        one.status_code == 200
        and caller.get(f"/api/v1/runs/{runs[0]['id']}", headers={"If-None-Match": one.headers["ETag"]}).status_code
        == 304
    )
    assert caller.get("/api/v1/runs/2147483000").status_code == 404
