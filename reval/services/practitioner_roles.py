"""Doctors as their designated bodies' practitioners, as GMC has them connected: what the FHIR
view (/fhir/r4/PractitionerRole) serves, scoped as every other read is."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select

from reval.models import DoctorEvent, GmcConnection
from reval.refusals import NotFound
from reval.services.access import checked_gmc_number, visible_body
from reval.services.context import Context
from reval.services.paging import Page

# A comparison of _lastUpdated (FHIR's date search prefixes) as SQL.
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


@dataclass(frozen=True)
class ConnectedDoctor:
    gmc_number: str
    designated_body: str
    first_name: str | None
    last_name: str | None
    date_added: date | None
    last_updated: datetime | None  # the doctor's latest recorded change


def _last_updated() -> Any:
    return (
        select(func.max(DoctorEvent.recorded_at))
        .where(DoctorEvent.gmc_number == GmcConnection.gmc_number)
        .scalar_subquery()
    )


def _select() -> Any:
    return select(
        GmcConnection.gmc_number,
        GmcConnection.designated_body_code,
        GmcConnection.first_name,
        GmcConnection.last_name,
        GmcConnection.date_added,
        _last_updated().label("last_updated"),
    )


def _doctor(row: Any) -> ConnectedDoctor:
    last_updated = row.last_updated
    if isinstance(last_updated, str):  # SQLite gives an aggregate of a moment back as text
        last_updated = datetime.fromisoformat(last_updated)
    if last_updated is not None and last_updated.tzinfo is None:  # stored in UTC (UtcDateTime)
        last_updated = last_updated.replace(tzinfo=UTC)
    return ConnectedDoctor(
        row.gmc_number, row.designated_body_code, row.first_name, row.last_name, row.date_added, last_updated
    )


def connected_doctors(
    context: Context,
    designated_body: str,
    updated: tuple[str, datetime] | None,
    page: int,
    count: int,
) -> Page[ConnectedDoctor]:
    """The doctors GMC has connected to one of the actor's bodies, in GMC-number order (a page
    of ``count``), optionally only those whose latest change compares so (``updated``: a
    COMPARISONS prefix and a moment)."""
    with context.reads() as session:
        code = visible_body(session, context.actor, designated_body).code
        statement = _select().where(GmcConnection.designated_body_code == code)
        if updated is not None:
            prefix, moment = updated
            statement = statement.where(COMPARISONS[prefix](_last_updated(), moment))
        total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
        rows = session.execute(statement.order_by(GmcConnection.gmc_number).offset((page - 1) * count).limit(count))
        return Page([_doctor(row) for row in rows], total, page, count)


def connected_doctor(context: Context, number: str) -> ConnectedDoctor:
    """One doctor GMC has connected to one of the actor's bodies (NotFound otherwise)."""
    number = checked_gmc_number(number)
    with context.reads() as session:
        row = session.execute(_select().where(GmcConnection.gmc_number == number)).first()
        if row is None or not _sees(context, row.designated_body_code):
            raise NotFound(f"no PractitionerRole {number} in your designated bodies", field="id")
        return _doctor(row)


def _sees(context: Context, code: str) -> bool:
    return context.actor.national or code in context.actor.designated_bodies
