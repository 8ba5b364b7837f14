"""What the API accepts as a request body: JSON, and only JSON that can be read safely.

Bodies are parsed with orjson, which refuses nesting deeper than 1,024 levels as invalid JSON
(the standard library's parser would overflow Python's stack first, a fault instead of a 400).
The size limit (REVAL_MAX_REQUEST_BYTES) applies to every request and is enforced by the app.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Request, Response, request
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from reval.api.problems import problem


class JsonBodyParser(FlaskParser):
    """webargs' parser for Flask, reading JSON bodies with orjson."""

    def _raw_load_json(self, req: Request) -> Any:
        if not is_json_request(req):
            return core.missing
        body = req.get_data(cache=True)
        if not body:
            return core.missing
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as error:  # webargs answers this one with a 400
            raise json.JSONDecodeError(str(error), body.decode("utf-8", "replace"), error.pos) from None


def require_json_body() -> Response | None:
    """A request that carries a body must say it is JSON (415 otherwise)."""
    has_body = (request.content_length or 0) > 0 or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if has_body and not request.is_json:
        sent = request.mimetype or "no content type"
        return problem(
            415,
            f"the request body must be application/json, not {sent}",
            kind="unsupported-media-type",
            headers={"Accept": "application/json"},
        )
    return None
