"""What every page shares: sign-in required, security headers, the use-case context, formatting,
and the pages with no topic of their own (home, rules)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Flask, Response, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from reval.designated_bodies import DesignatedBody
from reval.extensions import database
from reval.gateway import AppGateway
from reval.rules import DEFAULT_RULE_TABLE
from reval.rules.table import format_value
from reval.services import reference
from reval.services.access import visible_bodies
from reval.services.context import Context
from reval.services.preview import decisions_rule_table
from reval.web.addresses import local_path
from reval.web.auth import current_actor, end_stale_session, settings, signed_in_actor
from reval.web.presenters import (
    body_label,
    code_breaks,
    format_day,
    format_moment,
    in_words,
    membership_type,
    sentence_case,
)

blueprint = Blueprint("pages", __name__)

# Endpoints anyone may reach: signing in, the files every page loads, and the probes (/metrics
# takes its own token). (The API, under /api/, and the FHIR view name their callers with tokens,
# not the session.)
PUBLIC_BLUEPRINTS = {"auth", "dev_auth", "assets", "operations", "fhir"}
API_PATH = "/api/"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",  # no inline scripts, no eval
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' https://assets.nhs.uk",  # the NHS.UK typeface (falls back to Arial where blocked)
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    )
)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    app.before_request(_require_sign_in)
    app.after_request(_security_headers)
    app.context_processor(_template_globals)
    app.jinja_env.filters.update(
        day=format_day,
        moment=format_moment,
        yes_no=format_value,
        sentence=sentence_case,
        membership=membership_type,
        code_breaks=code_breaks,
    )


def web_context() -> Context:
    """The signed-in person's context: a web request never waits on GMC (workers or a background
    thread deliver), and reads never wait for a sync's writes."""
    db = database()
    return Context(
        db.sessions, db.reads, signed_in_actor(), AppGateway(current_app, wait_for_delivery=False), entry_point="ui"
    )


def _require_sign_in() -> ResponseReturnValue | None:
    if request.blueprint in PUBLIC_BLUEPRINTS or request.endpoint is None or request.path.startswith(API_PATH):
        return None
    problem = settings().problem()
    if problem:
        current_app.logger.error("Refusing to serve: %s", problem)
        return render_template(
            "errors/error.html",
            status=503,
            title="Sign-in is not configured",
            detail="Reval cannot serve pages until sign-in is configured.",
        ), 503
    if end_stale_session() or current_actor() is None:
        return redirect(url_for("auth.sign_in", next=_return_address()))
    return None


def _return_address() -> str:
    """Where to come back to after signing in: this page, or for a form sent (whose fields are
    lost) the page it was sent from."""
    if request.method in ("GET", "HEAD"):
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    same_site = referrer.netloc == request.host and referrer.path
    return local_path(referrer._replace(scheme="", netloc="").geturl() if same_site else None)


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if not settings().dev:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    if request.path.startswith(API_PATH):
        headers.setdefault("Cache-Control", "private, no-cache")  # revalidated with its ETag
    elif request.blueprint != "assets":
        headers.setdefault("Cache-Control", "no-store")  # pages name doctors: keep them out of caches
    return response


def _template_globals() -> dict[str, Any]:
    return {
        "actor": current_actor(),
        "dev_sign_in": settings().dev,
        "body_name": body_name,
        "body_label": body_label_of,
        "in_words": lambda text: in_words(text, {body.code: body.name for body in configured_bodies()}),
        "reason_label": DEFAULT_RULE_TABLE.reason_label,
        "url_with": url_with,
    }


def my_bodies() -> list[DesignatedBody]:
    """The signed-in person's designated bodies, read once per request."""
    if "my_bodies" not in g:
        with database().reads() as session:
            g.my_bodies = visible_bodies(session, signed_in_actor())
    bodies: list[DesignatedBody] = g.my_bodies
    return bodies


def configured_bodies() -> list[DesignatedBody]:
    """Every configured designated body (any may own a programme), read once per request."""
    if "configured_bodies" not in g:
        g.configured_bodies = reference.configured_bodies(database().reads)
    bodies: list[DesignatedBody] = g.configured_bodies
    return bodies


def body_name(code: str | None) -> str:
    """A body's name as people know it (every configured body, not only the viewer's)."""
    if code is None:
        return ""
    return next((body.name for body in configured_bodies() if body.code == code), code)


def body_label_of(code: str | None) -> str:
    """A body by name with its code as GMC writes it: East of England (1-1RSSQ05)."""
    return body_label(body_name(code), code) if code else ""


def url_with(**changes: Any) -> str:
    """This page's address with some query parameters changed (None removes one)."""
    args = {key: value for key, value in request.args.items(multi=False)}
    args.update({key: value for key, value in changes.items()})
    query = urlencode({key: value for key, value in args.items() if value not in (None, "")})
    return request.path + (f"?{query}" if query else "")


@blueprint.get("/")
def home() -> ResponseReturnValue:
    """The signed-in person's Discrepancies."""
    return redirect(url_for("queues.queue", queue="discrepancies"))


@blueprint.get("/rules")
def rules() -> str:
    context = web_context()
    return render_template(
        "rules.html",
        rule_table=DEFAULT_RULE_TABLE,
        decided_with=decisions_rule_table(context),
        may_preview=context.actor.may_act,
    )
