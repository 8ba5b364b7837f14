"""What every entry point's Flask app holds: its settings (read once), the database, Celery and
the clients of GMC and TIS, each made on first use. ``reval.app`` builds the app; this module
only equips it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Celery, Task, signals
from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reval import logs
from reval.db import ensure_schema, make_engine, read_only, schema_is_current, session_factory
from reval.gmc.client import GmcClient, GmcSettings
from reval.refusals import NotConfigured
from reval.settings import SETTINGS, Settings
from reval.tis.client import TisClient, TisSettings


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


def init_settings(app: Flask, configured: Settings) -> None:
    """Gives the app its settings, read and checked once, as it is made."""
    app.extensions["reval.settings"] = (_setting_values(app), configured)


def settings(app: Flask | None = None) -> Settings:
    """The app's settings. Read again only if its config has changed since they were read (tests
    change it); a bad value then raises NotConfigured here."""
    app = app or current_app
    values = _setting_values(app)
    held = app.extensions.get("reval.settings")
    if held is None or held[0] != values:
        held = app.extensions["reval.settings"] = (values, Settings.from_mapping(app.config))
    return held[1]


def _setting_values(app: Flask) -> tuple[Any, ...]:
    return tuple(app.config.get(name) for name in SETTINGS)


def celery_init_app(app: Flask) -> Celery:
    """Flask's Celery pattern: every task runs inside this app's context."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    configured = settings(app)
    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=configured.broker_url,
        # The nightly run's chord counts its fetches in the result backend (Redis, like the broker).
        result_backend=configured.result_backend or configured.broker_url,
        result_expires=timedelta(days=1),
        broker_transport_options=_transport_options(configured.broker_visibility_timeout),
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
    _carry_request_ids()
    if configured.log_format == "json":
        # Any receiver of setup_logging stops Celery from replacing the root logger's handlers.
        signals.setup_logging.connect(_keep_json_logs, weak=False, dispatch_uid="reval.logs")
    return celery_app


REQUEST_ID_TASK_HEADER = "reval_request_id"


def _carry_request_ids() -> None:
    """A task sent while serving a request (or a task that a task sent) logs that request's id."""
    signals.before_task_publish.connect(_add_request_id, weak=False, dispatch_uid="reval.request_id.out")
    signals.task_prerun.connect(_take_request_id, weak=False, dispatch_uid="reval.request_id.in")


def _add_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = logs.request_id.get()
    if headers is not None and request_id:
        headers[REQUEST_ID_TASK_HEADER] = request_id


def _take_request_id(task: Task | None = None, **_: Any) -> None:
    carried = getattr(task.request, REQUEST_ID_TASK_HEADER, None) if task is not None else None
    # Each task starts afresh: a worker runs many tasks in one context.
    logs.request_id.set(carried if isinstance(carried, str) and logs.REQUEST_ID.fullmatch(carried) else None)


def _keep_json_logs(**_: Any) -> None:
    logs.configure_logging("json")


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
        gmc = GmcSettings.from_settings(settings(app))
        if gmc is None:
            raise NotConfigured(
                "GMC Connect is not configured: set REVAL_GMC_URL, REVAL_GMC_USERNAME and REVAL_GMC_PASSWORD"
            )
        app.extensions["reval.gmc"] = GmcClient(gmc)
    return app.extensions["reval.gmc"]


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["reval.database"]


def tis_client(app: Flask | None = None) -> TisClient:
    """The app's TIS client, made on first use from the REVAL_TIS_* settings."""
    app = app or current_app
    if "reval.tis" not in app.extensions:
        tis = TisSettings.from_settings(settings(app))
        if tis is None or not tis.token_url:
            raise NotConfigured(
                "TIS is not configured: set REVAL_TIS_URL, REVAL_TIS_TOKEN_URL, "
                "REVAL_TIS_CLIENT_ID and REVAL_TIS_CLIENT_SECRET"
            )
        app.extensions["reval.tis"] = TisClient(tis)
    return app.extensions["reval.tis"]
