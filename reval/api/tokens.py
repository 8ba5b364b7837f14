"""Bearer JWT access tokens: who calls the API, with which scopes and designated bodies.

Tokens are verified with joserfc against the issuer's published keys (JWKS): signature, ``iss``,
``aud``, ``exp`` and ``nbf``; ``alg: none`` and symmetric algorithms are refused before any key
is looked at. Keys are cached and fetched again when a token names a key not seen yet, at most
once every 30 seconds (a flood of made-up key ids cannot hammer the identity provider).

In development (REVAL_AUTH=dev) the app also accepts tokens it signed itself with a key kept in
its instance folder (``reval token`` mints them; the public key is at /api/v1/dev-jwks.json).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet, RSAKey

from reval.instance_files import read_or_create_private
from reval.refusals import NotConfigured
from reval.services.context import Actor, Role
from reval.settings import Settings

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "Ed25519", "EdDSA")
SCOPES = {
    "reval.read": "read queues, doctors, requests, runs and rules",
    "reval.write": "hide doctors and request connection changes",
    "reval.national": "every designated body, and sync runs",
}
DEV_ISSUER = "urn:reval:development"
KEY_REFRESH_SECONDS = 30.0
LEEWAY_SECONDS = 30


class InvalidToken(Exception):
    """The token is refused (401); the message says why, for the log and the caller."""


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched: Reval's problem, not the caller's (503)."""


@dataclass(frozen=True)
class TokenSettings:
    issuer: str | None  # REVAL_API_ISSUER, else REVAL_OIDC_ISSUER
    audience: str  # REVAL_API_AUDIENCE, else REVAL_OIDC_CLIENT_ID, else "reval"
    jwks_url: str | None  # REVAL_API_JWKS_URL, else the issuer's discovery document says
    bodies_claim: str  # REVAL_OIDC_BODIES_CLAIM, as for the web's sign-in
    dev: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenSettings:
        return cls(
            issuer=(settings.api_issuer or settings.oidc_issuer or "").rstrip("/") or None,
            audience=settings.api_audience or settings.oidc_client_id or "reval",
            jwks_url=settings.api_jwks_url,
            bodies_claim=settings.oidc_bodies_claim,
            dev=settings.dev,
        )


class RemoteKeys:
    """An issuer's JWKS, fetched on first need and again for an unknown key id (at most every
    KEY_REFRESH_SECONDS); a failed fetch keeps the keys already held."""

    def __init__(self, url: Callable[[], str], clock: Callable[[], float] = time.monotonic):
        self._url, self._clock = url, clock
        self._keys: dict[str, Key] = {}
        self._single: Key | None = None
        self._fetched_at = -KEY_REFRESH_SECONDS
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> Key:
        with self._lock:
            if (kid is None or kid not in self._keys) and self._clock() - self._fetched_at >= KEY_REFRESH_SECONDS:
                self._fetch()
            if kid is None and self._single is not None:
                return self._single
            if kid not in self._keys:
                raise InvalidToken(f"the token's key {kid!r} is not one of the issuer's")
            return self._keys[kid]

    def _fetch(self) -> None:
        self._fetched_at = self._clock()  # first: a failing identity provider is rate-limited too
        try:
            response = requests.get(self._url(), timeout=5)
            response.raise_for_status()
            keys = [key for key in response.json()["keys"] if key.get("use", "sig") == "sig"]
            key_set = KeySet.import_key_set({"keys": keys})
        except (requests.RequestException, ValueError, KeyError, TypeError, JoseError) as error:
            if not self._keys:
                raise KeysUnavailable(f"the issuer's keys could not be fetched: {error}") from None
            return
        self._keys = {key.kid: key for key in key_set if key.kid}
        self._single = next(iter(key_set), None) if len(key_set.keys) == 1 else None


def discovered_jwks_url(issuer: str) -> str:
    response = requests.get(issuer + "/.well-known/openid-configuration", timeout=5)
    response.raise_for_status()
    document = response.json()
    if document.get("issuer", "").rstrip("/") != issuer:
        raise KeysUnavailable(f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}")
    jwks_uri: str = document["jwks_uri"]
    return jwks_uri


