"""The Flask application factory: configuration and the database, shared by CLI, web and workers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery, Task
from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reval.db import ensure_schema, make_engine, session_factory
from reval.gmc.client import GmcClient, GmcSettings
from reval.tis.client import TisClient, TisSettings

# Settings read from the environment (or given to create_app); see the README.
SETTINGS = (
    "REVAL_DATABASE_URL", "REVAL_BROKER_URL",
    "REVAL_GMC_URL", "REVAL_GMC_USERNAME", "REVAL_GMC_PASSWORD", "REVAL_GMC_CONNECT_TIMEOUT",
    "REVAL_GMC_READ_TIMEOUT", "REVAL_GMC_ATTEMPTS", "REVAL_GMC_BACKOFF_SECONDS",
    "REVAL_DELIVERY_MAX_ATTEMPTS", "REVAL_DELIVERY_BACKOFF_SECONDS",
    "REVAL_TIS_URL", "REVAL_TIS_TOKEN_URL", "REVAL_TIS_CLIENT_ID", "REVAL_TIS_CLIENT_SECRET",
    "REVAL_TIS_CONNECT_TIMEOUT", "REVAL_TIS_READ_TIMEOUT", "REVAL_TIS_ATTEMPTS", "REVAL_TIS_BACKOFF_SECONDS",
    "REVAL_TIS_PAGE_SIZE", "REVAL_TIS_CONCURRENCY",
    "REVAL_RESULT_BACKEND", "REVAL_LOCK_URL", "REVAL_NIGHTLY_LOCK_SECONDS", "REVAL_NIGHTLY_AT", "REVAL_NIGHTLY_RETRIES",
    "REVAL_NIGHTLY_RETRY_MINUTES", "REVAL_DELIVER_EVERY_MINUTES", "REVAL_HIDE_EXPIRY_AT", "REVAL_BROKER_VISIBILITY_TIMEOUT",
    "REVAL_SHARD_SIZE",
)


class NotConfigured(Exception):
    """A service Reval needs for this is not configured; the message names the setting."""


@dataclass
class Database:
    """The ``init_app`` extension holding the engine; the schema is migrated on first use."""

    url: str
    engine: Engine = field(init=False)
    _sessions: sessionmaker[Session] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            ensure_schema(self.engine)
            self._sessions = session_factory(self.engine)
        return self._sessions

    def init_app(self, app: Flask) -> None:
        app.extensions["reval.database"] = self


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask("reval", instance_relative_config=True, root_path=str(Path(__file__).parent))
    app.template_folder = str(Path(__file__).parent.parent / "templates")
    default_url = f"sqlite:///{Path(app.instance_path) / 'reval.sqlite'}"
    app.config.from_mapping({name: os.environ[name] for name in SETTINGS if os.environ.get(name)})
    app.config.setdefault("REVAL_DATABASE_URL", default_url)
    if config:
        app.config.from_mapping(config)
    Database(app.config["REVAL_DATABASE_URL"]).init_app(app)
    if app.config.get("REVAL_BROKER_URL"):
        celery_init_app(app)
    return app


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
        broker_transport_options=_transport_options(float(app.config.get("REVAL_BROKER_VISIBILITY_TIMEOUT") or 3600)),
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
            raise NotConfigured("GMC Connect is not configured: set REVAL_GMC_URL, REVAL_GMC_USERNAME and REVAL_GMC_PASSWORD")
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
                "TIS is not configured: set REVAL_TIS_URL, REVAL_TIS_TOKEN_URL, REVAL_TIS_CLIENT_ID and REVAL_TIS_CLIENT_SECRET"
            )
        app.extensions["reval.tis"] = TisClient(settings)
    return app.extensions["reval.tis"]
