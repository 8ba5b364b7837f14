"""Who is calling: the bearer token of each API request, verified once and turned into an actor."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, request

from reval import logs
from reval.api.problems import problem
from reval.api.tokens import InvalidToken, KeysUnavailable, TokenVerifier, caller, scopes_of


def authenticate() -> Response | None:
    """Every API request names its caller with a bearer token; OPTIONS is answered by Flask."""
    if request.method == "OPTIONS":
        return None
    verifier: TokenVerifier = current_app.extensions["reval.tokens"]
    claims = verified_claims()
    if claims is None:
        if not verifier.configured:
            return problem(
                503,
                "the API's token issuer is not configured (REVAL_API_ISSUER or REVAL_OIDC_ISSUER)",
                kind="not-configured",
            )
        why = g.get("token_error") or "a bearer token is required"
        challenge = 'Bearer realm="reval"' + (
            f', error="invalid_token", error_description="{_quoted(why)}"' if g.get("token_error") else ""
        )
        return problem(401, why, kind="unauthorized", headers={"WWW-Authenticate": challenge})
    g.api_scopes = scopes_of(claims)
    g.api_actor = caller(claims, verifier.settings.bodies_claim)
    logs.actor.set(g.api_actor.subject)  # the token's subject, never a name
    return None


def verified_claims() -> dict[str, Any] | None:
    """The request's token claims, verified once per request (the rate limit asks first)."""
    if "token_claims" not in g:
        g.token_claims, g.token_error = None, None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                g.token_claims = current_app.extensions["reval.tokens"].claims(token.strip())
            except InvalidToken as error:
                g.token_error = str(error)
            except KeysUnavailable as error:
                current_app.logger.error("API tokens cannot be checked: %s", error)
                g.token_error = "the token could not be checked now; try again later"
        elif request.headers.get("Authorization"):
            g.token_error = "the Authorization header must be: Bearer <token>"
    claims: dict[str, Any] | None = g.token_claims
    return claims


def rate_limit_key() -> str:
    # Verified, never merely read: an unverified subject would let a caller pick a fresh bucket.
    claims = verified_claims()
    if claims is not None:
        return f"caller:{claims.get('iss')}:{claims.get('sub')}"
    return f"address:{request.remote_addr or 'unknown'}"


def _quoted(text: str) -> str:
    return text.replace('"', "'").replace("\\", "")[:200]
