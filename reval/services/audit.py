"""The access audit: every view of doctors' personal data is recorded (who, when, what, through
which entry point, under which request id) before the data goes out, in a transaction of its
own: a failed record fails the view, and a failed view never undoes its record. Records are
never changed; only the retention purge removes them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from reval import logs
from reval.clock import LONDON
from reval.models import AccessRecord
from reval.reconcile.common import refused_as_invalid
from reval.refusals import Invalid
from reval.services.access import checked_gmc_number, require_national
from reval.services.context import Context
from reval.services.paging import Page, checked_page
from reval.validation import free_text

AUDIT_PAGE_SIZE = 50
MAX_ACTOR_LENGTH = 200
PURGE_BATCH = 5000  # rows a purge deletes at a time, so it never holds a long lock


class View(StrEnum):
    DOCTOR = "doctor"  # a doctor's page, GET /api/v1/doctors/{gmc}, `reval explain`
    HISTORY = "history"  # GET /api/v1/doctors/{gmc}/history, `reval history`
    QUEUE_CSV = "queue-csv"  # a queue's "Download CSV"
    EXPORT = "export"  # `reval export`


def record_doctor_view(context: Context, view: View, gmc_number: str) -> None:
    _record(context, view=view.value, gmc_number=gmc_number)


def record_export(context: Context, view: View, filters: Mapping[str, Any], row_count: int) -> None:
    _record(context, view=view.value, filters=dict(filters), row_count=row_count)


def _record(context: Context, **what: Any) -> None:
    actor = context.actor
    if not actor.name:
        raise RuntimeError("an access is recorded only with its actor")  # never an anonymous record
    with context.sessions.begin() as session:
        session.add(
            AccessRecord(
                recorded_at=context.now(),
                actor_name=actor.name,
                actor_role=actor.role.value,
                actor_bodies=sorted(actor.designated_bodies),
                actor_subject=actor.subject,
                entry_point=context.entry_point,
                request_id=logs.request_id.get(),
                **what,
            )
        )


# --- reading the audit ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None  # a person's name, exactly as recorded (any case)
    gmc_number: str | None = None
    since: date | None = None  # from this day (London), inclusive
    until: date | None = None  # to this day (London), inclusive

    def __post_init__(self) -> None:
        with refused_as_invalid("actor"):
            object.__setattr__(self, "actor", free_text("actor", self.actor, MAX_ACTOR_LENGTH))
        number = (self.gmc_number or "").strip() or None
        object.__setattr__(self, "gmc_number", checked_gmc_number(number) if number else None)
        if self.since is not None and self.until is not None and self.since > self.until:
            raise Invalid(
                f"from {self.since.isoformat()} is after to {self.until.isoformat()}",
                field="until",
            )

    def statement(self) -> Select[AccessRecord]:
        statement = select(AccessRecord)
        if self.actor is not None:
            statement = statement.where(func.lower(AccessRecord.actor_name) == self.actor.lower())
        if self.gmc_number is not None:
            statement = statement.where(AccessRecord.gmc_number == self.gmc_number)
        if self.since is not None:
            statement = statement.where(AccessRecord.recorded_at >= _start_of(self.since))
        if self.until is not None:
            statement = statement.where(AccessRecord.recorded_at < _start_of(self.until + timedelta(days=1)))
        return statement


def audit_page(
    context: Context, query: AuditQuery, page: int = 1, page_size: int = AUDIT_PAGE_SIZE
) -> Page[AccessRecord]:
    """National users only: the records, newest first, a page at a time."""
    require_national(context.actor, "read the access audit")
    page = checked_page(page)
    with context.reads() as session:
        statement = query.statement()
        total = session.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
        records = session.scalars(
            statement.order_by(AccessRecord.recorded_at.desc(), AccessRecord.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
        return Page(list(records), total, page, page_size)


def audit_records(context: Context, query: AuditQuery) -> Iterator[AccessRecord]:
    """National users (and operators) only: every record of the query, newest first, streamed."""
    require_national(context.actor, "read the access audit")  # now, before anything is written out
    return _streamed(context, query.statement().order_by(AccessRecord.recorded_at.desc(), AccessRecord.id.desc()))


def _streamed(context: Context, statement: Select[AccessRecord]) -> Iterator[AccessRecord]:
    with context.reads() as session:
        yield from session.scalars(statement.execution_options(yield_per=2000))


AUDIT_FIELDS = (
    "recordedAt",
    "actorName",
    "actorRole",
    "actorBodies",
    "actorSubject",
    "entryPoint",
    "requestId",
    "view",
    "gmcNumber",
    "filters",
    "rowCount",
)


def audit_row(record: AccessRecord) -> dict[str, Any]:
    """A record as the CSV, JSON and table show it."""
    return {
        "recordedAt": record.recorded_at.isoformat(),
        "actorName": record.actor_name,
        "actorRole": record.actor_role,
        "actorBodies": list(record.actor_bodies),
        "actorSubject": record.actor_subject,
        "entryPoint": record.entry_point,
        "requestId": record.request_id,
        "view": record.view,
        "gmcNumber": record.gmc_number,
        "filters": record.filters,
        "rowCount": record.row_count,
    }


def audit_cells(record: AccessRecord) -> list[Any]:
    """A record as a CSV or table row, in the order of AUDIT_FIELDS (an export's filters as
    name=value pairs)."""
    row = audit_row(record)
    filters = row["filters"]
    if isinstance(filters, dict):
        row["filters"] = "; ".join(f"{name}={value}" for name, value in sorted(filters.items()) if value is not None)
    return [row[name] for name in AUDIT_FIELDS]


# --- retention ----------------------------------------------------------------------------------


def purge_expired_records(sessions: sessionmaker[Session], now: datetime, retention_days: int) -> int:
    """Removes the records older than the retention period, in batches; how many it removed."""
    cutoff = now - timedelta(days=retention_days)
    removed = 0
    while True:
        with sessions.begin() as session:
            ids = session.scalars(
                select(AccessRecord.id).where(AccessRecord.recorded_at < cutoff).limit(PURGE_BATCH)
            ).all()
            if not ids:
                return removed
            session.execute(delete(AccessRecord).where(AccessRecord.id.in_(ids)))
            removed += len(ids)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), LONDON)
