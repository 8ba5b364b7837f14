"""The browser UI: server-rendered pages in the NHS.UK design system over the same use cases as
the command and the API. Every page works without JavaScript; every query is scoped on the
server to the signed-in person's designated bodies.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

from flask import Blueprint, Flask
from flask_wtf.csrf import CSRFProtect
from jinja2 import ChainableUndefined, ChoiceLoader, FileSystemLoader, PackageLoader

from reval.web import actions, archive, audit, auth, components, doctors, operations, pages, preview, queues, runs

WEB = Path(__file__).parent

# The vendored NHS.UK frontend and Reval's own CSS and JS, served where the CSS expects them.
assets = Blueprint("assets", __name__, static_folder="static", static_url_path="/assets")

csrf = CSRFProtect()


def templates_folder() -> Path:
    """The top-level templates/ of a checkout, or where a built wheel installs them."""
    for folder in (WEB.parent.parent / "templates", Path(sysconfig.get_path("data")) / "share" / "reval" / "templates"):
        if (folder / "layout.html").is_file():
            return folder
    raise RuntimeError("Reval's templates are missing: reinstall the package")


def init_web(app: Flask) -> None:
    # Before the Jinja environment is first made: the NHS.UK macros are .jinja files, which Flask
    # would not autoescape, and they read absent parameters as ChainableUndefined.
    app.jinja_options = {
        **app.jinja_options,
        "autoescape": True,
        "undefined": ChainableUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,  # the macros would otherwise emit pages mostly of blank lines
    }
    app.jinja_loader = ChoiceLoader(
        [
            FileSystemLoader(str(templates_folder())),
            PackageLoader("nhsuk_frontend_jinja"),
            PackageLoader("nhsuk_frontend_jinja", package_path="templates/nhsuk"),
        ]
    )
    operations.init_app(app)
    csrf.init_app(app)
    auth.init_app(app)
    pages.init_app(app)
    components.init_app(app)
    app.register_blueprint(assets)
    for blueprint in (
        auth.blueprint,
        queues.blueprint,
        doctors.blueprint,
        actions.blueprint,
        runs.blueprint,
        preview.blueprint,
        audit.blueprint,
        archive.blueprint,
    ):
        app.register_blueprint(blueprint)
