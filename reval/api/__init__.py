"""The JSON API (/api/v1): queues, doctors and actions for other systems, over the same use
cases as the web and the command, with the same rules for who may see and do what.

Built with flask-smorest: the OpenAPI 3 document is served at /api/v1/openapi.json and a copy
is committed (docs/openapi.json); a test fails when they differ, so every API change is a
reviewed diff. Callers present bearer JWTs (``reval.api.tokens``); every failure is a problem
document (``reval.api.problems``).
"""

from __future__ import annotations

import http
import json
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app
from flask_limiter import Limiter
from flask_smorest import Api, Blueprint
from flask_smorest.etag import _get_etag_ctx
from flask_smorest.utils import prepare_response
from flask_wtf.csrf import CSRFProtect
from limits import parse_many
from marshmallow import Schema

from reval.api.bodies import JsonBodyParser
from reval.api.callers import rate_limit_key
from reval.api.problems import PROBLEM_JSON, ProblemSchema, error_problem
from reval.api.tokens import SCOPES, TokenSettings, TokenVerifier, dev_key
from reval.extensions import settings as reval_settings

API_PREFIX = "/api/v1"
VERSION = "1.0.0"

# Headers of the error answers, documented once for every operation.
ERROR_HEADERS = {
    401: {
        "WWW-Authenticate": {
            "description": "The bearer challenge (RFC 6750)",
            "schema": {"type": "string"},
            "required": True,
        }
    },
    403: {
        "WWW-Authenticate": {"description": "insufficient_scope, with the scopes needed", "schema": {"type": "string"}}
    },
    405: {"Allow": {"description": "The methods this address takes", "schema": {"type": "string"}, "required": True}},
    429: {
        "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 0}, "required": True}
    },
}
COMMON_ERRORS = (400, 401, 403, 405, 413, 415, 429, 500, 503)

_View = TypeVar("_View", bound=Callable[..., Any])
# What flask-smorest's documenting decorators make of a view: they wrap it, changing its arguments
# (the parsed schemas come first) and its result (a Response).
ViewDecorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class ProblemApi(Api):  # type: ignore[misc]  # flask-smorest ships no types: Api is Any to mypy
    """flask-smorest's Api, every error answer a documented problem document."""

    ERROR_SCHEMA = ProblemSchema
    # No "default" answer: with one, an undocumented status could never be caught by the contract tests.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_responses(self) -> None:  # flask-smorest's own, with problem+json bodies and their headers
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status == http.HTTPStatus.NOT_MODIFIED:
                response["headers"] = {"ETag": "ETAG"}
            if status >= http.HTTPStatus.BAD_REQUEST:
                response["schema"] = self.ERROR_SCHEMA
                if status in ERROR_HEADERS:
                    response["headers"] = ERROR_HEADERS[status]
                prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)

    def _register_pagination_header(self) -> None:
        """Pages are envelopes with Link headers; no X-Pagination header, so no schema for it."""

    def _register_error_handlers(self) -> None:
        """``reval.app`` sends errors under /api/ to ``error_problem``."""


class ApiBlueprint(Blueprint):  # type: ignore[misc]  # flask-smorest ships no types: Blueprint is Any to mypy
    """A blueprint whose every operation documents the common error answers, whose 304s keep
    their ETag, and whose JSON bodies are read safely (``reval.api.bodies``).

    Its decorators are flask-smorest's, given the types flask-smorest does not declare."""

    ARGUMENTS_PARSER = JsonBodyParser()

    def route(self, rule: str, **options: Any) -> Callable[[_View], _View]:
        decorator: Callable[[_View], _View] = super().route(rule, **options)
        return decorator

    def arguments(self, schema: type[Schema] | Schema, **options: Any) -> ViewDecorator:
        decorator: ViewDecorator = super().arguments(schema, **options)
        return decorator

    def response(self, status_code: int, schema: type[Schema] | Schema | None = None, **options: Any) -> ViewDecorator:
        decorator: ViewDecorator = super().response(status_code, schema, **options)
        return decorator

    def alt_response(self, status_code: int, **options: Any) -> ViewDecorator:
        decorator: ViewDecorator = super().alt_response(status_code, **options)
        return decorator

    def etag(self, view: Callable[..., Any]) -> Callable[..., Any]:
        decorated: Callable[..., Any] = super().etag(view)
        return decorated

    def _check_not_modified(self, etag: str) -> None:
        _get_etag_ctx()["not_modified_etag"] = etag
        super()._check_not_modified(etag)

    def _prepare_response_doc(
        self, doc: dict[str, Any], doc_info: dict[str, Any], *, api: Any, spec: Any, **kwargs: Any
    ) -> dict[str, Any]:
        responses = doc_info.setdefault("response", {}).setdefault("responses", {})
        for status in COMMON_ERRORS:
            responses.setdefault(status, [http.HTTPStatus(status).name])
        prepared: dict[str, Any] = super()._prepare_response_doc(doc, doc_info, api=api, spec=spec, **kwargs)
        return prepared


