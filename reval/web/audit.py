"""The access audit, for national users: who viewed which doctor or exported which view, with
filters by person, doctor and dates, a page at a time, and the same as CSV."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue

from reval.refusals import Invalid, NotFound
from reval.services.access import checked_gmc_number
from reval.services.audit import (
    AUDIT_FIELDS,
    MAX_ACTOR_LENGTH,
    AuditQuery,
    audit_cells,
    audit_page,
    audit_records,
)
from reval.services.paging import checked_page
from reval.spreadsheets import csv_chunks
from reval.validation import InvalidValue, free_text
from reval.web.auth import signed_in_actor
from reval.web.pages import url_with, web_context
from reval.web.queues import checked_dates, pager, typed_date

blueprint = Blueprint("audit_pages", __name__)

DATES = {"since": "Viewed from", "until": "Viewed to"}
ENTRY_POINTS = {"ui": "Web", "api": "API", "cli": "Command"}


@dataclass(frozen=True)
class AuditAsked:
    """The audit's filters as the address asks for them, and what is wrong with any."""

    actor: str
    doctor: str
    typed: dict[str, tuple[str, str, str]]
    query: AuditQuery
    errors: dict[str, str] = field(default_factory=dict)

    def args(self) -> dict[str, Any]:  # Any: url_for's keywords
        args = {"actor": self.actor, "doctor": self.doctor} | {
            name: value.isoformat() for name in DATES if (value := getattr(self.query, name)) is not None
        }
        return {name: value for name, value in args.items() if value}


def _asked() -> AuditAsked:
    if not signed_in_actor().national:
        raise NotFound("the access audit is for national users")
    errors: dict[str, str] = {}
    actor = (request.args.get("actor") or "").strip()
    doctor = (request.args.get("doctor") or "").strip()
    if not _is_person_name(actor):  # the errors in the order of the form's fields
        errors["actor"] = f"Enter a name of up to {MAX_ACTOR_LENGTH} characters, without tabs or line breaks"
    if doctor and not _is_gmc_number(doctor):
        errors["doctor"] = "Enter a GMC number of 7 digits, like 1234567"
    typed = {name: typed_date(request.args, name) for name in DATES}
    days = checked_dates(typed, errors, DATES, (("since", "until"),))
    query = AuditQuery(
        actor=actor if "actor" not in errors else None,
        gmc_number=doctor if "doctor" not in errors else None,
        since=days["since"],
        until=days["until"],
    )
    return AuditAsked(actor, doctor, typed, query, errors)


@blueprint.get("/audit")
def audit() -> ResponseReturnValue:
    asked = _asked()
    page = audit_page(web_context(), asked.query, checked_page(request.args.get("page") or 1))
    if page.total and page.page > page.pages:
        return redirect(url_with(page=page.pages))  # past the end: the last page
    return render_template(
        "audit/audit.html",
        asked=asked,
        page=page,
        dates=DATES,
        entry_points=ENTRY_POINTS,
        pager=pager(page.page, page.pages),
        download_href=url_for("audit_pages.download", **asked.args()),
    )


@blueprint.get("/audit/download")
def download() -> Response:
    asked = _asked()
    if asked.errors:
        name, error = next(iter(asked.errors.items()))
        raise Invalid(error, field=name)
    records = audit_records(web_context(), asked.query)
    rows = itertools.chain([AUDIT_FIELDS], (audit_cells(record) for record in records))
    return Response(
        stream_with_context(csv_chunks(rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="reval-access-audit.csv"'},
    )


def _is_gmc_number(text: str) -> bool:
    try:
        checked_gmc_number(text)
    except Invalid:
        return False
    return True


def _is_person_name(text: str) -> bool:
    try:
        free_text("actor", text, MAX_ACTOR_LENGTH)
    except InvalidValue:
        return False
    return True
