"""What every entry point's Flask app holds: its settings, the database, Celery and the clients of
GMC and TIS, each made on first use. ``reval.app`` builds the app; this module only equips it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reval.db import ensure_schema, make_engine, read_only, schema_is_current, session_factory
from reval.gmc.client import GmcClient, GmcSettings
from reval.refusals import NotConfigured
from reval.settings import number
from reval.tis.client import TisClient, TisSettings

# Settings read from the environment (or given to create_app); see docs/operations.md.
SETTINGS = (
    "REVAL_DATABASE_URL",
    "REVAL_BROKER_URL",
    "REVAL_GMC_URL",
    "REVAL_GMC_USERNAME",
    "REVAL_GMC_PASSWORD",
    "REVAL_GMC_CONNECT_TIMEOUT",
    "REVAL_GMC_READ_TIMEOUT",
    "REVAL_GMC_ATTEMPTS",
    "REVAL_GMC_BACKOFF_SECONDS",
    "REVAL_DELIVERY_MAX_ATTEMPTS",
    "REVAL_DELIVERY_BACKOFF_SECONDS",
    "REVAL_TIS_URL",
    "REVAL_TIS_TOKEN_URL",
    "REVAL_TIS_CLIENT_ID",
    "REVAL_TIS_CLIENT_SECRET",
    "REVAL_TIS_CONNECT_TIMEOUT",
    "REVAL_TIS_READ_TIMEOUT",
    "REVAL_TIS_ATTEMPTS",
    "REVAL_TIS_BACKOFF_SECONDS",
    "REVAL_TIS_PAGE_SIZE",
    "REVAL_TIS_CONCURRENCY",
    "REVAL_RESULT_BACKEND",
    "REVAL_LOCK_URL",
    "REVAL_NIGHTLY_LOCK_SECONDS",
    "REVAL_NIGHTLY_AT",
    "REVAL_NIGHTLY_RETRIES",
    "REVAL_NIGHTLY_RETRY_MINUTES",
    "REVAL_DELIVER_EVERY_MINUTES",
    "REVAL_HIDE_EXPIRY_AT",
    "REVAL_BROKER_VISIBILITY_TIMEOUT",
    "REVAL_SHARD_SIZE",
    "REVAL_INSTANCE_PATH",
    "REVAL_DB_BUSY_SECONDS",
    "REVAL_MAX_TIS_DELETIONS_PERCENT",
    "REVAL_MAX_GMC_DISCONNECTIONS_PERCENT",
    "REVAL_SYNC_WAIT_SECONDS",
    "REVAL_AUTH",
    "REVAL_SECRET_KEY",
    "REVAL_OIDC_ISSUER",
    "REVAL_OIDC_CLIENT_ID",
    "REVAL_OIDC_CLIENT_SECRET",
    "REVAL_OIDC_ROLES_CLAIM",
    "REVAL_OIDC_BODIES_CLAIM",
    "REVAL_SECURE_COOKIES",
    "REVAL_API_ISSUER",
    "REVAL_API_AUDIENCE",
    "REVAL_API_JWKS_URL",
    "REVAL_API_RATE_LIMIT",
    "REVAL_API_RATE_LIMITS",
    "REVAL_RATE_LIMIT_STORAGE_URL",
    "REVAL_MAX_REQUEST_BYTES",
    "REVAL_SESSION_IDLE_MINUTES",
    "REVAL_DEBUG",
)


@dataclass
class Database:
    """The ``init_app`` extension holding the engine.

    ``migrate``: bring the schema up to date on first use (a command on one machine); a web
    server or worker is one of several processes that would race to do it, so it only checks
    and refuses to work on an out-of-date schema (``reval db upgrade`` migrates at deploy)."""

    url: str
    migrate: bool = True
    busy_seconds: float = 30  # how long a writer waits for SQLite's write lock before giving up
    create_folder: bool = False  # the default instance database: its folder is made on first use
    engine: Engine = field(init=False)
    _sessions: sessionmaker[Session] | None = field(default=None, init=False)
    _reads: sessionmaker[Session] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url, busy_seconds=self.busy_seconds, create_folder=self.create_folder)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Transactions that write (on SQLite they take the write lock as they begin)."""
        if self._sessions is None:
            self._ready()
            self._sessions = session_factory(self.engine)
        return self._sessions

    @property
    def reads(self) -> sessionmaker[Session]:
        """Transactions that only read: on SQLite they never wait for a writer (WAL)."""
        if self._reads is None:
            self._ready()
            self._reads = session_factory(read_only(self.engine))
        return self._reads

    def check(self) -> None:
        """Raises now (a one-line NotConfigured or DatabaseUnavailable) if the database cannot be used."""
        self._ready()

    def _ready(self) -> None:
        if self.migrate:
            ensure_schema(self.engine)
        elif not schema_is_current(self.engine):
            raise NotConfigured("the database schema is not up to date; run `reval db upgrade` first")

    def init_app(self, app: Flask) -> None:
        app.extensions["reval.database"] = self


def settings_from_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    return {name: environ[name] for name in SETTINGS if environ.get(name)}


def celery_init_app(app: Flask) -> Celery:
    """Flask's Celery pattern: every task runs inside this app's context."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=app.config["REVAL_BROKER_URL"],
        # The nightly run's chord counts its fetches in the result backend (Redis, like the broker).
        result_backend=app.config.get("REVAL_RESULT_BACKEND") or app.config["REVAL_BROKER_URL"],
        result_expires=timedelta(days=1),
        broker_transport_options=_transport_options(
            number(app.config, "REVAL_BROKER_VISIBILITY_TIMEOUT", 3600, minimum=1)
        ),
        include=["reval.tasks"],
        task_acks_late=True,  # a task is acknowledged once done, so a lost worker's task runs again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        timezone="Europe/London",
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def _transport_options(visibility_timeout: float) -> dict[str, Any]:
    """An unacknowledged task (its worker died) goes back on the queue after ``visibility_timeout``
    seconds; workers look for such tasks every so often (kombu's default is about every 100 s)."""
    return {
        "visibility_timeout": visibility_timeout,
        "unacked_restore_interval": max(1, min(60, int(visibility_timeout / 4))),
        "unacked_restore_throttle": 1,
    }


def broker_configured(app: Flask | None = None) -> bool:
    return "celery" in (app or current_app).extensions


def gmc_client(app: Flask | None = None) -> GmcClient:
    """The app's GMC Connect client, made on first use from the REVAL_GMC_* settings."""
    app = app or current_app
    if "reval.gmc" not in app.extensions:
        settings = GmcSettings.from_environment(app.config)
        if settings is None:
            raise NotConfigured(
                "GMC Connect is not configured: set REVAL_GMC_URL, REVAL_GMC_USERNAME and REVAL_GMC_PASSWORD"
            )
        app.extensions["reval.gmc"] = GmcClient(settings)
    return app.extensions["reval.gmc"]


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["reval.database"]


def tis_client(app: Flask | None = None) -> TisClient:
    """The app's TIS client, made on first use from the REVAL_TIS_* settings."""
    app = app or current_app
    if "reval.tis" not in app.extensions:
        settings = TisSettings.from_environment(app.config)
        if settings is None or not settings.token_url:
            raise NotConfigured(
                "TIS is not configured: set REVAL_TIS_URL, REVAL_TIS_TOKEN_URL, "
                "REVAL_TIS_CLIENT_ID and REVAL_TIS_CLIENT_SECRET"
            )
        app.extensions["reval.tis"] = TisClient(settings)
    return app.extensions["reval.tis"]
