"""Whatever a caller sends, the API answers with a problem document, never a fault: bodies that
are too large (413), not JSON (415) or nested too deeply (400), token claims of the wrong type
(401), and two callers hiding the same doctor at once (one 201, the rest 409)."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from sqlalchemy import func, select

from reval.app import create_app
from reval.extensions import database
from reval.models import DoctorHide
from tests.api.conftest import AUDIENCE, Caller
from tests.conftest import served
from tests.factories import EAST_OF_ENGLAND
from tests.web.conftest import EAST_CONNECTED

HIDES = f"/api/v1/doctors/{EAST_CONNECTED[0]}/hides"
QUEUE = f"/api/v1/designated-bodies/{EAST_OF_ENGLAND}/queues"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status
    return response.json


def test_a_deeply_nested_body_is_a_bad_request(calling):
    admin = calling("reval.read reval.write")
    response = admin.client.post(HIDES, data="[" * 100_000, content_type="application/json", headers=admin.headers)
    assert_problem(response, 400)


def test_a_body_over_the_limit_is_refused_before_it_is_read(calling):
    admin = calling("reval.read reval.write")
    body = json.dumps({"designatedBody": EAST_OF_ENGLAND, "reason": "x" * (1024 * 1024)})
    problem = assert_problem(
        admin.client.post(HIDES, data=body, content_type="application/json", headers=admin.headers), 413
    )
    assert "1048576 bytes" in problem["detail"]


def test_the_body_limit_is_a_setting(app, issuer, national):
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    small = create_app(
        settings
        | {
            "REVAL_API_ISSUER": issuer.url,
            "REVAL_API_AUDIENCE": AUDIENCE,
            "REVAL_API_RATE_LIMITS": "0",
            "REVAL_MAX_REQUEST_BYTES": "100",
            "TESTING": True,
        }
    )
    try:
        admin = Caller(small, issuer.token("reval.read reval.write"))
        assert_problem(admin.post(HIDES, {"designatedBody": EAST_OF_ENGLAND, "reason": "x" * 100}), 413)
        assert admin.post(HIDES, {"designatedBody": EAST_OF_ENGLAND, "reason": "leave"}).status_code == 201
    finally:
        database(small).engine.dispose()


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", None],
)
def test_a_body_that_is_not_json_is_an_unsupported_media_type(calling, content_type):
    admin = calling("reval.read reval.write")
    headers = {**admin.headers, **({"Content-Type": content_type} if content_type else {})}
    response = admin.client.post(
        HIDES, data=f'{{"designatedBody": "{EAST_OF_ENGLAND}", "reason": "leave"}}', headers=headers
    )
    problem = assert_problem(response, 415)
    assert "application/json" in problem["detail"]


def test_a_post_without_a_body_is_not_asked_for_a_content_type(calling):
    admin = calling("reval.read reval.write")
    response = admin.client.post(HIDES, headers=admin.headers)
    assert_problem(response, 422)  # the fields it needs are missing: not a 415


@pytest.mark.parametrize(
    "claims",
    [
        {"scope": 42},
        {"scope": ["reval.read", 42]},
        {"scope": {"reval.read": True}},
        {"designated_bodies": 7},
        {"designated_bodies": [EAST_OF_ENGLAND, 7]},
        {"designated_bodies": {"code": EAST_OF_ENGLAND}},
        {"scp": 1.5, "scope": None},
    ],
)
def test_a_signed_token_with_claims_of_the_wrong_type_is_an_invalid_token(api, issuer, claims):
    response = Caller(api, issuer.token(**claims)).get(QUEUE)
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_two_callers_hiding_one_doctor_at_once_get_one_hide_and_conflicts(api, issuer):
    token = issuer.token("reval.read reval.write")
    callers = 12
    ready = threading.Barrier(callers)
    statuses: list[tuple[int, str]] = []

    def hide(url: str) -> None:
        ready.wait()
        response = requests.post(
            f"{url}{HIDES}",
            json={"designatedBody": EAST_OF_ENGLAND, "reason": "on leave"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        statuses.append((response.status_code, response.headers.get("Content-Type", "")))

    with served(api) as url:
        threads = [threading.Thread(target=hide, args=(url,)) for _ in range(callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    codes = sorted(code for code, _ in statuses)
    assert codes == [201] + [409] * (callers - 1), codes
    assert all(kind == "application/problem+json" for code, kind in statuses if code == 409)
    with database(api).sessions.begin() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(DoctorHide)
                .where(DoctorHide.gmc_number == EAST_CONNECTED[0], DoctorHide.ended_at.is_(None))
            )
            == 1
        )
