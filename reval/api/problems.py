"""One error shape for every failure of the API: problem details (RFC 9457), as
``application/problem+json``, with per-field ``errors`` where input was at fault.

Nothing internal reaches a caller: a fault answers 500 with an ``errorId`` that is in the log
beside the traceback.
"""

from __future__ import annotations

import http
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
import orjson
from flask import Response, current_app, request
from flask_smorest.etag import _get_etag_ctx
from werkzeug.exceptions import HTTPException

from reval.db import DatabaseBusy
from reval.refusals import Conflict, Gone, Invalid, Malformed, NotConfigured, NotFound, NotPermitted, Refused

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPES = "https://reval.nhs.example/problems/"  # the documentation of each problem type
REFUSAL_STATUS = (
    (NotFound, 404),
    (NotPermitted, 403),
    (Conflict, 409),
    (Gone, 410),
    (Malformed, 400),
    (Invalid, 422),
    (NotConfigured, 503),
)
# The use cases' names for inputs the API spells otherwise.
FIELD_NAMES = {
    "owner": "programmeOwner",
    "gmcNumbers": "gmcNumber",
    "submitted_to": "submittedTo",
    "ended_to": "endedTo",
    "changed_to": "changedTo",
    "changed_by": "changedBy",
}


class ProblemSchema(ma.Schema):
    # No Meta.description: apispec would then drop additionalProperties: false.
    type = ma.fields.String(
        required=True, metadata={"description": "What kind of problem (a URI)", "example": "about:blank"}
    )
    title = ma.fields.String(required=True, metadata={"description": "The kind of problem, for people"})
    status = ma.fields.Integer(required=True, metadata={"description": "The HTTP status", "example": 404})
    detail = ma.fields.String(metadata={"description": "What went wrong this time, in one sentence"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={
            "description": "Per field (as sent: query, header or body), what is wrong with it",
            "example": {"pageSize": ["page size 501 is not between 1 and 500"]},
        },
    )
    errorId = ma.fields.String(
        metadata={"description": "On a 500 only: quote it to the service desk; it is in the log"}
    )


def problem(
    status: int,
    detail: str | None = None,
    *,
    kind: str | None = None,
    errors: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPES + kind if kind else "about:blank",
        "title": http.HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extra or {})
    response = current_app.response_class(orjson.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def refusal_problem(refusal: Refused) -> Response:
    status = next((code for kind, code in REFUSAL_STATUS if isinstance(refusal, kind)), 400)
    if isinstance(refusal, NotFound):
        # The same answer whether it does not exist or is another office's.
        return problem(404, str(refusal), kind="not-found")
    errors = (
        {FIELD_NAMES.get(refusal.field, refusal.field): [str(refusal)]}
        if status in (http.HTTPStatus.BAD_REQUEST, http.HTTPStatus.UNPROCESSABLE_ENTITY) and refusal.field
        else None
    )
    kind = {
        400: "validation-error",
        403: "not-permitted",
        409: "conflict",
        410: "gone",
        422: "validation-error",
        503: "not-configured",
    }.get(status)
    return problem(status, str(refusal), kind=kind, errors=errors)


def error_problem(error: Exception) -> Response:
    """The problem for any error raised while answering an API request."""
    if isinstance(error, Refused):
        return refusal_problem(error)
    if isinstance(error, DatabaseBusy):
        return problem(
            503,
            "a sync is writing to the database; nothing was changed: try again later",
            kind="busy",
            headers={"Retry-After": str(error.retry_after_seconds)},
        )
    if not isinstance(error, HTTPException):
        return _fault(error)
    if error.code == http.HTTPStatus.NOT_MODIFIED:
        return _not_modified()
    return _http_problem(error)


def _not_modified() -> Response:
    """The ETag machinery's NotModified: no body, and the tag again."""
    response = current_app.response_class(status=304)
    etag = _get_etag_ctx().get("not_modified_etag")
    if etag:
        response.set_etag(etag)
    return response


@dataclass
class _Answer:
    """A problem being put together from an HTTP error."""

    detail: str | None
    kind: str | None
    errors: dict[str, list[str]] | None
    headers: dict[str, str]


def _http_problem(error: HTTPException) -> Response:
    """An HTTP error raised by Flask, flask-smorest or webargs, as a problem; a 5xx is a fault."""
    status = error.code or 500
    if status >= http.HTTPStatus.INTERNAL_SERVER_ERROR:
        return _fault(getattr(error, "original_exception", None) or error)
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    data = getattr(error, "data", None) or {}
    headers.update(data.get("headers") or {})
    answer = _Answer(data.get("message"), data.get("kind"), data.get("errors"), headers)
    if "messages" in data:
        _take_webargs_messages(answer, data["messages"], status)
    adjust = STATUS_ANSWERS.get(status)
    if adjust is not None:
        adjust(answer, error)
    return problem(status, answer.detail, kind=answer.kind, errors=answer.errors or None, headers=answer.headers)


def _take_webargs_messages(answer: _Answer, messages_by_location: dict[str, Any], status: int) -> None:
    """webargs' messages: {"query": {...}, "json": {...}} or {"json": ["Invalid JSON body."]}."""
    answer.errors = {}
    for messages in messages_by_location.values():
        if isinstance(messages, dict):
            answer.errors.update(flatten(messages))
        else:
            answer.detail = " ".join(map(str, messages))
    if status == http.HTTPStatus.UNPROCESSABLE_ENTITY:
        answer.kind, answer.detail = "validation-error", answer.detail or "some fields are not valid: see errors"


def _unreadable(answer: _Answer, _error: HTTPException) -> None:
    answer.detail = answer.detail or "the request could not be read"


def _nothing_here(answer: _Answer, _error: HTTPException) -> None:
    answer.detail = answer.detail or "there is nothing at this address"


def _method_not_allowed(answer: _Answer, _error: HTTPException) -> None:
    answer.detail = f"{request.method} is not allowed here"


def _body_too_large(answer: _Answer, _error: HTTPException) -> None:
    answer.kind = "body-too-large"
    answer.detail = f"the request body is larger than {request.max_content_length} bytes"


def _rate_limited(answer: _Answer, error: HTTPException) -> None:
    retry_after = _seconds_until_reset()
    answer.headers["Retry-After"] = str(retry_after)
    answer.kind = "rate-limited"
    answer.detail = f"too many requests ({error.description}); try again in {retry_after} s"


# What each status says beyond what the error itself said.
STATUS_ANSWERS: dict[int, Callable[[_Answer, HTTPException], None]] = {
    400: _unreadable,
    404: _nothing_here,
    405: _method_not_allowed,
    413: _body_too_large,
    429: _rate_limited,
}


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's messages as {"field" or "parent.child": [message, ...]}."""
    if isinstance(messages, dict):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(messages, (list, tuple)) and all(isinstance(message, str) for message in messages):
        return {prefix or "_request": list(messages)}
    if isinstance(messages, (list, tuple)):
        flat = {}
        for index, value in enumerate(messages):
            flat.update(flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "_request": [str(messages)]}


def _fault(error: BaseException) -> Response:
    error_id = uuid.uuid4().hex[:16]
    log.error("API fault %s on %s %s", error_id, request.method, request.path, exc_info=error)
    return problem(500, f"something went wrong on Reval's side; quote error id {error_id}", extra={"errorId": error_id})


def _seconds_until_reset() -> int:
    limiter = current_app.extensions.get("reval.limiter")
    current = limiter.current_limit if limiter is not None else None
    return max(1, int(current.reset_at - time.time())) if current is not None else 1