def init_api(app: Flask, csrf: CSRFProtect) -> None:
    from reval.api import fhir, resources

    app.config.update(
        API_TITLE="Reval",
        API_VERSION=VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=API_PREFIX,
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "security": [{"bearerAuth": []}],
            "info": {
                "description": (
                    "Doctors' GMC connections reconciled with their TIS programmes: each designated body's queues, "
                    "a doctor's decision and history, hides and connection requests. Bearer JWTs with the scopes "
                    + ", ".join(f"{scope} ({meaning})" for scope, meaning in SCOPES.items())
                    + ". Every error is a problem document (application/problem+json)."
                )
            },
        },
    )
    configured = reval_settings(app)
    settings = TokenSettings.from_settings(configured)
    app.extensions["reval.tokens"] = TokenVerifier(settings, dev_key(app.instance_path) if settings.dev else None)
    api = ProblemApi(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    app.extensions["reval.api"] = api
    limiter = Limiter(
        rate_limit_key,
        app=app,
        storage_uri=_limit_storage(app),
        key_prefix="reval-api",
        headers_enabled=False,
        enabled=configured.api_rate_limits,
    )
    app.extensions["reval.limiter"] = limiter
    for blueprint in resources.BLUEPRINTS:
        limiter.shared_limit(_process_rate_limit, scope="api")(blueprint)
        csrf.exempt(blueprint)  # callers prove who they are with tokens, not cookies
        api.register_blueprint(blueprint)
    limiter.shared_limit(_process_rate_limit, scope="api")(fhir.fhir)
    csrf.exempt(fhir.fhir)
    app.register_blueprint(fhir.fhir)
    if settings.dev:
        app.register_blueprint(resources.dev_keys)
        csrf.exempt(resources.dev_keys)


def openapi_document(app: Flask) -> str:
    """The API's OpenAPI document as the committed copy holds it (sorted keys, indented)."""
    with app.app_context():
        spec: dict[str, Any] = app.extensions["reval.api"].spec.to_dict()
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def under(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def share_rate_limit(app: Flask, processes: int) -> bool:
    """Makes the API's rate limit hold across ``processes`` server processes forked from this
    app. With shared storage (Redis) they count together. In memory each process counts alone,
    so each then allows its share of the limit: together never more than the limit, though a
    caller whose requests land mostly on one process is refused sooner. Returns whether the
    limit is counted as one (shared, one process, or no limits)."""
    app.extensions["reval.limit_processes"] = processes
    return processes == 1 or not reval_settings(app).api_rate_limits or _limit_storage(app) != MEMORY_STORAGE


def _process_rate_limit() -> str:
    limit = reval_settings().api_rate_limit
    processes = current_app.extensions.get("reval.limit_processes", 1)
    if processes == 1 or _limit_storage(current_app) != MEMORY_STORAGE:
        return limit
    return ";".join(
        f"{max(1, item.amount // processes)} per {item.multiples} {item.GRANULARITY.name}" for item in parse_many(limit)
    )


MEMORY_STORAGE = "memory://"


def _limit_storage(app: Flask) -> str:
    """Redis when there is a broker (every server process shares the counts), else memory."""
    configured = reval_settings(app)
    return configured.rate_limit_storage_url or configured.broker_url or MEMORY_STORAGE


__all__ = ["API_PREFIX", "error_problem", "init_api", "openapi_document", "share_rate_limit", "under"]
