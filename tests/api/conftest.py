"""The API against a real (local) token issuer: discovery and JWKS served over HTTP, tokens signed
with its keys, on the web tests' national dataset."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import Key, KeySet, RSAKey
from werkzeug.wrappers import Request, Response

from reval.app import create_app
from reval.extensions import database
from tests.conftest import served
from tests.factories import EAST_OF_ENGLAND
from tests.web.conftest import national  # noqa: F401  (the dataset fixture)

AUDIENCE = "reval-api"
ALL_SCOPES = "reval.read reval.write reval.national"


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


class Issuer:
    """An identity provider as far as the API sees one: discovery, its keys, and tokens it signs."""

    def __init__(self) -> None:
        self.keys: list[Key] = [rsa_key("key-1")]
        self.jwks_fetches = 0
        self.url = ""

    def __call__(self, environ, start_response):
        path = Request(environ).path
        body: Mapping[str, object]  # a JSON document (the key set is a TypedDict)
        if path == "/.well-known/openid-configuration":
            body = {"issuer": self.url, "jwks_uri": self.url + "/jwks"}
        elif path == "/jwks":
            self.jwks_fetches += 1
            body = KeySet(self.keys).as_dict(private=False)
        else:
            return Response("not found", 404)(environ, start_response)
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)

    def claims(
        self, scopes: str = "reval.read", bodies: tuple[str, ...] = (EAST_OF_ENGLAND,), **extra: Any
    ) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.url,
            "aud": AUDIENCE,
            "sub": "case-system",
            "scope": scopes,
            "designated_bodies": list(bodies),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            **extra,
        }

    def token(
        self,
        scopes: str = "reval.read",
        bodies: tuple[str, ...] = (EAST_OF_ENGLAND,),
        key: Key | None = None,
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = key or self.keys[0]
        return jwt.encode(
            {"alg": "RS256", "kid": key.kid, **(header or {})}, self.claims(scopes, bodies, **claims), key
        )


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    issuer = Issuer()
    with served(issuer) as url:
        issuer.url = url
        yield issuer


@pytest.fixture
def api(app, issuer, national):  # noqa: F811 -- the parameter is the fixture imported above
    """An app whose API trusts the issuer, on the national dataset (rate limits off: tested alone)."""
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    api_app = create_app(
        settings
        | {
            "REVAL_API_ISSUER": issuer.url,
            "REVAL_API_AUDIENCE": AUDIENCE,
            "REVAL_API_RATE_LIMITS": "0",
            "TESTING": True,
        }
    )
    yield api_app
    database(api_app).engine.dispose()


class Caller:
    """A system calling the API with one token."""

    def __init__(self, app, token: str):
        self.client = app.test_client()
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **kwargs):
        return self.client.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs):
        return self.client.post(path, json=json_body, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.client.delete(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)


@pytest.fixture
def calling(api, issuer):
    def caller(scopes: str = "reval.read", bodies: tuple[str, ...] = (EAST_OF_ENGLAND,), **claims: Any) -> Caller:
        return Caller(api, issuer.token(scopes, bodies, **claims))

    return caller


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
