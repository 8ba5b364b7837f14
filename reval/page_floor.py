"""The page floor of ``reval bench --pages``: a plain Flask page on the same server stack as
`reval serve`, counting an indexed SQLite table and reading 20 of its rows by OFFSET into an
HTML table. Run as ``python -m reval.page_floor FILE PORT WORKERS``."""

from __future__ import annotations

import sqlite3
import sys
import threading
from pathlib import Path

from flask import Flask, render_template_string, request

from reval.serving import serve_wsgi

PAGE_SIZE = 20
THREADS = 8  # as `reval serve`'s default
PAGE = """<!doctype html><html lang="en"><head><title>Floor</title></head><body><main>
<h1>{{ count }} doctors</h1><table>
<thead><tr><th>GMC number</th><th>Name</th><th>Reason</th><th>Changed</th></tr></thead>
<tbody>{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table></main></body></html>"""


def floor_app(path: Path) -> Flask:
    app = Flask("reval_page_floor")
    local = threading.local()  # a connection per thread, as a pool would give

    def connection() -> sqlite3.Connection:
        if getattr(local, "connection", None) is None:
            local.connection = sqlite3.connect(path, check_same_thread=False)
        return local.connection

    @app.get("/")
    def index() -> str:
        return "floor"

    @app.get("/floor")
    def floor() -> str:
        page = max(1, request.args.get("page", 1, type=int) or 1)
        database = connection()
        count = database.execute("SELECT count(*) FROM floor_doctor WHERE queue = 'DISCREPANCY'").fetchone()[0]
        rows = database.execute(
            "SELECT gmc_number, name, reason, changed FROM floor_doctor WHERE queue = 'DISCREPANCY'"
            " ORDER BY name LIMIT ? OFFSET ?",
            (PAGE_SIZE, (page - 1) * PAGE_SIZE),
        ).fetchall()
        return render_template_string(PAGE, count=count, rows=rows)

    return app


def main(arguments: list[str]) -> None:
    path, port, workers = Path(arguments[0]), int(arguments[1]), int(arguments[2])
    # Connections are opened per thread after the fork, so nothing needs letting go there.
    serve_wsgi(floor_app(path), "127.0.0.1", port, workers=workers, threads=THREADS)


if __name__ == "__main__":
    main(sys.argv[1:])
