"""Signing in: OpenID Connect in production, a development form when REVAL_AUTH=dev.

A signed-in person is an ``Actor`` (name, role, designated bodies) kept in the session cookie.
Their role and bodies come from the identity provider's claims; a person without a Reval role
is refused. The development form exists only in development mode (otherwise its address is a
404), and every page then says so in a banner.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from joserfc.errors import JoseError
from werkzeug.datastructures import MultiDict

from reval.extensions import database
from reval.extensions import settings as reval_settings
from reval.instance_files import read_or_create_private
from reval.refusals import NotConfigured
from reval.services.context import Actor, Role
from reval.services.reference import configured_bodies, configured_codes
from reval.settings import Settings
from reval.validation import InvalidValue, free_text
from reval.web.addresses import local_path

blueprint = Blueprint("auth", __name__, url_prefix="/auth")
dev_blueprint = Blueprint("dev_auth", __name__, url_prefix="/auth")

ROLE_CLAIM_VALUES = {"reval.viewer": Role.VIEWER, "reval.admin": Role.ADMIN, "reval.national": Role.NATIONAL}
RANK = (Role.VIEWER, Role.ADMIN, Role.NATIONAL)
OIDC_SETTINGS = ("REVAL_OIDC_ISSUER", "REVAL_OIDC_CLIENT_ID", "REVAL_OIDC_CLIENT_SECRET")
SESSION_HOURS = 8  # the absolute limit: sign in again after this, however busy
IDLE_MINUTES = 30  # REVAL_SESSION_IDLE_MINUTES: sign in again after this long without a request
SEEN_EVERY_SECONDS = 60  # how often a busy session's last-seen time is written back to its cookie


@dataclass(frozen=True)
class SignInSettings:
    dev: bool  # REVAL_AUTH=dev: the development form, and a development banner on every page
    issuer: str | None
    client_id: str | None
    client_secret: str | None
    roles_claim: str
    bodies_claim: str
    secret_key: str | None
    idle_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInSettings:
        return cls(
            dev=settings.dev,
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            roles_claim=settings.oidc_roles_claim,
            bodies_claim=settings.oidc_bodies_claim,
            secret_key=settings.secret_key,
            idle_seconds=60 * settings.session_idle_minutes,
        )

    @property
    def oidc(self) -> bool:
        return bool(self.issuer and self.client_id and self.client_secret)

    def problem(self) -> str | None:
        """Why the web cannot serve anyone, in one line naming the settings; None when it can."""
        if not self.dev and not self.oidc:
            return (
                "sign-in is not configured: set REVAL_OIDC_ISSUER, REVAL_OIDC_CLIENT_ID and REVAL_OIDC_CLIENT_SECRET "
                "(or REVAL_AUTH=dev for development sign-in)"
            )
        if not self.dev and not self.secret_key:
            return "REVAL_SECRET_KEY is not set: the web needs a secret key to sign its session cookies"
        return None


def settings(app: Flask | None = None) -> SignInSettings:
    configured: SignInSettings = (app or current_app).extensions["reval.sign_in"]
    return configured


def require_web_settings(app: Flask) -> None:
    """Refuses to serve (NotConfigured) when nobody could sign in, or sessions could be forged."""
    problem = settings(app).problem()
    if problem:
        raise NotConfigured(problem)


def init_app(app: Flask) -> None:
    read = reval_settings(app)
    configured = SignInSettings.from_settings(read)
    app.extensions["reval.sign_in"] = configured
    # Development: the instance's own key, the same in each of its server processes. Elsewhere
    # the key is required before serving (require_web_settings).
    app.secret_key = configured.secret_key or (
        read_or_create_private(Path(app.instance_path) / "dev-secret-key", lambda: secrets.token_hex(32))
        if configured.dev
        else None
    )
    app.config.update(
        SESSION_COOKIE_NAME="reval_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # Lax: the identity provider's redirect back is a top-level GET
        # Sent over HTTPS only, outside development (REVAL_SECURE_COOKIES=0 to test over plain HTTP).
        SESSION_COOKIE_SECURE=read.secure_cookies if read.secure_cookies is not None else not configured.dev,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
    )
    if configured.oidc:
        oauth = OAuth(app)
        oauth.register(
            name="oidc",
            client_id=configured.client_id,
            client_secret=configured.client_secret,
            server_metadata_url=(configured.issuer or "").rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256", "timeout": 10},
        )
        app.extensions["reval.oidc"] = oauth.oidc
    if configured.dev:
        app.register_blueprint(dev_blueprint)


# --- who is signed in ----------------------------------------------------------------------------


def current_actor() -> Actor | None:
    if "actor" not in g:
        user = session.get("user")
        sign_in = session.get("sign_in")
        g.actor = (
            None
            if not user
            else Actor(
                user["name"],
                Role(user["role"]),
                frozenset(user["bodies"]),
                subject=f"session:{sign_in}" if sign_in else None,
            )
        )
    actor: Actor | None = g.actor
    return actor


def signed_in_actor() -> Actor:
    """The signed-in person, on a page that requires one (every page but the public ones)."""
    actor = current_actor()
    if actor is None:
        raise RuntimeError("no one is signed in: this page should not have been reached (pages._require_sign_in)")
    return actor


def sign_in_as(name: str, role: Role, bodies: list[str], via: str, id_token: str | None = None) -> None:
    session.clear()
    session.permanent = True
    now = int(time.time())
    session["user"] = {"name": name, "role": role.value, "bodies": sorted(bodies), "via": via}
    session["signed_in_at"] = session["seen_at"] = now
    session["sign_in"] = secrets.token_hex(8)  # names this sign-in in the logs and the access audit
    if id_token:
        session["id_token"] = id_token  # the hint that ends this sign-in at the identity provider too


def end_stale_session() -> bool:
    """Ends the session when it has been idle too long or has reached the absolute limit; True
    if it did. Otherwise notes that it is in use (the cookie is rewritten at most once a minute)."""
    if "user" not in session:
        return False
    now = int(time.time())
    signed_in_at, seen_at = session.get("signed_in_at", 0), session.get("seen_at", 0)
    if now - seen_at > settings().idle_seconds or now - signed_in_at > SESSION_HOURS * 3600:
        session.clear()
        g.pop("actor", None)
        session["timed_out"] = True  # the sign-in page says why
        return True
    if now - seen_at >= SEEN_EVERY_SECONDS:
        session["seen_at"] = now
    return False


# --- pages ---------------------------------------------------------------------------------------


@blueprint.get("/sign-in")
def sign_in() -> ResponseReturnValue:
    configured = settings()
    next_page = local_path(request.args.get("next"))
    if configured.oidc and not configured.dev:
        return redirect(url_for("auth.oidc", next=next_page))
    if configured.dev and not configured.oidc:
        return redirect(url_for("dev_auth.dev_sign_in", next=next_page))
    return render_template(
        "auth/sign_in.html", oidc=configured.oidc, next_page=next_page, timed_out=session.pop("timed_out", False)
    )


@blueprint.get("/oidc")
def oidc() -> ResponseReturnValue:
    client = current_app.extensions.get("reval.oidc")
    if client is None:
        return render_template("errors/error.html", status=404, title="Page not found"), 404
    session["next"] = local_path(request.args.get("next"))
    to_provider: ResponseReturnValue = client.authorize_redirect(url_for("auth.callback", _external=True))
    return to_provider


@blueprint.get("/callback")
def callback() -> ResponseReturnValue:
    client = current_app.extensions.get("reval.oidc")
    if client is None:
        return render_template("errors/error.html", status=404, title="Page not found"), 404
    next_page = session.pop("next", None)
    try:
        token = client.authorize_access_token()
        claims = dict(token.get("userinfo") or {})
        if client.load_server_metadata().get("userinfo_endpoint"):
            extra = client.userinfo(token=token)
            if extra.get("sub") == claims.get("sub"):
                claims.update(extra)
    except (OAuthError, JoseError) as error:
        current_app.logger.warning("Sign-in failed at the identity provider: %s", error)
        session.clear()
        return render_template(
            "errors/error.html",
            title="Sign-in failed",
            detail="The identity provider did not confirm who you are. Try again.",
        ), 401
    configured = settings()
    role = role_from_claims(claims.get(configured.roles_claim))
    name = next(
        (str(claims[key]) for key in ("name", "preferred_username", "email", "sub") if claims.get(key)), "unknown"
    )
    if role is None:
        current_app.logger.warning("Sign-in refused: %s has no Reval role", name)
        session.clear()
        return render_template(
            "errors/error.html",
            title="You do not have access to Reval",
            detail=f"Your account ({name}) has no Reval role. Ask your revalidation team to give you one.",
        ), 403
    sign_in_as(
        name,
        role,
        _configured_codes(claim_values(claims.get(configured.bodies_claim))),
        via="oidc",
        id_token=token.get("id_token"),
    )
    return redirect(local_path(next_page))


@blueprint.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    signed_in_with_oidc = (session.get("user") or {}).get("via") == "oidc"
    id_token = session.get("id_token")
    session.clear()
    return redirect((signed_in_with_oidc and _end_session_at_provider(id_token)) or url_for("auth.signed_out"))


def _end_session_at_provider(id_token: str | None) -> str | None:
    """The identity provider's address that ends the person's sign-in there too and then sends
    them to the signed-out page (OpenID Connect RP-initiated logout), where it offers one."""
    client = current_app.extensions.get("reval.oidc")
    if client is None:
        return None
    try:
        endpoint: str | None = client.load_server_metadata().get("end_session_endpoint")
    except (OAuthError, requests.RequestException, ValueError) as error:
        current_app.logger.warning("Signed out of Reval only: the identity provider did not answer: %s", error)
        return None
    if not endpoint:
        return None
    parameters = {
        "post_logout_redirect_uri": url_for("auth.signed_out", _external=True),
        "client_id": settings().client_id,
    }
    if id_token:
        parameters["id_token_hint"] = id_token
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(parameters)


@blueprint.get("/signed-out")
def signed_out() -> str:
    return render_template("auth/signed_out.html")


@dev_blueprint.route("/dev", methods=["GET", "POST"])
def dev_sign_in() -> ResponseReturnValue:
    bodies = configured_bodies(database().reads)
    form: MultiDict[str, str] = request.form if request.method == "POST" else MultiDict()
    errors: dict[str, str] = {}
    if request.method == "POST":
        chosen, errors = _dev_choice(request.form, {body.code for body in bodies})
        if chosen is not None:
            name, role, codes = chosen
            sign_in_as(name, role, codes, via="dev")
            return redirect(local_path(form.get("next")))
    return render_template(
        "auth/dev_sign_in.html",
        bodies=bodies,
        form=form,
        errors=errors,
        next_page=local_path(request.values.get("next")),
        timed_out=session.pop("timed_out", False),
    ), (422 if errors else 200)


def _dev_choice(
    form: MultiDict[str, str], codes: set[str]
) -> tuple[tuple[str, Role, list[str]] | None, dict[str, str]]:
    """Who the development form says to sign in as (name, role, bodies), or the errors to show.
    ``designated_body`` is the body to land on, then any more an admin or viewer ticked; a
    national user names only the body to land on (they see every body)."""
    errors: dict[str, str] = {}
    name = None
    try:
        name = free_text("Name", form.get("name"), 200)
    except InvalidValue as error:
        errors["name"] = str(error)
    if not name:
        errors.setdefault("name", "Enter your name")
    role = form.get("role")
    if role not in {r.value for r in Role}:
        errors["role"] = "Select a role"
    chosen = list(dict.fromkeys(form.getlist("designated_body")))
    if not chosen or not set(chosen) <= codes:
        errors["designated_body"] = "Select a designated body"
    elif role == Role.NATIONAL.value and len(chosen) > 1:
        errors["designated_body"] = "A national user sees every body: choose only the one to land on"
    if errors or not (name and role):
        return None, errors
    return (name, Role(role), chosen), errors


# --- claims --------------------------------------------------------------------------------------


def claim_values(value: Any) -> list[str]:
    """A claim as a list: a JSON list, or one string of values separated by spaces or commas."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    if isinstance(value, (list, tuple)):
        return [str(part).strip() for part in value if isinstance(part, (str, int)) and str(part).strip()]
    return []


def role_from_claims(value: Any) -> Role | None:
    """The highest Reval role the claim grants (national over admin over viewer), or None."""
    roles = [ROLE_CLAIM_VALUES[v] for v in claim_values(value) if v in ROLE_CLAIM_VALUES]
    return max(roles, key=RANK.index) if roles else None


def _configured_codes(codes: list[str]) -> list[str]:
    """The claimed bodies that are configured, in their configured spelling."""
    return configured_codes(database().reads, codes)
