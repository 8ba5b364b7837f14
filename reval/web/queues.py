"""A designated body's queues: one tab each, searched, filtered, sorted and paged in the address,
and the whole view as CSV."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, redirect, render_template, request, stream_with_context, url_for
from flask.typing import ResponseReturnValue

from reval.designated_bodies import DesignatedBody, find_designated_body
from reval.refusals import Invalid, NotFound
from reval.rules import DEFAULT_RULE_TABLE, Ready
from reval.services.actions import standing_failures
from reval.services.audit import View
from reval.services.hides import active_hides
from reval.services.paging import checked_page
from reval.services.queues import (
    DEFAULT_PAGE_SIZE,
    QueueEntry,
    QueueFilters,
    QueueTab,
    QueueView,
    SortKey,
    descending,
    discrepancy_counts,
    exported_entries,
    programme_names,
    queue_counts,
    queue_page,
    queue_tab,
    sort_key,
)
from reval.spreadsheets import csv_chunks
from reval.web.auth import signed_in_actor
from reval.web.pages import configured_bodies, my_bodies, url_with, web_context
from reval.web.presenters import date_error, range_error

blueprint = Blueprint("queues", __name__)

TAB_LABELS = {
    QueueTab.CONNECTED: "Connected",
    QueueTab.DISCREPANCIES: "Discrepancies",
    QueueTab.HIDDEN: "Hidden",
    QueueTab.HISTORIC: "Historic",
    QueueTab.FAILED_UPDATES: "Failed GMC updates",
    QueueTab.UNASSIGNED: "Unassigned",
}
# What an admin can do with the ticked doctors of each tab: only what applies there.
TAB_ACTIONS: dict[QueueTab, tuple[str, ...]] = {
    QueueTab.CONNECTED: ("hide", "disconnect"),
    QueueTab.DISCREPANCIES: ("hide", "connect", "disconnect"),
    QueueTab.HIDDEN: ("unhide",),
    QueueTab.HISTORIC: ("hide", "connect"),
    QueueTab.FAILED_UPDATES: ("resend", "hide", "connect", "disconnect"),
    QueueTab.UNASSIGNED: ("hide", "connect"),
}
# Each column and the order its header sorts by (None: not sortable, to keep every column on
# screen at 1280 px; the API sorts by those too).
COLUMNS: tuple[tuple[SortKey | None, str], ...] = (
    (SortKey.NAME, "Name"),
    (SortKey.GMC_NUMBER, "GMC number"),
    (SortKey.DESIGNATED_BODY, "GMC designated body"),
    (SortKey.PROGRAMME_OWNER, "Programme owner"),
    (SortKey.PROGRAMME, "Programme"),
    (None, "Membership type"),
    (SortKey.START, "Start"),
    (SortKey.END, "End"),
    (SortKey.SUBMISSION_DATE, "GMC submission date"),
    (SortKey.REASON, "Reason"),
    (SortKey.CHANGED, "Last change"),
    (None, "Last changed by"),
)
# The date ranges a queue can be filtered by: each end as its address names it, and as people read it.
DATE_FILTERS = {
    "submitted_from": "GMC submission date from",
    "submitted_to": "GMC submission date to",
    "ended_from": "Programme end date from",
    "ended_to": "Programme end date to",
    "changed_from": "Last change from",
    "changed_to": "Last change to",
}
DATE_RANGES = (("submitted_from", "submitted_to"), ("ended_from", "ended_to"), ("changed_from", "changed_to"))
READY_LABELS = {Ready.CONNECT: "Ready for connection", Ready.DISCONNECT: "Ready for disconnection"}


@dataclass(frozen=True)
class ViewAsked:
    """A queue view as its address asks for it."""

    tab: QueueTab
    body: DesignatedBody
    filters: QueueFilters
    sort: SortKey
    descending: bool
    errors: dict[str, str] = field(default_factory=dict)  # a filter's name: what is wrong with it
    typed: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # each date as typed

    @property
    def dates_typed(self) -> bool:
        return any(any(parts) for parts in self.typed.values())

    def filter_args(self) -> dict[str, str]:
        """The search and filters as the address names them (dates as 2027-02-01), to carry into links."""
        filters = self.filters
        args = {
            "q": filters.q,
            "reason": filters.reason,
            "owner": filters.owner,
            "failed": "yes" if filters.gmc_update_failed else None,
            "ready": filters.ready.value if filters.ready else None,
            "programme": filters.programme,
            "changed_by": filters.changed_by,
        } | {name: getattr(filters, name).isoformat() if getattr(filters, name) else None for name in DATE_FILTERS}
        return {name: value for name, value in args.items() if value}

    def view(self) -> QueueView:
        return QueueView.of_tab(
            self.tab, self.body.code, filters=self.filters, sort=self.sort, descending=self.descending
        )


def _asked(queue: str) -> ViewAsked:
    try:
        tab = queue_tab(queue)
    except Invalid:
        abort(404)
    if tab is QueueTab.UNASSIGNED and not signed_in_actor().national:
        raise NotFound("the Unassigned queue is for national users")
    bodies = my_bodies()
    if not bodies:
        raise NotFound("you have no designated bodies in Reval; ask your revalidation team to add yours")
    chosen = next((b for b in bodies if b.code in signed_in_actor().designated_bodies), bodies[0])  # at sign-in
    body = find_designated_body(bodies, request.args.get("body") or chosen.code)
    if body is None:
        raise NotFound(f"designated body {request.args.get('body')!r} is not one of yours")
    errors: dict[str, str] = {}
    typed = {name: typed_date(request.args, name) for name in DATE_FILTERS}
    dates = checked_dates(typed, errors)
    filters = QueueFilters(
        q=request.args.get("q"),
        reason=request.args.get("reason"),
        owner=request.args.get("owner"),
        gmc_update_failed=True if request.args.get("failed") == "yes" else None,
        ready=_ready(request.args.get("ready")),
        programme=request.args.get("programme"),
        changed_by=request.args.get("changed_by"),
        **dates,
    )
    return ViewAsked(
        tab, body, filters, sort_key(request.args.get("sort")), descending(request.args.get("order")), errors, typed
    )


def _ready(text: str | None) -> Ready | None:
    try:
        return Ready(text.strip().lower()) if text and text.strip() else None
    except ValueError:
        raise Invalid(f"ready {text!r} is not one of {', '.join(Ready)}", field="ready") from None


def typed_date(args: Mapping[str, str], name: str) -> tuple[str, str, str]:
    """A date filter as typed: its date input's three fields, or else the address's 2027-02-01."""
    parts = tuple((args.get(f"{name}[{part}]") or "").strip() for part in ("day", "month", "year"))
    if any(parts):
        return parts[0], parts[1], parts[2]
    whole = (args.get(name) or "").strip()
    if not whole:
        return "", "", ""
    year, _, rest = whole.partition("-")
    month, _, day = rest.partition("-")
    return day or "?", month or "?", year or "?"  # "?": an address that is no date reads as one


def checked_dates(
    typed: dict[str, tuple[str, str, str]],
    errors: dict[str, str],
    labels: Mapping[str, str] = DATE_FILTERS,
    ranges: Sequence[tuple[str, str]] = DATE_RANGES,
) -> dict[str, date | None]:
    """Each date filter, or None where it is empty or wrong (and then what is wrong, in ``errors``)."""
    dates: dict[str, date | None] = {}
    for name, subject in labels.items():
        day, month, year = typed[name]
        error = date_error(typed[name], subject) if any(typed[name]) else None
        if error:
            errors[name] = error
        dates[name] = date(int(year), int(month), int(day)) if any(typed[name]) and not error else None
    for start, end in ranges:
        first, last = dates[start], dates[end]
        if first is not None and last is not None and last < first:
            errors[end] = range_error(labels[end], first)
            dates[end] = None
    return dates


@blueprint.get("/queues/<queue>")
def queue(queue: str) -> ResponseReturnValue:
    asked = _asked(queue)
    context = web_context()
    counted = queue_counts(context, asked.body.code, asked.filters)
    counts = counted.tabs
    page_asked = checked_page(request.args.get("page") or 1)
    page = queue_page(context, asked.view(), page_asked, DEFAULT_PAGE_SIZE, total=counts.get(asked.tab))
    ready = counted.ready if asked.tab is QueueTab.DISCREPANCIES else {}
    if page.total and page.page > page.pages:
        return redirect(url_with(page=page.pages))  # past the end: the last page, not an empty table
    numbers = [entry.gmc_number for entry in page.items]
    hides = active_hides(context, asked.body.code, numbers) if asked.tab is QueueTab.HIDDEN else {}
    failures = standing_failures(context, asked.body.code, numbers) if asked.tab is QueueTab.FAILED_UPDATES else {}
    return render_template(
        "queues/queue.html",
        asked=asked,
        page=page,
        counts=counts,
        ready_links=[
            (label, ready[kind], url_with(ready=kind.value, page=None), kind is asked.filters.ready)
            for kind, label in READY_LABELS.items()
            if kind in ready
        ],
        filter_args=asked.filter_args(),
        programmes=programme_names(context, asked.body.code),
        date_filters=DATE_FILTERS,
        failures=failures,
        hides=hides,
        actions=TAB_ACTIONS[asked.tab],
        tabs=[(tab, TAB_LABELS[tab]) for tab in counts],
        tab_label=TAB_LABELS[asked.tab],
        columns=COLUMNS,
        head=_sortable_head(asked),
        pager=pager(page.page, page.pages),
        switcher=_body_switcher(asked),
        bodies=my_bodies(),
        owners=configured_bodies(),
        reasons=DEFAULT_RULE_TABLE.reasons(),
        download_href=url_for("queues.download", queue=asked.tab.value, **_args_but_page()),
    )


def _body_switcher(asked: ViewAsked) -> list[dict[str, Any]]:
    """For an admin or viewer of several bodies: each of their bodies, with its Discrepancies
    count, as one click to that body's Discrepancies (empty for one body, or a national user,
    who chooses among every body in the search form)."""
    actor = signed_in_actor()
    mine = [body for body in my_bodies() if body.code in actor.designated_bodies]
    if actor.national or len(mine) <= 1:
        return []
    counts = discrepancy_counts(web_context(), [body.code for body in mine])
    return [
        {
            "body": body,
            "count": counts.get(body.code, 0),
            "href": url_for("queues.queue", queue=QueueTab.DISCREPANCIES.value, body=body.code),
            "current": body.code == asked.body.code,
        }
        for body in mine
    ]


def _args_but_page() -> dict[str, Any]:
    """This page's query parameters, but its page number (typed Any: url_for's keywords)."""
    return {key: value for key, value in request.args.items() if key != "page"}


def _sortable_head(asked: ViewAsked) -> list[dict[str, str]]:
    """Each column's header: a link to sort by it (the other way when it is the sort already)."""
    head = []
    for key, label in COLUMNS:
        if key is None:
            head.append({"key": label.lower().replace(" ", "-"), "text": label, "sort": "", "href": ""})
            continue
        current = key is asked.sort
        order = "asc" if not current or asked.descending else "desc"
        head.append(
            {
                "key": key.value,
                "text": label,
                "sort": ("descending" if asked.descending else "ascending") if current else "none",
                "href": url_with(sort=key.value, order=order, page=None),
            }
        )
    return head


