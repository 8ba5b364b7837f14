"""A designated body's queues: paged, sorted, filtered and counted in the database, never by
reading every doctor.

What a body sees of a doctor (the queue and reason, its own admins' hides applied) is written
with each decision into ``doctor_visibility`` (see ``reval.reconcile.decisions.write_visibility``);
every view here reads it from there: the web's tabs, the API's pages, ``reval export``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Iterator

from sqlalchemy import ColumnElement, FromClause, case, func, literal, select
from sqlalchemy.orm import Session

from reval.models import DesignatedBodyRecord, Doctor, DoctorHide, DoctorVisibility
from reval.reconcile.connections import failed_update_numbers, failed_update_numbers_query
from reval.reconcile.reference import configured_designated_bodies
from reval.refusals import Invalid
from reval.rules import DEFAULT_RULE_TABLE, HIDDEN_BY_ADMIN, Queue
from reval.services.access import require_national, visible_body
from reval.services.context import Context


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


DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 500
MAX_SEARCH_LENGTH = 100


@dataclass(frozen=True)
class QueueFilters:
    q: str | None = None  # a prefix of the GMC number, or of a first or last name
    reason: str | None = None  # a reason code
    owner: str | None = None  # a designated body code among the programme owners
    gmc_update_failed: bool | None = None  # only doctors flagged "GMC update failed" (True), or unflagged (False)

    def __post_init__(self) -> None:
        if self.q is not None:
            text = self.q.strip()
            if len(text) > MAX_SEARCH_LENGTH:
                raise Invalid(f"search {self.q[:20]!r}... is longer than {MAX_SEARCH_LENGTH} characters", field="q")
            object.__setattr__(self, "q", text or None)
        if self.reason is not None:
            reason = self.reason.strip().upper()
            if reason and reason not in DEFAULT_RULE_TABLE.reasons():
                raise Invalid(f"reason {self.reason!r} is not one of {', '.join(DEFAULT_RULE_TABLE.reasons())}",
                              field="reason")
            object.__setattr__(self, "reason", reason or None)
        if self.owner is not None:
            object.__setattr__(self, "owner", self.owner.strip() or None)


    def flagged(self, gmc_update_failed: bool | None) -> QueueFilters:
        return QueueFilters(self.q, self.reason, self.owner, gmc_update_failed)


@dataclass(frozen=True)
class QueueView:
    """Which doctors, filtered and in what order. ``body``: that body's view (its hides applied);
    ``unassigned``: the doctors no configured body sees; neither: every doctor as decided."""

    body: str | None = None
    queue: Queue | None = None
    unassigned: bool = False
    filters: QueueFilters = field(default_factory=QueueFilters)
    sort: SortKey = SortKey.GMC_NUMBER
    descending: bool = False

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


EXPORT_FIELDS = tuple(QueueEntry("", None, None, None, (), None, None, None, None, "", "", date.min, (), ()).export_row())


@dataclass(frozen=True)
class Page:
    items: list[QueueEntry]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


# --- reading ------------------------------------------------------------------------------------


def queue_page(context: Context, view: QueueView, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE) -> Page:
    page, page_size = checked_page(page), checked_page_size(page_size)
    with context.reads() as session:
        query = _query(session, context, view)
        total = session.scalar(select(func.count()).select_from(query.source).where(*query.conditions))
        rows = session.execute(
            query.select().order_by(*query.ordering()).offset((page - 1) * page_size).limit(page_size)
        ).all()
        numbers = [row.gmc_number for row in rows]
        return Page(_entries(session, rows, _hidden_for(session, numbers), failed_update_numbers(session, numbers)),
                    total, page, page_size)


def queue_entries(context: Context, view: QueueView) -> Iterator[QueueEntry]:
    """Every doctor of the view in its order, streamed (memory does not grow with the rows)."""
    with context.reads() as session:
        query = _query(session, context, view)
        hidden_for = _hidden_for(session, None)
        failed = failed_update_numbers(session)
        statement = query.select().order_by(*query.ordering()).execution_options(yield_per=2000)
        for rows in session.execute(statement).partitions():
            yield from _entries(session, rows, hidden_for, failed)


def doctors_seen_by(context: Context, body: str, numbers: list[str]) -> tuple[list[QueueEntry], list[str]]:
    """The doctors among ``numbers`` that ``body`` (one of the actor's) sees, in the order given,
    and the numbers it does not see (or that are not GMC numbers)."""
    wanted = list(dict.fromkeys(number.strip() for number in numbers if number and number.strip()))[:1000]
    with context.reads() as session:
        query = _query(session, context, QueueView(body))
        rows = session.execute(query.select().where(Doctor.__table__.c.gmc_number.in_(wanted))).all() if wanted else []
        entries = {entry.gmc_number: entry for entry in _entries(
            session, rows, _hidden_for(session, [row.gmc_number for row in rows]), failed_update_numbers(session, wanted)
        )}
    return [entries[number] for number in wanted if number in entries], [number for number in wanted if number not in entries]


def tab_counts(context: Context, body: str | None, filters: QueueFilters) -> dict[QueueTab, int]:
    """How many doctors each tab holds for a body, with the same search and filters; Unassigned
    only for a national actor."""
    counts = {tab: 0 for tab in QueueTab}
    with context.reads() as session:
        query = _query(session, context, QueueView(body, filters=filters))
        by_queue = session.execute(
            select(query.queue, func.count()).select_from(query.source).where(*query.conditions).group_by(query.queue)
        ).all()
        tab_of = {queue.value: tab for tab, queue in TAB_QUEUES.items()}
        for queue, count in by_queue:
            if queue in tab_of:
                counts[tab_of[queue]] = count
        failed = _query(session, context, QueueView(body, filters=filters.flagged(True)))
        counts[QueueTab.FAILED_UPDATES] = session.scalar(select(func.count()).select_from(failed.source).where(*failed.conditions))
        if context.actor.national:
            unassigned = _query(session, context, QueueView(unassigned=True, filters=filters))
            counts[QueueTab.UNASSIGNED] = session.scalar(
                select(func.count()).select_from(unassigned.source).where(*unassigned.conditions)
            )
        else:
            del counts[QueueTab.UNASSIGNED]
    return counts


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
    return [BodyCounts(b.code, b.name, counts.get(b.code) or _no_doctors()) for b in configured_designated_bodies(session)]


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


def checked_page(page: Any) -> int:
    number = _whole_number(page, "page")
    if number < 1:
        raise Invalid(f"page {page!r} is not 1 or more", field="page")
    return number


def checked_page_size(size: Any) -> int:
    number = _whole_number(size, "pageSize")
    if not 1 <= number <= MAX_PAGE_SIZE:
        raise Invalid(f"page size {size!r} is not between 1 and {MAX_PAGE_SIZE}", field="pageSize")
    return number


def _whole_number(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 9:
        return int(value)
    raise Invalid(f"{name} {value!r} is not a whole number", field=name)


# --- the query ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    source: FromClause
    conditions: tuple[ColumnElement[bool], ...]
    queue: ColumnElement[str]  # as the view sees it
    reason: ColumnElement[str]
    sort: SortKey
    descending: bool

    def select(self):
        doctor = Doctor.__table__.c
        return select(
            doctor.gmc_number, doctor.first_name, doctor.last_name, doctor.designated_body_code,
            doctor.programme_owner_designated_bodies, doctor.programme_name, doctor.programme_start, doctor.programme_end,
            doctor.submission_date, doctor.decided_as_of, doctor.visible_to, doctor.tis_person_ids,
            self.queue.label("seen_queue"), self.reason.label("seen_reason"),
        ).select_from(self.source).where(*self.conditions)

    def ordering(self) -> list[ColumnElement]:
        key = _sort_expression(self.sort, self.reason)
        doctor = Doctor.__table__.c
        primary = (key.desc() if self.descending else key.asc()).nulls_last()
        if self.sort is SortKey.GMC_NUMBER:
            return [primary]
        return [primary, doctor.gmc_number.desc() if self.descending else doctor.gmc_number.asc()]


def _query(session: Session, context: Context, view: QueueView) -> _Query:
    doctor = Doctor.__table__
    if view.unassigned:
        require_national(context.actor, "see the doctors no designated body sees")
        source, conditions = doctor, [doctor.c.unassigned]
        queue, reason = doctor.c.queue, doctor.c.reason
    elif view.body is None:
        require_national(context.actor, "see every designated body's doctors at once")
        source, conditions = doctor, []
        queue, reason = doctor.c.queue, doctor.c.reason
    else:
        code = visible_body(session, context.actor, view.body).code
        visibility = DoctorVisibility.__table__
        source = visibility.join(doctor, doctor.c.gmc_number == visibility.c.gmc_number)
        conditions = [visibility.c.designated_body_code == code]
        queue, reason = visibility.c.queue, visibility.c.reason
    if view.queue is not None:
        conditions.append(queue == view.queue.value)
    filters = view.filters
    if filters.q:
        conditions.append(_search_condition(filters.q))
    if filters.reason:
        conditions.append(reason == filters.reason)
    if filters.owner:
        owner = _owner_code(session, filters.owner)
        conditions.append(_spaced(doctor.c.programme_owners).like(f"% {_like_escaped(owner)} %", escape="\\"))
    if filters.gmc_update_failed is not None:
        flagged = doctor.c.gmc_number.in_(failed_update_numbers_query())
        conditions.append(flagged if filters.gmc_update_failed else ~flagged)
    return _Query(source, tuple(conditions), queue, reason, view.sort, view.descending)


def _search_condition(text: str) -> ColumnElement[bool]:
    doctor = Doctor.__table__.c
    if text.isascii() and text.isdigit():
        return doctor.gmc_number.like(f"{text}%") if len(text) < 7 else doctor.gmc_number == text
    return doctor.search_names.like(f"%\n{_like_escaped(text.casefold())}%", escape="\\")


def _owner_code(session: Session, owner: str) -> str:
    """A programme owner filter's body code: any configured body (owners need not be the viewer's)."""
    wanted = owner.strip().upper()
    for body in configured_designated_bodies(session):
        if body.code.upper() == wanted:
            return body.code
    raise Invalid(f"programme owner {owner!r} is not a configured designated body", field="owner")


def _spaced(column: ColumnElement[str]) -> ColumnElement[str]:
    return literal(" ").concat(column).concat(" ")


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _sort_expression(sort: SortKey, reason: ColumnElement[str]) -> ColumnElement:
    doctor = Doctor.__table__.c
    body = DesignatedBodyRecord.__table__.c
    if sort is SortKey.NAME:
        return doctor.sort_name
    if sort is SortKey.GMC_NUMBER:
        return doctor.gmc_number
    if sort is SortKey.DESIGNATED_BODY:
        # By the name people read, not the code.
        return select(func.lower(body.name)).where(body.code == doctor.designated_body_code).scalar_subquery()
    if sort is SortKey.PROGRAMME_OWNER:
        first_owner = func.min(func.lower(body.name))
        return select(first_owner).where(
            _spaced(doctor.programme_owners).like(literal("% ").concat(body.code).concat(" %"))
        ).scalar_subquery()
    if sort is SortKey.PROGRAMME:
        return func.lower(doctor.programme_name)
    if sort is SortKey.START:
        return doctor.programme_start
    if sort is SortKey.END:
        return doctor.programme_end
    if sort is SortKey.SUBMISSION_DATE:
        return doctor.submission_date
    if sort is SortKey.REASON:
        return case({code: DEFAULT_RULE_TABLE.reason_label(code).lower() for code in DEFAULT_RULE_TABLE.reasons()},
                    value=reason, else_=reason)
    return doctor.decided_as_of


def _hidden_for(session: Session, numbers: list[str] | None) -> dict[str, list[str]]:
    """Active hides by doctor (for ``numbers``, or every doctor)."""
    statement = select(DoctorHide.gmc_number, DoctorHide.designated_body_code).where(DoctorHide.ended_at.is_(None))
    if numbers is not None:
        statement = statement.where(DoctorHide.gmc_number.in_(numbers))
    hidden: dict[str, list[str]] = defaultdict(list)
    for number, code in session.execute(statement.order_by(DoctorHide.designated_body_code)):
        hidden[number].append(code)
    return hidden


def _entries(session: Session, rows, hidden_for: dict[str, list[str]], failed: set[str]) -> list[QueueEntry]:
    return [
        QueueEntry(
            gmc_number=row.gmc_number,
            first_name=row.first_name,
            last_name=row.last_name,
            designated_body=row.designated_body_code,
            programme_owners=tuple(row.programme_owner_designated_bodies),
            programme_name=row.programme_name,
            programme_start=row.programme_start,
            programme_end=row.programme_end,
            submission_date=row.submission_date,
            queue=row.seen_queue,
            reason=row.seen_reason,
            changed=row.decided_as_of,
            visible_to=tuple(row.visible_to),
            tis_person_ids=tuple(row.tis_person_ids),
            hidden_for=tuple(hidden_for.get(row.gmc_number, ())),
            gmc_update_failed=row.gmc_number in failed,
        )
        for row in rows
    ]
