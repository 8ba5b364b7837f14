"""Whether this process can do its work: the database answers, its schema is current, and the
broker answers when one is configured. /readyz and `reval check` ask the same questions here."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from reval.db import DatabaseBusy, DatabaseUnavailable, schema_is_current
from reval.extensions import database, settings
from reval.refusals import NotConfigured

OK = "ok"
BROKER_TIMEOUT_SECONDS = 1.5  # a load balancer's probe waits a few seconds at most


def readiness(app: Flask) -> dict[str, str]:
    """Each check and its state: "ok", or what is wrong in a few words (no versions, no data)."""
    engine = database(app).engine
    checks = {"database": _database_state(app)}
    if checks["database"] == OK:
        try:
            checks["schema"] = OK if schema_is_current(engine) else "out of date: run `reval db upgrade`"
        except (SQLAlchemyError, DatabaseUnavailable, DatabaseBusy, NotConfigured) as error:
            checks["schema"] = f"unreadable: {_reason(error)}"
    else:
        checks["schema"] = "unknown: the database did not answer"
    broker_url = settings(app).broker_url
    if broker_url:
        checks["broker"] = _broker_state(broker_url)
    return checks


def ready(checks: dict[str, str]) -> bool:
    return all(state == OK for state in checks.values())


def _database_state(app: Flask) -> str:
    try:
        with database(app).engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, DatabaseUnavailable, DatabaseBusy, NotConfigured) as error:
        return f"unreachable: {_reason(error)}"
    return OK


def _broker_state(url: str) -> str:
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return OK  # only Redis brokers are checked (Reval's Celery runs on Redis)
    client = redis.Redis.from_url(
        url, socket_connect_timeout=BROKER_TIMEOUT_SECONDS, socket_timeout=BROKER_TIMEOUT_SECONDS
    )
    try:
        client.ping()
    except redis.RedisError as error:
        return f"unreachable: {_reason(error)}"
    finally:
        client.close()
    return OK


def _reason(error: Exception) -> str:
    """The cause in a few lowercase words, without addresses or credentials."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    reason = text[0] if text else type(error).__name__
    lowered = reason.lower()
    for known in ("connection refused", "timed out", "unable to open database file", "authentication failed"):
        if known in lowered:
            return known
    if "timeout" in lowered:
        return "timed out"
    return type(error).__name__