def pager(current: int, pages: int) -> dict[str, Any]:
    """The pagination component's parameters: first, last and neighbours, with ellipses."""
    numbers = sorted({1, pages, current - 1, current, current + 1} & set(range(1, pages + 1)))
    items: list[dict[str, Any]] = []
    previous = 0
    for number in numbers:
        if number - previous > 1:
            items.append({"ellipsis": True})
        items.append({"number": number, "href": url_with(page=number), "current": number == current})
        previous = number
    return {
        "previous": {"href": url_with(page=current - 1)} if current > 1 else None,
        "next": {"href": url_with(page=current + 1)} if current < pages else None,
        "items": items if pages > 1 else [],
    }


CSV_HEADER = (
    "GMC number",
    "First name",
    "Last name",
    "GMC designated body",
    "Programme owners",
    "Programme",
    "Programme start",
    "Programme end",
    "GMC submission date",
    "Queue",
    "Reason code",
    "Reason",
    "Last change",
    "GMC update failed",
    "Hidden for",
    "Programme membership type",
    "Last changed by",
)


@blueprint.get("/queues/<queue>/download")
def download(queue: str) -> Response:
    """The whole view (every page, its search and filters) as CSV, streamed."""
    asked = _asked(queue)
    if asked.errors:  # the page says what is wrong; a CSV of a wider view than asked would mislead
        name, error = next(iter(asked.errors.items()))
        raise Invalid(error, field=name)
    entries = exported_entries(web_context(), asked.view(), View.QUEUE_CSV)  # recorded in the access audit
    first = next(entries, None)  # any refusal comes now, before the response starts
    filename = f"reval-{asked.body.code}-{asked.tab.value}.csv"
    return Response(
        stream_with_context(_csv_lines(first, entries)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _csv_lines(first: QueueEntry | None, rest: Iterator[QueueEntry]) -> Iterator[str]:
    entries = rest if first is None else _chain(first, rest)
    return csv_chunks(itertools.chain([CSV_HEADER], (_csv_row(entry) for entry in entries)))


def _chain(first: QueueEntry, rest: Iterator[QueueEntry]) -> Iterator[QueueEntry]:
    yield first
    yield from rest


def _csv_row(entry: QueueEntry) -> list[str | None]:  # None: an empty cell
    def day(value: date | None) -> str:
        return value.isoformat() if value else ""

    return [
        entry.gmc_number,
        entry.first_name,
        entry.last_name,
        entry.designated_body or "",
        " ".join(entry.programme_owners),
        entry.programme_name,
        day(entry.programme_start),
        day(entry.programme_end),
        day(entry.submission_date),
        entry.queue,
        entry.reason,
        entry.reason_label,
        day(entry.changed),
        "yes" if entry.gmc_update_failed else "no",
        " ".join(entry.hidden_for),
        entry.programme_membership_type,
        entry.last_changed_by,
    ]
