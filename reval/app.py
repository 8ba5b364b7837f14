"""The Flask application factory: one app for the command, the web server and the workers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask.logging import default_handler
from werkzeug.exceptions import RequestEntityTooLarge

from reval import metrics
from reval.api import API_PREFIX, error_problem, init_api, under
from reval.api.fhir import FHIR_PREFIX, fhir_error
from reval.extensions import Database, celery_init_app, init_settings
from reval.logs import configure_logging
from reval.settings import Settings, environment_settings
from reval.web import csrf, init_web
from reval.web.errors import error_page

PACKAGE = Path(__file__).parent


def create_app(config: dict[str, Any] | None = None, *, migrate: bool = True) -> Flask:
    """``config`` overrides the settings read from the environment; every setting is read and
    checked here, once (NotConfigured names a bad one). ``migrate``: bring the schema up to date
    on first use (a command); a server or worker only checks it."""
    config = {**environment_settings(), **(config or {})}
    configured = Settings.from_mapping(config)
    app = Flask(
        "reval",
        instance_relative_config=True,
        root_path=str(PACKAGE),
        instance_path=str(Path(configured.instance_path).resolve()) if configured.instance_path else None,
    )
    app.config.from_mapping(config)
    # Every request's body, web or API: larger ones answer 413 before they are read.
    app.config["MAX_CONTENT_LENGTH"] = configured.max_request_bytes
    app.before_request(_refuse_large_body)
    default_database = "REVAL_DATABASE_URL" not in app.config
    app.config.setdefault("REVAL_DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'reval.sqlite'}")
    init_settings(app, replace(configured, database_url=app.config["REVAL_DATABASE_URL"]))
    configure_logging(configured.log_format)
    if configured.log_format == "json":
        app.logger.removeHandler(default_handler)  # the root logger's JSON handler writes its lines
    metrics_folder = Path(configured.metrics_dir) if configured.metrics_dir else Path(app.instance_path) / "metrics"
    metrics.use_folder(metrics_folder)
    Database(
        app.config["REVAL_DATABASE_URL"],
        migrate=migrate,
        busy_seconds=configured.db_busy_seconds,
        create_folder=default_database,
    ).init_app(app)
    if configured.broker_url:
        celery_init_app(app)
    init_web(app)
    init_api(app, csrf)
    app.register_error_handler(Exception, _error_response)
    return app


def _refuse_large_body() -> None:
    """Refuses a body declared larger than the limit even where nothing would read it."""
    if (request.content_length or 0) > (request.max_content_length or 0) > 0:
        raise RequestEntityTooLarge()


def _error_response(error: Exception):
    """A problem document under the API's address, an OperationOutcome under FHIR's, a page elsewhere."""
    if under(API_PREFIX, request.path):
        return error_problem(error)
    if under(FHIR_PREFIX, request.path):
        return fhir_error(error)
    return error_page(error)
