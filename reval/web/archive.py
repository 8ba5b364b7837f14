"""The archive (national users): doctors nobody holds any more, with their last queue, out of
every queue and count; their records and history are kept, and the next sync that finds them
in a source restores them."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from reval.services.access import require_national
from reval.services.paging import checked_page
from reval.services.queues import DEFAULT_PAGE_SIZE, QueueView, queue_page
from reval.web.auth import signed_in_actor
from reval.web.pages import web_context
from reval.web.queues import pager

blueprint = Blueprint("archive_pages", __name__)


@blueprint.get("/archive")
def archive() -> str:
    require_national(signed_in_actor(), "see the archived doctors")
    page = queue_page(
        web_context(), QueueView(archived=True), checked_page(request.args.get("page") or 1), DEFAULT_PAGE_SIZE
    )
    return render_template("archive/archive.html", page=page, pager=pager(page.page, page.pages))
