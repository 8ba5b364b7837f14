"""Log lines of the server, the commands and the workers: plain text (the default), or one JSON
object a line, each with the request id and the actor of what it belongs to.

The request id and actor live in context variables: a web request sets them, a Celery task takes
them from its message's headers, a background thread gets a copy of its starter's context.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# An id a caller may choose: short, and nothing a log reader would misread (no spaces or quotes).
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
REQUEST_ID_HEADER = "X-Request-ID"

request_id: ContextVar[str | None] = ContextVar("reval_request_id", default=None)
actor: ContextVar[str | None] = ContextVar("reval_actor", default=None)

JSON_FIELDS = ("time", "level", "logger", "message", "request_id", "actor")
_HANDLER_NAME = "reval"


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is well formed, else a new one."""
    if header and REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class _Context(logging.Filter):
    """Gives every record the request id and actor of the context it was logged in."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        if not hasattr(record, "actor"):
            record.actor = actor.get()
        return True


class _Json(JsonFormatter):
    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data.setdefault("request_id", None)
        log_data.setdefault("actor", None)


class _StandardError(logging.StreamHandler):
    """Writes to standard error as it is when a line is written (a test's capture, a redirect)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _stream: Any) -> None:
        pass


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """With "json", one handler on the root logger writes every line as JSON to standard error
    (configured again, never added twice, when a process makes a second app). With "text" the
    logging stays as Python, Flask and Celery set it up on a terminal."""
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if handler.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    if log_format != "json":
        return
    handler = _StandardError()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_Context())
    handler.setFormatter(_Json(" ".join(f"%({name})s" for name in JSON_FIELDS[3:]), json_ensure_ascii=False))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
