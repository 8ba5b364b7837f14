"""A designated body's queues: paged, sorted, filtered and counted in the database, never by
reading every doctor.

What a body sees of a doctor (the queue and reason, its own admins' hides applied) is written
with each decision into ``doctor_visibility`` (see ``reval.reconcile.decisions.BodyViews``);
every view here reads it from there: the web's tabs, the API's pages, ``reval export``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Row,
    Select,
    Table,
    TextClause,
    and_,
    case,
    func,
    literal,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from reval.designated_bodies import find_designated_body
from reval.models import DesignatedBodyRecord, Doctor, DoctorHide, DoctorVisibility, DoctorVisibilityName
from reval.reconcile.connections import failed_update_numbers, failed_update_numbers_query
from reval.reconcile.decisions import NAME_KEY_LENGTH
from reval.reconcile.reference import configured_designated_bodies
from reval.reconcile.views_version import views_token
from reval.refusals import Invalid
from reval.rules import DEFAULT_RULE_TABLE, HIDDEN_BY_ADMIN, SHOULD_NOT_BE_CONNECTED, Queue, Ready
from reval.services.access import require_national, visible_bodies, visible_body
from reval.services.audit import View, record_export
from reval.services.context import Context
from reval.services.paging import Page, checked_page, whole_number


class QueueTab(StrEnum):
    """The views a person works, as their addresses name them."""

    CONNECTED = "connected"
    DISCREPANCIES = "discrepancies"
    HIDDEN = "hidden"
    HISTORIC = "historic"
    FAILED_UPDATES = "failed-updates"  # doctors whose last GMC request for a body failed
    UNASSIGNED = "unassigned"  # doctors no configured body sees (national users only)


TAB_QUEUES = {
    QueueTab.CONNECTED: Queue.CONNECTED,
    QueueTab.DISCREPANCIES: Queue.DISCREPANCY,
    QueueTab.HIDDEN: Queue.HIDDEN,
    QueueTab.HISTORIC: Queue.HISTORIC,
}


MAX_PERSON_NAME_LENGTH = 200


class SortKey(StrEnum):
    NAME = "name"
    GMC_NUMBER = "gmc_number"
    DESIGNATED_BODY = "designated_body"
    PROGRAMME_OWNER = "programme_owner"
    PROGRAMME = "programme"
    START = "start"
    END = "end"
    SUBMISSION_DATE = "submission_date"
    REASON = "reason"
    CHANGED = "changed"
    MEMBERSHIP_TYPE = "membership_type"
    CHANGED_BY = "changed_by"


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500
MAX_SEARCH_LENGTH = 100
GMC_NUMBER_DIGITS = 7


@dataclass(frozen=True)
class QueueFilters:
    q: str | None = None  # a prefix of the GMC number, or of a first or last name
    reason: str | None = None  # a reason code
    owner: str | None = None  # a designated body code among the programme owners
    gmc_update_failed: bool | None = None  # only doctors flagged "GMC update failed" (True), or unflagged (False)
    ready: Ready | None = None
    programme: str | None = None  # a programme name, as the queues show it (any case)
    submitted_from: date | None = None  # GMC submission date, inclusive range
    submitted_to: date | None = None
    ended_from: date | None = None  # the shown programme membership's end date
    ended_to: date | None = None
    changed_from: date | None = None  # "Last change": when the decision was reached
    changed_to: date | None = None
    changed_by: str | None = None  # who last asked for a connection change, or hid or unhid (any case)

    def __post_init__(self) -> None:
        self._check_texts()
        if self.ready is not None and not isinstance(self.ready, Ready):
            try:
                object.__setattr__(self, "ready", Ready(str(self.ready).strip().lower()))
            except ValueError:
                raise Invalid(f"ready {self.ready!r} is not one of {', '.join(Ready)}", field="ready") from None
        for name in ("submitted", "ended", "changed"):
            start, end = getattr(self, f"{name}_from"), getattr(self, f"{name}_to")
            if start is not None and end is not None and start > end:
                raise Invalid(
                    f"{name}_from {start.isoformat()} is after {name}_to {end.isoformat()}", field=f"{name}_to"
                )

    @property
    def any(self) -> bool:
        """Whether any search or filter narrows the view."""
        return any(getattr(self, name) is not None for name in self.__dataclass_fields__)

    def _check_texts(self) -> None:
        self._check_free_texts()
        if self.reason is not None:
            reason = self.reason.strip().upper()
            if reason and reason not in DEFAULT_RULE_TABLE.reasons():
                raise Invalid(
                    f"reason {self.reason!r} is not one of {', '.join(DEFAULT_RULE_TABLE.reasons())}", field="reason"
                )
            object.__setattr__(self, "reason", reason or None)
        if self.owner is not None:
            object.__setattr__(self, "owner", self.owner.strip() or None)

    def _check_free_texts(self) -> None:
        """The search and the names typed in: trimmed, empty as unset, refused when too long."""
        for name, limit in (("programme", MAX_SEARCH_LENGTH * 2), ("changed_by", MAX_PERSON_NAME_LENGTH)):
            value = getattr(self, name)
            if value is not None:
                value = value.strip()
                if len(value) > limit:
                    raise Invalid(f"{name} {value[:20]!r}... is longer than {limit} characters", field=name)
                object.__setattr__(self, name, value or None)
        if self.q is not None:
            text = self.q.strip()
            if len(text) > MAX_SEARCH_LENGTH:
                raise Invalid(f"search {self.q[:20]!r}... is longer than {MAX_SEARCH_LENGTH} characters", field="q")
            object.__setattr__(self, "q", text or None)

    def flagged(self, gmc_update_failed: bool | None) -> QueueFilters:
        return replace(self, gmc_update_failed=gmc_update_failed)


@dataclass(frozen=True)
class QueueView:
    """Which doctors, filtered and in what order. ``body``: that body's view (its hides applied);
    ``unassigned``: the doctors no configured body sees; neither: every doctor as decided."""

    body: str | None = None
    queue: Queue | None = None
    unassigned: bool = False
    archived: bool = False  # the archived doctors instead (national); otherwise they are in no view
    filters: QueueFilters = field(default_factory=QueueFilters)
    sort: SortKey = SortKey.GMC_NUMBER
    descending: bool = False

    def described(self) -> dict[str, Any]:
        """The view as the access audit records an export of it: only what narrows it."""
        described: dict[str, Any] = {"body": self.body, "queue": self.queue.value if self.queue else None}
        if self.unassigned:
            described["unassigned"] = True
        for name in self.filters.__dataclass_fields__:
            value = getattr(self.filters, name)
            if value is not None:
                described[name] = value.isoformat() if isinstance(value, date) else str(value)
        return described

    @classmethod
    def of_tab(cls, tab: QueueTab, body: str | None, **kwargs: Any) -> QueueView:
        if tab is QueueTab.UNASSIGNED:
            return cls(None, unassigned=True, **kwargs)
        if tab is QueueTab.FAILED_UPDATES:
            filters = kwargs.pop("filters", QueueFilters())
            return cls(body, filters=filters.flagged(True), **kwargs)
        return cls(body, TAB_QUEUES[tab], **kwargs)


@dataclass(frozen=True)
class QueueEntry:
    """A doctor as a queue shows them."""

    gmc_number: str
    first_name: str | None
    last_name: str | None
    designated_body: str | None  # the GMC connection
    programme_owners: tuple[str, ...]  # designated body codes
    programme_name: str | None
    programme_start: date | None
    programme_end: date | None
    submission_date: date | None
    queue: str
    reason: str
    changed: date  # when the decision was last reached
    visible_to: tuple[str, ...]
    tis_person_ids: tuple[int, ...]
    hidden_for: tuple[str, ...] = ()
    gmc_update_failed: bool = False
    programme_membership_type: str | None = None
    last_changed_by: str | None = None  # who last asked for a connection change, or hid or unhid
    archived_on: date | None = None  # an archived doctor's (queue and reason are then their last)

    @property
    def reason_label(self) -> str:
        return DEFAULT_RULE_TABLE.reason_label(self.reason)

    def export_row(self) -> dict[str, Any]:
        """The row `reval export` writes (its field names are a contract)."""
        return {
            "gmcReferenceNumber": self.gmc_number,
            "queue": self.queue,
            "reason": self.reason,
            "visibleTo": list(self.visible_to),
            "designatedBody": self.designated_body,
            "programmeOwnerDesignatedBodies": list(self.programme_owners),
            "hiddenFor": list(self.hidden_for),
            "firstName": self.first_name,
            "lastName": self.last_name,
            "tisPersonIds": list(self.tis_person_ids),
            "gmcUpdateFailed": self.gmc_update_failed,
        }


EXPORT_FIELDS = tuple(
    QueueEntry("", None, None, None, (), None, None, None, None, "", "", date.min, (), ()).export_row()
)


# --- reading ------------------------------------------------------------------------------------


def queue_page(
    context: Context, view: QueueView, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE, total: int | None = None
) -> Page[QueueEntry]:
    """A page of the view; ``total``: its count, where the caller has just counted it (its tab's
    count, with the same filters): not counted twice, and the tab and the pager say the same."""
    page, page_size = checked_page(page), checked_page_size(page_size)
    with context.reads() as session:
        query = _query(session, context, view)
        if total is None:
            total = _view_total(session, context, view, query)
        # The page's keys come from the view's own index, in order; only its doctors are read.
        keys = session.execute(
            query.keys().order_by(*query.ordering()).offset((page - 1) * page_size).limit(page_size)
        ).all()
        return Page(_entries_of_keys(session, keys), total, page, page_size)


def _view_total(session: Session, context: Context, view: QueueView, query: _Query) -> int:
    """How many doctors the view holds: a body's unfiltered queue, or all its queues, from its
    kept counts; any other view counted."""
    if view.body is None or view.unassigned or view.archived or view.filters.any:
        return session.execute(query.count()).scalar_one()
    counts = _body_counts(session, context, view.body, view.filters)
    if view.queue is None:
        return sum(count for count, _ in counts.values())
    return counts.get(view.queue.value, (0, {}))[0]


def queue_entries(context: Context, view: QueueView) -> Iterator[QueueEntry]:
    """Every doctor of the view in its order, streamed (memory does not grow with the rows)."""
    with context.reads() as session:
        query = _query(session, context, view)
        hidden_for = _hidden_for(session, None)
        failed = failed_update_numbers(session)
        statement = query.doctors().order_by(*query.ordering()).execution_options(yield_per=2000)
        for rows in session.execute(statement).partitions():
            for row in rows:
                yield _entry(row, row.seen_queue, row.seen_reason, hidden_for, failed)


def exported_entries(context: Context, view: QueueView, export: View) -> Iterator[QueueEntry]:
    """Every doctor of the view, for a download: the export (its view and row count) is recorded
    in the access audit first, and any refusal comes now, before a row is read."""
    with context.reads() as session:
        row_count = session.execute(_query(session, context, view).count()).scalar_one()
    record_export(context, export, view.described(), row_count)
    return queue_entries(context, view)


def doctors_seen_by(context: Context, body: str, numbers: list[str]) -> tuple[list[QueueEntry], list[str]]:
    """The doctors among ``numbers`` that ``body`` (one of the actor's) sees, in the order given,
    and the numbers it does not see (or that are not GMC numbers)."""
    wanted = list(dict.fromkeys(number.strip() for number in numbers if number and number.strip()))[:1000]
    with context.reads() as session:
        query = _query(session, context, QueueView(body))
        keys = session.execute(query.keys().where(query.gmc_number.in_(wanted))).all() if wanted else []
        entries = {entry.gmc_number: entry for entry in _entries_of_keys(session, keys)}
    return [entries[number] for number in wanted if number in entries], [
        number for number in wanted if number not in entries
    ]


@dataclass(frozen=True)
class QueueCounts:
    """What a body's tabs hold with a search and filters, and how many of its Discrepancies are
    ready for each action with the same search and filters but any readiness (empty for the
    national views, whose rows do not hold it)."""

    tabs: dict[QueueTab, int]
    ready: dict[Ready, int]


def queue_counts(context: Context, body: str | None, filters: QueueFilters) -> QueueCounts:
    """The tabs' counts (Unassigned only for a national actor) and the ready counts. A body's four
    queues and its Discrepancies' ready lists come from one read of its view rows, where a count
    each would read them three times; Failed updates and Unassigned are counted on their own."""
    tabs = [tab for tab in QueueTab if tab is not QueueTab.UNASSIGNED or context.actor.national]
    with context.reads() as session:
        by_queue, ready = _queue_and_ready_counts(session, context, body, filters)
        counts = {tab: by_queue.get(queue.value, 0) for tab, queue in TAB_QUEUES.items()}
        for tab in tabs:
            if tab not in counts:
                view = QueueView.of_tab(tab, body, filters=filters)
                counts[tab] = session.execute(_query(session, context, view).count()).scalar_one()
    return QueueCounts({tab: counts[tab] for tab in tabs}, ready)


def tab_counts(context: Context, body: str | None, filters: QueueFilters) -> dict[QueueTab, int]:
    """How many doctors each tab holds for a body, with the same search and filters."""
    return queue_counts(context, body, filters).tabs


def _queue_and_ready_counts(
    session: Session, context: Context, body: str | None, filters: QueueFilters
) -> tuple[dict[str, int], dict[Ready, int]]:
    """How many rows of the view each queue holds with the filters, and how many Discrepancies
    are ready for each action with the filters but any readiness (a readiness filter takes its
    own from those)."""
    if body is None:  # the doctors' own rows hold no readiness to count by
        every_queue = _query(session, context, QueueView(body, filters=filters))
        return {queue: count for queue, count in session.execute(every_queue.grouped_count())}, {}
    by_queue: dict[str, int] = {}
    ready = dict.fromkeys(Ready, 0)
    for queue, (count, by_ready) in _body_counts(session, context, body, replace(filters, ready=None)).items():
        by_queue[queue] = count if filters.ready is None else by_ready[filters.ready]
        if queue == Queue.DISCREPANCY.value:
            ready = dict(by_ready)
    return by_queue, ready


# Each queue's count, and its count of each readiness, by queue.
QueueTallies = dict[str, tuple[int, dict[Ready, int]]]


class _KeptCounts:
    """Each body's unfiltered counts as this process last counted them, with the views token
    they were counted at (see reval.reconcile.views_version): a body's queue page shows its tabs'
    counts, and at a million doctors on PostgreSQL counting the largest body's rows cost more
    than reading its page, sorted by last change. They change only when a sync or an admin's
    action writes view rows, which replaces the token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the server's threads share them
        self._by_body: dict[str, tuple[str, QueueTallies]] = {}

    def get(self, code: str, token: str) -> QueueTallies | None:
        with self._lock:
            kept = self._by_body.get(code)
        return kept[1] if kept is not None and kept[0] == token else None

    def keep(self, code: str, token: str, counts: QueueTallies) -> None:
        with self._lock:
            self._by_body[code] = (token, counts)


_KEPT_COUNTS = _KeptCounts()


def _body_counts(session: Session, context: Context, body: str, filters: QueueFilters) -> QueueTallies:
    """A body's counts with the filters (no readiness filter), from one read of its view rows in
    its queue index's order; unfiltered, kept while the views token stays the same."""
    if filters.any:
        return _count_body(session, context, body, filters)
    code = visible_body(session, context.actor, body).code  # may this actor see them?
    token = views_token(session)  # before counting: see reval.reconcile.views_version
    counts = _KEPT_COUNTS.get(code, token) if token is not None else None
    if counts is None:
        counts = _count_body(session, context, code, filters)
        if token is not None:
            _KEPT_COUNTS.keep(code, token, counts)
    return counts


def _count_body(session: Session, context: Context, body: str, filters: QueueFilters) -> QueueTallies:
    every_queue = _query(session, context, QueueView(body, filters=filters))
    keyed = every_queue.keyed.c
    each_ready = [func.count().filter(keyed.ready == ready.value) for ready in Ready]
    counted = session.execute(every_queue.grouped_count(keyed.queue, also=(func.count(), *each_ready)))
    return {queue: (count, dict(zip(Ready, ready_counts, strict=True))) for queue, count, *ready_counts in counted}


def programme_names(context: Context, body: str | None) -> list[str]:
    """The programme names of the doctors a body sees (national actors: of every doctor), in
    alphabetical order: what a programme filter can choose from."""
    with context.reads() as session:
        if body is not None:
            code = visible_body(session, context.actor, body).code
            names = session.scalars(_BODY_PROGRAMME_NAMES, {"code": code})
        else:
            require_national(context.actor, "see every designated body's programmes at once")
            column = Doctor.__table__.c.programme_name
            names = session.scalars(select(column).where(column.is_not(None)).distinct())
        return sorted(names, key=lambda name: (name.casefold(), name))


# A body's distinct programme names, each found by one seek of ix_doctor_visibility_programme
# after the one before (neither SQLite nor PostgreSQL skips through an index for DISTINCT): a
# few hundred seeks, where DISTINCT would read every one of the body's rows.
_BODY_PROGRAMME_NAMES = text(
    "WITH RECURSIVE names(name) AS ("
    " SELECT min(programme_name) FROM doctor_visibility WHERE designated_body_code = :code"
    " UNION ALL"
    " SELECT (SELECT min(programme_name) FROM doctor_visibility"
    "  WHERE designated_body_code = :code AND programme_name > names.name)"
    " FROM names WHERE names.name IS NOT NULL"
    ") SELECT name FROM names WHERE name IS NOT NULL"
)


def counts_by_body(session: Session) -> dict[str, dict[str, int]]:
    """For each designated body, how many doctors it sees in each queue, its own hides applied;
    HIDDEN_BY_ADMIN counts those of its HIDDEN that an admin of the body hid (a rule hid the rest)."""
    visibility = DoctorVisibility.__table__
    counts: dict[str, dict[str, int]] = defaultdict(_no_doctors)
    by_admin = (visibility.c.reason == HIDDEN_BY_ADMIN).label("by_admin")
    statement = select(visibility.c.designated_body_code, visibility.c.queue, by_admin, func.count()).group_by(
        visibility.c.designated_body_code, visibility.c.queue, by_admin
    )
    for code, queue, hidden_by_admin, count in session.execute(statement):
        counts[code][queue] += count
        if hidden_by_admin:
            counts[code][HIDDEN_BY_ADMIN] += count
    return dict(counts)


def discrepancy_counts(context: Context, codes: Sequence[str]) -> dict[str, int]:
    """How many doctors each of these bodies (the actor's, in any letter case) has in its
    Discrepancies tab, unfiltered: one grouped count for them all."""
    visibility = DoctorVisibility.__table__
    with context.reads() as session:
        mine = visible_bodies(session, context.actor)
        wanted = [body.code for code in codes if (body := find_designated_body(mine, code)) is not None]
        counted: dict[str, int] = {
            row[0]: row[1]
            for row in session.execute(
                select(visibility.c.designated_body_code, func.count())
                .where(visibility.c.designated_body_code.in_(wanted), visibility.c.queue == Queue.DISCREPANCY.value)
                .group_by(visibility.c.designated_body_code)
            )
        }
    return {code: counted.get(code, 0) for code in wanted}


def _no_doctors() -> dict[str, int]:
    return {queue.value: 0 for queue in Queue} | {HIDDEN_BY_ADMIN: 0}


@dataclass(frozen=True)
class BodyCounts:
    code: str
    name: str
    counts: dict[str, int]  # as counts_by_body gives them


def body_counts(session: Session) -> list[BodyCounts]:
    """What each configured designated body sees, queue by queue (a doctor several bodies see
    counts in each)."""
    counts = counts_by_body(session)
    return [
        BodyCounts(b.code, b.name, counts.get(b.code) or _no_doctors()) for b in configured_designated_bodies(session)
    ]


def designated_body_counts(context: Context) -> list[BodyCounts]:
    """Every designated body's queue counts, as a sync's summary shows them."""
    require_national(context.actor, "see every designated body's queues at once")
    with context.reads() as session:
        return body_counts(session)


def queue_tab(text: str | None) -> QueueTab:
    try:
        return QueueTab((text or "").strip().lower())
    except ValueError:
        raise Invalid(f"queue {text!r} is not one of {', '.join(QueueTab)}", field="queue") from None


def sort_key(text: str | None) -> SortKey:
    if not text:
        return SortKey.GMC_NUMBER
    try:
        return SortKey(text.strip().lower())
    except ValueError:
        raise Invalid(f"sort {text!r} is not one of {', '.join(SortKey)}", field="sort") from None


def descending(order: str | None) -> bool:
    value = (order or "asc").strip().lower()
    if value not in ("asc", "desc"):
        raise Invalid(f"order {order!r} is not asc or desc", field="order")
    return value == "desc"


def checked_page_size(size: Any) -> int:
    number = whole_number(size, "pageSize")
    if not 1 <= number <= MAX_PAGE_SIZE:
        raise Invalid(f"page size {size!r} is not between 1 and {MAX_PAGE_SIZE}", field="pageSize")
    return number


# --- the query ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """A view as SQL. ``keyed``: the table whose rows the view lists, one per doctor: a body's
    ``doctor_visibility`` rows (queue and reason as that body sees them), or ``doctor`` itself
    for the national views. ``source`` joins ``doctor`` to it only where a filter or the order
    needs a doctor's column, so a count or a page's keys read the view's index alone."""

    keyed: Table
    source: FromClause
    conditions: tuple[ColumnElement[bool] | TextClause, ...]
    order_key: ColumnElement[Any]
    order_key_nullable: bool
    descending: bool
    tie_break: bool  # order by GMC number after the key

    @property
    def joins_doctor(self) -> bool:
        return self.keyed is Doctor.__table__ or self.source is not self.keyed

    @property
    def gmc_number(self) -> ColumnElement[str]:
        return self.keyed.c.gmc_number

    def count(self) -> Select[int]:
        return select(func.count()).select_from(self.source).where(*self.conditions)

    def grouped_count(
        self, by: ColumnElement[Any] | None = None, also: tuple[ColumnElement[Any], ...] | None = None
    ) -> Select[Any]:
        """How many rows of the view have each value of ``by`` (default: the queue as seen), or
        the aggregates ``also`` for each."""
        column = self.keyed.c.queue if by is None else by
        aggregates = also or (func.count(),)
        return select(column, *aggregates).select_from(self.source).where(*self.conditions).group_by(column)

    def keys(self) -> Select[Any, Any, Any]:  # GMC number, queue and reason as seen
        keyed = self.keyed.c
        return (
            select(keyed.gmc_number, keyed.queue.label("seen_queue"), keyed.reason.label("seen_reason"))
            .select_from(self.source)
            .where(*self.conditions)
        )

    def doctors(self) -> Select[*tuple[Any, ...]]:
        doctor = Doctor.__table__
        source = self.source
        if not self.joins_doctor:
            source = source.join(doctor, doctor.c.gmc_number == self.gmc_number)
        keyed = self.keyed.c
        return (
            select(*_doctor_columns(), keyed.queue.label("seen_queue"), keyed.reason.label("seen_reason"))
            .select_from(source)
            .where(*self.conditions)
        )

    def ordering(self) -> list[ColumnElement[Any]]:
        primary = self.order_key.desc() if self.descending else self.order_key.asc()
        # NULLS LAST only where a column can be null: on a column that cannot, it would stop
        # SQLite and PostgreSQL from reading the order straight off an index.
        if self.order_key_nullable:
            primary = primary.nulls_last()
        if not self.tie_break:
            return [primary]
        return [primary, self.gmc_number.desc() if self.descending else self.gmc_number.asc()]


def _query(session: Session, context: Context, view: QueueView) -> _Query:
    doctor = Doctor.__table__
    keyed, conditions, code = _scope(session, context, view)
    if view.queue is not None:
        conditions.append(keyed.c.queue == view.queue.value)
    filtered, needs_doctor = _filter_conditions(session, view, keyed, code)
    conditions.extend(filtered)
    order_key, nullable, from_doctor = _sort_expression(session, view.sort, keyed)
    source: FromClause = keyed
    if keyed is not doctor and (needs_doctor or from_doctor):
        source = keyed.join(doctor, doctor.c.gmc_number == keyed.c.gmc_number)
    return _Query(
        keyed,
        source,
        tuple(conditions),
        order_key,
        nullable,
        view.descending,
        tie_break=view.sort is not SortKey.GMC_NUMBER,
    )


def _scope(
    session: Session, context: Context, view: QueueView
) -> tuple[Table, list[ColumnElement[bool] | TextClause], str | None]:
    """The table the view reads (a body's visibility rows, or the doctors), the conditions that
    scope it, and the body's code; refused unless the actor may see that much."""
    doctor = Doctor.__table__
    if view.unassigned:
        require_national(context.actor, "see the doctors no designated body sees")
        return doctor, [UNASSIGNED_DOCTOR], None
    if view.archived:
        require_national(context.actor, "see the archived doctors")
        return doctor, [ARCHIVED_DOCTOR], None
    if view.body is None:
        require_national(context.actor, "see every designated body's doctors at once")
        return doctor, [doctor.c.archived_on.is_(None)], None
    code = visible_body(session, context.actor, view.body).code
    keyed = DoctorVisibility.__table__
    return keyed, [keyed.c.designated_body_code == code], code


def _filter_conditions(
    session: Session, view: QueueView, keyed: Table, code: str | None
) -> tuple[list[ColumnElement[bool] | TextClause], bool]:
    """The search's and filters' conditions, and whether any reads the doctor's own columns."""
    filters = view.filters
    conditions: list[ColumnElement[bool] | TextClause] = []
    if filters.q:
        conditions.append(_search_condition(filters.q, keyed, code, view.queue))
    if filters.reason:
        conditions.append(keyed.c.reason == filters.reason)
    if filters.owner:
        owner = _owner_code(session, filters.owner)
        conditions.append(_spaced(keyed.c.programme_owners).like(f"% {_like_escaped(owner)} %", escape="\\"))
    if filters.gmc_update_failed is not None:
        flagged = keyed.c.gmc_number.in_(failed_update_numbers_query())
        conditions.append(flagged if filters.gmc_update_failed else ~flagged)
    if filters.ready is not None:
        # A body's view rows know what its admin can do at once; the national views ask the doctor.
        conditions.append(keyed.c.ready == filters.ready.value if code is not None else _ready_condition(filters.ready))
    if filters.programme:
        conditions.append(func.lower(keyed.c.programme_name) == filters.programme.lower())
    if filters.changed_by:
        conditions.append(func.lower(keyed.c.last_changed_by) == filters.changed_by.lower())
    for column, start, end in (
        (keyed.c.programme_end, filters.ended_from, filters.ended_to),
        (keyed.c.decided_as_of, filters.changed_from, filters.changed_to),
    ):
        conditions.extend(_date_range(column, start, end))
    doctor_conditions = _doctor_conditions(filters)
    conditions.extend(doctor_conditions)
    return conditions, bool(doctor_conditions)


def _doctor_conditions(filters: QueueFilters) -> list[ColumnElement[bool]]:
    """The filters on the doctor's columns that the view rows do not hold."""
    doctor = Doctor.__table__.c
    conditions: list[ColumnElement[bool]] = []
    conditions.extend(_date_range(doctor.submission_date, filters.submitted_from, filters.submitted_to))
    return conditions


def _date_range(column: ColumnElement[Any], start: date | None, end: date | None) -> list[ColumnElement[bool]]:
    return [
        *([column >= start] if start is not None else []),
        *([column <= end] if end is not None else []),
    ]


def _ready_condition(ready: Ready) -> ColumnElement[bool]:
    """For the national views (a body's view rows hold it: see ``ready_for``): ready for
    connection, a programme owner is any body and the doctor is not connected to one; ready for
    disconnection, connected to a body and decided as not belonging there."""
    doctor = Doctor.__table__.c
    connected = doctor.designated_body_code
    if ready is Ready.DISCONNECT:
        return and_(connected.is_not(None), doctor.reason.in_(SHOULD_NOT_BE_CONNECTED))
    connected_to_owner = _spaced(doctor.programme_owners).like(literal("% ").concat(connected).concat(" %"))
    return and_(doctor.programme_owners != "", or_(connected.is_(None), ~connected_to_owner))


# Exactly the predicate of the partial index ix_doctor_unassigned: SQLAlchemy writes a boolean
# column as "unassigned = 1" on SQLite, which SQLite does not match to that index.
UNASSIGNED_DOCTOR = text("doctor.unassigned")
ARCHIVED_DOCTOR = text("doctor.archived_on IS NOT NULL")  # as the partial index ix_doctor_archived has it

# The highest code point: every name that starts with a prefix sorts before prefix + this.
_AFTER_EVERY_NAME = chr(0x10FFFF)


def _search_condition(text: str, keyed: Table, code: str | None, queue: Queue | None) -> ColumnElement[bool]:
    """A GMC-number prefix (GMC numbers are seven digits) or a name prefix, as index ranges."""
    number = keyed.c.gmc_number
    if text.isascii() and text.isdigit():
        if len(text) < GMC_NUMBER_DIGITS:
            return number.between(text.ljust(GMC_NUMBER_DIGITS, "0"), text.ljust(GMC_NUMBER_DIGITS, "9"))
        return number == text
    prefix = text.casefold()[:NAME_KEY_LENGTH]  # names are kept to that length (casefolding can lengthen)
    if code is None:  # the national views: few doctors (Unassigned), or all of them (an export)
        return Doctor.__table__.c.search_names.like(f"%\n{_like_escaped(prefix)}%", escape="\\")
    names = DoctorVisibilityName.__table__.c
    matching = select(names.gmc_number).where(
        names.designated_body_code == code, names.name >= prefix, names.name < prefix + _AFTER_EVERY_NAME
    )
    # Every queue named, when the view is of all of them: a range per queue, not the whole body.
    matching = matching.where(
        names.queue == queue.value if queue is not None else names.queue.in_([q.value for q in Queue])
    )
    return number.in_(matching)


def _owner_code(session: Session, owner: str) -> str:
    """A programme owner filter's body code: any configured body (owners need not be the viewer's)."""
    body = find_designated_body(configured_designated_bodies(session), owner)
    if body is not None:
        return body.code
    raise Invalid(f"programme owner {owner!r} is not a configured designated body", field="owner")


def _spaced(column: ColumnElement[str]) -> ColumnElement[str]:
    return literal(" ").concat(column).concat(" ")


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sort_expression(session: Session, sort: SortKey, keyed: Table) -> tuple[ColumnElement[Any], bool, bool]:
    """The column a view is ordered by, whether it can be null, and whether it is the doctor's
    (a body's view rows hold GMC number, sort name, reason and the copies of VIEW_COPIED_COLUMNS
    and the decision's date; the national views read the doctor's own)."""
    doctor = Doctor.__table__.c
    held = doctor if keyed is Doctor.__table__ else keyed.c
    body = DesignatedBodyRecord.__table__.c
    if sort is SortKey.REASON:
        labels = {code: DEFAULT_RULE_TABLE.reason_label(code).lower() for code in DEFAULT_RULE_TABLE.reasons()}
        return case(labels, value=keyed.c.reason, else_=keyed.c.reason), False, False
    if sort is SortKey.PROGRAMME_OWNER:
        return _first_owner_rank(session, held), True, held is doctor
    if sort in _HELD_SORTS:
        column = _HELD_SORTS[sort](held)
        return column, getattr(column, "nullable", True), held is doctor and sort not in _KEY_SORTS
    column = {
        # By the name people read, not the code.
        SortKey.DESIGNATED_BODY: select(func.lower(body.name))
        .where(body.code == doctor.designated_body_code)
        .scalar_subquery(),
        SortKey.SUBMISSION_DATE: doctor.submission_date,
        SortKey.MEMBERSHIP_TYPE: doctor.programme_membership_type,
    }[sort]
    return column, True, True


# The sorts by what the view's own rows hold: each key's column of ``held`` (the view's columns).
_HELD_SORTS: dict[SortKey, Any] = {
    SortKey.NAME: lambda held: held.sort_name,
    SortKey.GMC_NUMBER: lambda held: held.gmc_number,
    SortKey.PROGRAMME: lambda held: func.lower(held.programme_name),
    SortKey.START: lambda held: held.programme_start,
    SortKey.END: lambda held: held.programme_end,
    SortKey.CHANGED: lambda held: held.decided_as_of,
    SortKey.CHANGED_BY: lambda held: func.lower(held.last_changed_by),
}


def _first_owner_rank(session: Session, held: Any) -> ColumnElement[Any]:
    """Where the programme owners' first name people read (not their codes) comes among the
    configured bodies' names, as the database orders them case-folded; null for no owner. One
    expression over the dozen or so bodies, not a join or a subquery per doctor: nearly every
    doctor has one owner, found by its code; the bodies are searched for the few with several,
    in the order of their names, so the first found is the least."""
    body = DesignatedBodyRecord.__table__.c
    folded = func.lower(body.name)
    by_name = session.execute(select(body.code, folded).order_by(folded, body.code)).all()
    ranks: dict[str, int] = {}
    rank, previous = 0, None
    for code, name in by_name:
        rank += name != previous  # bodies of the same name share a place: the GMC number decides
        ranks[code], previous = rank, name
    owners = held.programme_owners
    spaced = _spaced(owners)
    tests = [(spaced.like(f"% {_like_escaped(code)} %", escape="\\"), place) for code, place in ranks.items()]
    of_several = case((owners.contains(" "), case(*tests, else_=null())), else_=null()) if tests else null()
    # A simple CASE reads the owners once per doctor; a searched one would read them per body.
    return case({**ranks, "": null()}, value=owners, else_=of_several)


_KEY_SORTS = (SortKey.NAME, SortKey.GMC_NUMBER)  # the view's keys: never null, read off its indexes


def _hidden_for(session: Session, numbers: list[str] | None) -> dict[str, list[str]]:
    """Active hides by doctor (for ``numbers``, or every doctor)."""
    statement = select(DoctorHide.gmc_number, DoctorHide.designated_body_code).where(DoctorHide.ended_at.is_(None))
    if numbers is not None:
        statement = statement.where(DoctorHide.gmc_number.in_(numbers))
    hidden: dict[str, list[str]] = defaultdict(list)
    for number, code in session.execute(statement.order_by(DoctorHide.designated_body_code)):
        hidden[number].append(code)
    return hidden


def _doctor_columns() -> list[ColumnElement[Any]]:
    doctor = Doctor.__table__.c
    return [
        doctor.gmc_number,
        doctor.first_name,
        doctor.last_name,
        doctor.designated_body_code,
        doctor.programme_owner_designated_bodies,
        doctor.programme_name,
        doctor.programme_start,
        doctor.programme_end,
        doctor.submission_date,
        doctor.decided_as_of,
        doctor.visible_to,
        doctor.tis_person_ids,
        doctor.programme_membership_type,
        doctor.last_changed_by,
        doctor.archived_on,
    ]


def _entries_of_keys(session: Session, keys: Sequence[Row[Any, Any, Any]]) -> list[QueueEntry]:
    """The doctors of a view's keys (GMC number, queue and reason as seen), in the keys' order."""
    numbers = [key.gmc_number for key in keys]
    if not numbers:
        return []
    doctors = {
        row.gmc_number: row
        for row in session.execute(select(*_doctor_columns()).where(Doctor.__table__.c.gmc_number.in_(numbers)))
    }
    hidden_for, failed = _hidden_for(session, numbers), failed_update_numbers(session, numbers)
    return [_entry(doctors[key.gmc_number], key.seen_queue, key.seen_reason, hidden_for, failed) for key in keys]


def _entry(
    row: Row[*tuple[Any, ...]], queue: str, reason: str, hidden_for: dict[str, list[str]], failed: set[str]
) -> QueueEntry:
    return QueueEntry(
        gmc_number=row.gmc_number,
        first_name=row.first_name,
        last_name=row.last_name,
        designated_body=row.designated_body_code,
        programme_owners=tuple(row.programme_owner_designated_bodies),
        programme_name=row.programme_name,
        programme_start=row.programme_start,
        programme_end=row.programme_end,
        submission_date=row.submission_date,
        queue=queue,
        reason=reason,
        changed=row.decided_as_of,
        visible_to=tuple(row.visible_to),
        tis_person_ids=tuple(row.tis_person_ids),
        hidden_for=tuple(hidden_for.get(row.gmc_number, ())),
        gmc_update_failed=row.gmc_number in failed,
        programme_membership_type=row.programme_membership_type,
        last_changed_by=row.last_changed_by,
        archived_on=row.archived_on,
    )
