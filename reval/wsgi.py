"""The web server's entry point for a WSGI server of your choice (``gunicorn reval.wsgi:app``).

It refuses to start when nobody could sign in or the schema is behind (run `reval db upgrade`
at deploy: several server processes must never race to migrate it).
"""

from reval.app import create_app
from reval.extensions import database
from reval.web.auth import require_web_settings

app = create_app(migrate=False)
require_web_settings(app)
database(app).sessions  # noqa: B018  (checks the schema now, not at the first request)
