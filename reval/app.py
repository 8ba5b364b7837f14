"""The Flask application factory: configuration and the database, shared by CLI, web and workers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from reval.db import ensure_schema, make_engine, session_factory


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
    app.config.from_mapping(REVAL_DATABASE_URL=os.environ.get("REVAL_DATABASE_URL") or default_url)
    if config:
        app.config.from_mapping(config)
    Database(app.config["REVAL_DATABASE_URL"]).init_app(app)
    return app


def database(app: Flask | None = None) -> Database:
    return (app or current_app).extensions["reval.database"]