class TokenVerifier:
    def __init__(self, settings: TokenSettings, dev_key: Key | None):
        self.settings = settings
        self.dev_key = dev_key
        self.remote: RemoteKeys | None = None
        if issuer := settings.issuer:
            self.remote = RemoteKeys(lambda: settings.jwks_url or discovered_jwks_url(issuer))

    @property
    def configured(self) -> bool:
        return self.remote is not None or self.dev_key is not None

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once every check has passed; raises InvalidToken."""
        try:
            compact = jws.extract_compact(token.encode("ascii"))
            header, unverified = compact.headers(), json.loads(compact.payload)
        except (JoseError, ValueError, UnicodeError, TypeError):
            raise InvalidToken("the token is not a signed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:  # "none", HS256 (a public key as a secret), anything odd
            raise InvalidToken(f"algorithm {algorithm!r} is not accepted")
        issuer = str(unverified.get("iss", "")).rstrip("/") if isinstance(unverified, dict) else ""
        if self.dev_key is not None and issuer == DEV_ISSUER:
            key = self.dev_key
        elif self.remote is not None and issuer == self.settings.issuer:
            key = self.remote.key(header.get("kid"))
        else:
            raise InvalidToken(f"tokens from issuer {issuer!r} are not accepted")
        try:
            verified = jwt.decode(token, key, algorithms=[algorithm])
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY_SECONDS,
                iss={"essential": True, "value": issuer},  # DEV_ISSUER or the configured issuer, as chosen above
                aud={"essential": True, "value": self.settings.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(verified.claims)  # nbf and iat too, when present
        except JoseError as error:
            claim = getattr(error, "claim", None)
            raise InvalidToken(f"{error.error}" + (f" ({claim})" if claim else "")) from None
        _check_list_claims(verified.claims, ("scope", "scp", self.settings.bodies_claim))
        return verified.claims


def _check_list_claims(claims: Mapping[str, Any], names: tuple[str, ...]) -> None:
    """Refuses a token whose scopes or bodies are neither a string nor a list of strings: a
    signed token is still input, and no other shape has a meaning here."""
    for name in names:
        value = claims.get(name)
        if value is None or isinstance(value, str):
            continue
        if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
            raise InvalidToken(f"the token's {name} claim must be a string or a list of strings")


def scopes_of(claims: Mapping[str, Any]) -> set[str]:
    """The ``scope`` claim (space-separated; ``scp`` as a list, as some providers send it)."""
    scope = claims.get("scope", claims.get("scp")) or ""
    return set(scope.split()) if isinstance(scope, str) else set(scope)


def caller(claims: Mapping[str, Any], bodies_claim: str) -> Actor:
    """The actor a token speaks for: national, admin (may write) or viewer, by its scopes."""
    scopes = scopes_of(claims)
    role = Role.NATIONAL if "reval.national" in scopes else Role.ADMIN if "reval.write" in scopes else Role.VIEWER
    bodies = claims.get(bodies_claim) or []
    if isinstance(bodies, str):
        bodies = bodies.replace(",", " ").split()
    name = next((str(claims[key]) for key in ("name", "client_id", "azp", "sub") if claims.get(key)), "unknown")
    subject = f"token:{claims['sub']}" if claims.get("sub") else None
    return Actor(
        name, role, frozenset(str(body).strip().upper() for body in bodies if str(body).strip()), subject=subject
    )


# --- development tokens --------------------------------------------------------------------------


def dev_key(instance_path: str | Path) -> RSAKey:
    """This instance's development signing key, made on first use (readable by its owner only)."""
    path = Path(instance_path) / "dev-token-key.json"

    def make() -> str:
        key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True)
        key.ensure_kid()
        return json.dumps(key.as_dict(private=True))

    text = read_or_create_private(path, make)
    try:
        return RSAKey.import_key(json.loads(text))
    except (ValueError, TypeError, KeyError, JoseError) as error:
        raise NotConfigured(
            f"{path} is not a development signing key ({type(error).__name__}); delete it and Reval makes a new one"
        ) from None


def mint_dev_token(
    key: RSAKey, settings: TokenSettings, name: str, scopes: str, bodies: list[str], minutes: int
) -> str:
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "aud": settings.audience,
        "sub": name,
        "name": name,
        "scope": scopes,
        settings.bodies_claim: bodies,
        "iat": now,
        "nbf": now,
        "exp": now + minutes * 60,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
