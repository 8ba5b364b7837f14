"""Previewing the rules: who the next sync would move, by from → to and body, and each group's doctors."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue

from reval.clock import EARLIEST_AS_OF, latest_as_of
from reval.refusals import Invalid
from reval.services.paging import Page, checked_page
from reval.services.preview import (
    NO_BODY,
    GroupAsked,
    PreviewDoctor,
    RulePreview,
    move_groups,
    preview_group,
    preview_rules,
    require_previewer,
)
from reval.spreadsheets import SafeCsvWriter
from reval.web.pages import body_label_of, url_with, web_context
from reval.web.presenters import date_error, format_day
from reval.web.queues import pager, typed_date

blueprint = Blueprint("preview_pages", __name__)
PAGE_SIZE = 20


def _sort_name(doctor: PreviewDoctor) -> tuple[str, str]:
    return ((doctor.last_name or "").casefold(), (doctor.first_name or "").casefold())


SORT_CHOICES = (
    ("gmc", "asc", "GMC number, lowest first"),
    ("gmc", "desc", "GMC number, highest first"),
    ("name", "asc", "Name, A to Z"),
    ("name", "desc", "Name, Z to A"),
)
SORTS = {"gmc": lambda doctor: doctor.move.gmc_number, "name": _sort_name}


@dataclass(frozen=True)
class DayAsked:
    """The as-of date as typed (day, month, year), the day it is, or what is wrong with it."""

    typed: tuple[str, str, str]
    day: date | None
    error: str | None


def _asked_day() -> DayAsked:
    context = web_context()
    typed = typed_date(request.args, "as_of")
    if not any(typed):
        return DayAsked(typed, context.today(), None)
    error = date_error(typed, "The date to decide as of")
    if error:
        return DayAsked(typed, None, error)
    day = date(int(typed[2]), int(typed[1]), int(typed[0]))
    latest = latest_as_of(context.today())
    if not EARLIEST_AS_OF <= day <= latest:
        return DayAsked(typed, None, f"Enter a date from {format_day(EARLIEST_AS_OF)} to {format_day(latest)}")
    return DayAsked(typed, day, None)


@blueprint.get("/rules/preview")
def preview() -> ResponseReturnValue:
    context = web_context()
    require_previewer(context)
    asked = _asked_day()
    if asked.day is None:
        return render_template("rules/preview.html", asked=asked, preview=None, groups=[]), 400
    found = preview_rules(context, asked.day)
    groups = [
        (group, body_label_of(group.designated_body) or "No designated body")
        for group in move_groups(context, found.moves)
    ]
    return render_template("rules/preview.html", asked=asked, preview=found, groups=groups)


def _group_asked(args: Mapping[str, str]) -> GroupAsked:
    return GroupAsked(
        from_queue=args.get("from_queue", "").strip(),
        from_reason=args.get("from_reason", "").strip(),
        to_queue=args.get("to_queue", "").strip(),
        to_reason=args.get("to_reason", "").strip(),
        designated_body=args.get("body", NO_BODY).strip(),
    )


def _sorted_doctors(doctors: list[PreviewDoctor]) -> tuple[list[PreviewDoctor], str, bool]:
    sort = request.args.get("sort", "gmc")
    if sort not in SORTS:
        raise Invalid(f"sort {sort!r} is not one of {', '.join(SORTS)}", field="sort")
    descending = request.args.get("order") == "desc"
    return sorted(doctors, key=SORTS[sort], reverse=descending), sort, descending


@dataclass(frozen=True)
class GroupShown:
    """A group's doctors as asked: the day, the preview, the group, its doctors in the order asked."""

    asked: DayAsked
    preview: RulePreview
    group: GroupAsked
    doctors: list[PreviewDoctor]
    sort: str
    descending: bool


def _group_shown() -> GroupShown:
    context = web_context()
    require_previewer(context)
    asked = _asked_day()
    if asked.day is None:
        raise Invalid(asked.error or "", field="as_of")
    group = _group_asked(request.args)
    found, members = preview_group(context, asked.day, group)
    members, sort, descending = _sorted_doctors(members)
    return GroupShown(asked, found, group, members, sort, descending)


def _sort_links(shown: GroupShown) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The headers' sort links, and the same sorts as links above the table (on a phone the
    responsive table shows no headers)."""
    order = "desc" if shown.descending else "asc"
    head = [
        {
            "text": label,
            "sort": ("descending" if shown.descending else "ascending") if key == shown.sort else "none",
            "href": url_with(
                sort=key, order="desc" if key == shown.sort and not shown.descending else "asc", page=None
            ),
        }
        for key, label in (("gmc", "GMC number"), ("name", "Name"))
    ]
    choices = [
        {"text": text, "href": url_with(sort=key, order=way, page=None), "current": (key, way) == (shown.sort, order)}
        for key, way, text in SORT_CHOICES
    ]
    return head, choices


@blueprint.get("/rules/preview/doctors")
def doctors() -> ResponseReturnValue:
    shown = _group_shown()
    page = checked_page(request.args.get("page") or 1)
    numbers: Page[object] = Page([], len(shown.doctors), page, PAGE_SIZE)
    head, sorts = _sort_links(shown)
    return render_template(
        "rules/preview_doctors.html",
        asked=shown.asked,
        preview=shown.preview,
        group=shown.group,
        body=body_label_of(shown.group.designated_body) or "No designated body",
        doctors=shown.doctors[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
        total=len(shown.doctors),
        numbers=numbers,
        pager=pager(numbers.page, numbers.pages),
        head=head,
        sorts=sorts,
        download=url_with(page=None).replace("/rules/preview/doctors", "/rules/preview/doctors/download", 1),
    )


@blueprint.get("/rules/preview/doctors/download")
def download() -> Response:
    """A group's doctors as CSV, in the order asked."""
    shown = _group_shown()
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)
    writer.writerow(
        (
            "GMC number",
            "First name",
            "Last name",
            "From queue",
            "From reason",
            "To queue",
            "To reason",
            "Designated bodies",
        )
    )
    for doctor in shown.doctors:
        move = doctor.move
        writer.writerow(
            (
                move.gmc_number,
                doctor.first_name,
                doctor.last_name,
                move.from_queue,
                move.from_reason,
                move.to_queue,
                move.to_reason,
                " ".join(move.designated_bodies),
            )
        )
    filename = f"reval-preview-{shown.preview.as_of.isoformat()}.csv"
    return Response(
        buffer.getvalue(), mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
