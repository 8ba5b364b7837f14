"""Error pages: a refusal, a missing page, a bad form token or a fault, each in one sentence."""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus

from flask import Response, make_response, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from reval.db import DatabaseBusy
from reval.refusals import Conflict, Invalid, NotConfigured, NotFound, NotPermitted, Refused

log = logging.getLogger(__name__)

REFUSAL_STATUS = {NotFound: 404, NotPermitted: 403, Conflict: 409, Invalid: 400, NotConfigured: 503}
TITLES = {
    400: "There is a problem with this request",
    403: "You cannot do this",
    404: "Page not found",
    405: "This page cannot be used that way",
    409: "This cannot be done now",
    413: "What you sent is too large",
    503: "Reval is not set up for this",
}
TOO_LARGE = "What you sent is larger than Reval accepts in one go. Go back and send fewer doctors at a time."
NOT_FOUND = "If you typed the address, check it is correct. You may not have access to it."


def status_of(refusal: Refused) -> int:
    return next((status for kind, status in REFUSAL_STATUS.items() if isinstance(refusal, kind)), 400)


def error_page(error: Exception) -> Response:
    """The page for any error raised while serving a page (``reval.app`` sends them here)."""
    if isinstance(error, CSRFError):
        return page(
            400,
            "Your form could not be sent",
            "The form was out of date or did not come from Reval. Go back, reload the page and try again.",
        )
    if isinstance(error, NotFound):
        # The same page whether it does not exist or is another office's: nothing is given away.
        return page(404, TITLES[404], NOT_FOUND)
    if isinstance(error, Refused):
        status = status_of(error)
        return page(status, TITLES.get(status, TITLES[400]), str(error))
    if isinstance(error, DatabaseBusy):
        response = page(
            503, "Reval is busy", "A sync is writing to the database. Nothing was changed: try again in a minute."
        )
        response.headers["Retry-After"] = str(error.retry_after_seconds)
        return response
    if isinstance(error, HTTPException):
        status = error.code or 500
        details: dict[int, str | None] = {
            HTTPStatus.NOT_FOUND: NOT_FOUND,
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE: TOO_LARGE,
        }
        detail = details.get(status, error.description)
        response = page(status, TITLES.get(status, error.name), detail)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response
    error_id = uuid.uuid4().hex[:12]
    log.exception("Unexpected error %s", error_id)
    return page(
        500,
        "Sorry, there is a problem with Reval",
        f"Try again later. If it keeps happening, tell the service desk the error reference {error_id}.",
    )


def page(status: int, title: str, detail: str | None = None) -> Response:
    return make_response(render_template("errors/error.html", status=status, title=title, detail=detail), status)
