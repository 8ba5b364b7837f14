"""The Flask application factory: one app for the command, the web server and the workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from reval.extensions import Database, celery_init_app, settings_from_environment

PACKAGE = Path(__file__).parent


def create_app(config: dict[str, Any] | None = None, *, migrate: bool = True) -> Flask:
    """``config`` overrides the settings read from the environment. ``migrate``: bring the
    schema up to date on first use (a command); a server or worker only checks it."""
    app = Flask("reval", instance_relative_config=True, root_path=str(PACKAGE))
    app.config.from_mapping(settings_from_environment())
    app.config.setdefault("REVAL_DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'reval.sqlite'}")
    if config:
        app.config.from_mapping(config)
    Database(app.config["REVAL_DATABASE_URL"], migrate=migrate).init_app(app)
    if app.config.get("REVAL_BROKER_URL"):
        celery_init_app(app)
    return app
