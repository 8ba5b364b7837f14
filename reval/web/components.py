"""NHS.UK frontend components, each rendered once per set of parameters.

The design system's macros are general, and general Jinja is slow: a queue page's filter form
(inputs, selects and six date inputs) took most of the page's time to render, though nearly
every request asks for the same empty form. A component's HTML depends only on its parameters,
so it is kept by them.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from flask import Flask
from jinja2 import Environment
from markupsafe import Markup

MACROS = {
    "button": "nhsuk/components/button/macro.jinja",
    "checkboxes": "nhsuk/components/checkboxes/macro.jinja",
    "dateInput": "nhsuk/components/date-input/macro.jinja",
    "footer": "nhsuk/components/footer/macro.jinja",
    "header": "nhsuk/components/header/macro.jinja",
    "input": "nhsuk/components/input/macro.jinja",
    "select": "nhsuk/components/select/macro.jinja",
    "skipLink": "nhsuk/components/skip-link/macro.jinja",
}
KEPT = 4096  # components' HTML kept per process: a few hundred bytes each


def init_app(app: Flask) -> None:
    environment = app.jinja_env
    app.jinja_env.globals["component"] = lambda name, params: component(environment, name, params)


def component(environment: Environment, name: str, params: dict[str, Any]) -> Markup:
    """The macro ``name``'s HTML for ``params`` (plain text, numbers, lists and mappings)."""
    return _rendered(environment, name, json.dumps(params, sort_keys=True))


@functools.lru_cache(maxsize=KEPT)
def _rendered(environment: Environment, name: str, params: str) -> Markup:
    macro = getattr(environment.get_template(MACROS[name]).module, name)
    return Markup(macro(json.loads(params)))
