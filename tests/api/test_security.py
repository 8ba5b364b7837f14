"""Who may call the API: real signed tokens, checked against the issuer's published keys."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from reval.api.tokens import KEY_REFRESH_SECONDS, InvalidToken, RemoteKeys
from tests.api.conftest import ALL_SCOPES, Caller, b64url, rsa_key
from tests.factories import EAST_OF_ENGLAND, WESSEX
from tests.web.conftest import EAST_CONNECTED, EAST_NOT_CONNECTED, WESSEX_CONNECTED

QUEUE = f"/api/v1/designated-bodies/{EAST_OF_ENGLAND}/queues"


def assert_refused(response, status: int = 401) -> None:
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_token_is_accepted(api, issuer):
    assert Caller(api, issuer.token()).get(QUEUE).status_code == 200


def test_no_token_is_refused_with_a_bearer_challenge(api):
    response = api.test_client().get(QUEUE)
    assert_refused(response)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="reval"'


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 120},  # expired (beyond the leeway)
        {"iss": "https://someone-else.example"},
        {"aud": "another-api"},
        {"nbf": int(time.time()) + 3600},  # not yet valid
    ],
)
def test_a_token_with_bad_claims_is_refused(api, issuer, claims):
    assert_refused(Caller(api, issuer.token(**claims)).get(QUEUE))


def test_a_token_signed_by_another_key_is_refused(api, issuer):
    impostor = rsa_key("key-1")  # the same key id, another key
    assert_refused(Caller(api, issuer.token(key=impostor)).get(QUEUE))


def test_a_tampered_token_is_refused(api, issuer):
    header, _payload, signature = issuer.token().split(".")
    forged = b64url(json.dumps(issuer.claims(ALL_SCOPES, (WESSEX, EAST_OF_ENGLAND))).encode())
    assert_refused(Caller(api, f"{header}.{forged}.{signature}").get(QUEUE))


def test_an_unknown_key_id_is_refused(api, issuer):
    stranger = rsa_key("key-unknown")
    assert_refused(Caller(api, issuer.token(key=stranger)).get(QUEUE))


def test_an_unsigned_token_is_refused(api, issuer):
    header = b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": "key-1"}).encode())
    payload = b64url(json.dumps(issuer.claims(ALL_SCOPES)).encode())
    response = Caller(api, f"{header}.{payload}.").get(QUEUE)
    assert_refused(response)
    assert "algorithm 'none' is not accepted" in response.json["detail"]


def test_a_symmetric_token_made_with_the_public_key_is_refused(api, issuer):
    # The classic confusion attack: HS256 with the issuer's public key as the shared secret.
    secret = issuer.keys[0].as_pem(private=False)
    signing_input = (
        b64url(json.dumps({"alg": "HS256", "kid": "key-1"}).encode())
        + "."
        + b64url(json.dumps(issuer.claims(ALL_SCOPES)).encode())
    )
    signature = b64url(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    assert_refused(Caller(api, f"{signing_input}.{signature}").get(QUEUE))


def test_a_missing_scope_is_forbidden(calling):
    response = calling(scopes="reval.write").get(QUEUE)  # write, but not read
    assert_refused(response, 403)
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_a_read_only_token_cannot_write(calling):
    reader = calling(scopes="reval.read")
    assert_refused(
        reader.post(
            f"/api/v1/doctors/{EAST_CONNECTED[0]}/hides", {"designatedBody": EAST_OF_ENGLAND, "reason": "on leave"}
        ),
        403,
    )
    assert_refused(
        reader.post(
            "/api/v1/connection-requests",
            {
                "gmcNumber": EAST_NOT_CONNECTED[0],
                "designatedBody": EAST_OF_ENGLAND,
                "action": "ADD",
                "reason": "1",
            },
        ),
        403,
    )
    assert_refused(reader.post("/api/v1/runs"), 403)


def test_another_bodys_doctor_queue_and_request_are_not_found(calling, sessions):
    from reval.clock import utcnow
    from reval.gmc.codes import Action
    from reval.reconcile.connections import record_connection_request

    with sessions.begin() as session:
        request_id = record_connection_request(
            session,
            gmc_number_text=EAST_NOT_CONNECTED[0],
            designated_body=EAST_OF_ENGLAND,
            action=Action.ADD,
            reason="1",
            requested_by="ann",
            now=utcnow(),
        ).id
    wessex = calling(scopes="reval.read reval.write", bodies=(WESSEX,))
    for path in (
        f"/api/v1/doctors/{EAST_CONNECTED[0]}",
        f"/api/v1/doctors/{EAST_CONNECTED[0]}/history",
        f"/api/v1/designated-bodies/{EAST_OF_ENGLAND}/queues",
        f"/api/v1/designated-bodies/{EAST_OF_ENGLAND}/doctors",
        f"/api/v1/connection-requests/{request_id}",
    ):
        assert_refused(wessex.get(path), 404)
    assert wessex.get(f"/api/v1/doctors/{WESSEX_CONNECTED[0]}").status_code == 200
    # Not found is answered alike for another office's doctor and a number nobody knows.
    hidden, unknown = (
        wessex.get(f"/api/v1/doctors/{EAST_CONNECTED[0]}").json,
        wessex.get("/api/v1/doctors/9999999").json,
    )
    assert hidden == {**unknown, "detail": unknown["detail"].replace("9999999", EAST_CONNECTED[0])}
    assert_refused(
        wessex.post(f"/api/v1/doctors/{EAST_CONNECTED[0]}/hides", {"designatedBody": WESSEX, "reason": "x"}), 404
    )
    assert_refused(wessex.post(f"/api/v1/connection-requests/{request_id}/resend"), 404)
    assert [item["id"] for item in wessex.get("/api/v1/connection-requests").json["items"]] == []


def test_rejected_records_are_shown_to_national_callers_only(calling, national):
    run = f"/api/v1/runs/{national.run_id}"
    assert "rejections" not in calling().get(run).json
    assert calling(scopes="reval.read reval.national").get(run).json["rejections"] is not None


def test_unknown_key_ids_refetch_the_keys_at_most_every_30_seconds(issuer):
    clock = [1000.0]
    keys = RemoteKeys(lambda: issuer.url + "/jwks", clock=lambda: clock[0])
    assert keys.key("key-1") is not None and issuer.jwks_fetches == 1
    for _ in range(5):  # a flood of made-up key ids
        with pytest.raises(InvalidToken):
            keys.key("made-up")
    assert issuer.jwks_fetches == 1
    issuer.keys.append(rsa_key("key-2"))  # the issuer rotates its keys
    clock[0] += KEY_REFRESH_SECONDS
    assert keys.key("key-2").kid == "key-2" and issuer.jwks_fetches == 2


def test_development_tokens_are_accepted_only_in_development(reval, app, migrated, tmp_path):
    from reval.app import create_app
    from reval.extensions import database

    app.config.update(REVAL_AUTH="dev")
    token = reval(
        "token", "--name", "dev-caller", "--scope", "reval.read", "--designated-body", EAST_OF_ENGLAND
    ).output.strip()
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    dev_app = create_app(settings | {"REVAL_AUTH": "dev"})
    assert Caller(dev_app, token).get(QUEUE).status_code == 200
    jwks = dev_app.test_client().get("/api/v1/dev-jwks.json").get_json()
    assert jwks is not None and jwks["keys"][0]["kty"] == "RSA"
    production = create_app(settings | {"REVAL_AUTH": "", "REVAL_API_ISSUER": "http://127.0.0.1:9/none"})
    assert Caller(production, token).get(QUEUE).status_code == 401
    assert production.test_client().get("/api/v1/dev-jwks.json").status_code == 404
    app.config.update(REVAL_AUTH="")
    assert "only with REVAL_AUTH=dev" in reval("token", "--name", "x", expect_exit=2).output
    for made in (dev_app, production):
        database(made).engine.dispose()
