"""Reading decisions back: the export, a doctor's explanation and history."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterator

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from reval.designated_bodies import OwnerDirectory
from reval.models import Doctor, DoctorEvent, DoctorHide, DoctorVisibility, GmcConnection, TisPerson
from reval.reconcile.common import RefusedRequest
from reval.reconcile.connections import numbers_with_failed_update
from reval.reconcile.decisions import situation_of
from reval.reconcile.reference import configured_designated_bodies
from reval.rules import HIDDEN_BY_ADMIN, Explanation, Queue, RuleEngine
from reval.validation import gmc_number

EXPORT_FIELDS = (
    "gmcReferenceNumber", "queue", "reason", "visibleTo", "designatedBody", "programmeOwnerDesignatedBodies",
    "hiddenFor", "firstName", "lastName", "tisPersonIds", "gmcUpdateFailed",
)


def export_rows(session: Session, queue: str | None = None, designated_body: str | None = None) -> Iterator[dict[str, Any]]:
    """Doctors as the export shows them; for one body, only those it sees, with its own hides applied."""
    hidden_for: dict[str, list[str]] = defaultdict(list)
    for number, code in session.execute(
        select(DoctorHide.gmc_number, DoctorHide.designated_body_code)
        .where(DoctorHide.ended_at.is_(None))
        .order_by(DoctorHide.designated_body_code)
    ):
        hidden_for[number].append(code)
    update_failed = numbers_with_failed_update(session)

    statement = select(Doctor).order_by(Doctor.gmc_number)
    if designated_body is not None:
        statement = statement.join(DoctorVisibility, DoctorVisibility.gmc_number == Doctor.gmc_number).where(
            DoctorVisibility.designated_body_code == designated_body
        )
    for doctor in session.scalars(statement.execution_options(yield_per=2000)):
        row = {
            "gmcReferenceNumber": doctor.gmc_number,
            "queue": doctor.queue,
            "reason": doctor.reason,
            "visibleTo": list(doctor.visible_to),
            "designatedBody": doctor.designated_body_code,
            "programmeOwnerDesignatedBodies": list(doctor.programme_owner_designated_bodies),
            "hiddenFor": hidden_for.get(doctor.gmc_number, []),
            "firstName": doctor.first_name,
            "lastName": doctor.last_name,
            "tisPersonIds": list(doctor.tis_person_ids),
            "gmcUpdateFailed": doctor.gmc_number in update_failed,
        }
        if designated_body is not None and designated_body in row["hiddenFor"]:
            row["queue"], row["reason"] = Queue.HIDDEN.value, HIDDEN_BY_ADMIN
        if queue is None or row["queue"] == queue:
            yield row


@dataclass
class DoctorExplanation:
    gmc_number: str
    explanation: Explanation
    stored: Doctor | None
    connection: GmcConnection | None
    hides: list[DoctorHide]


def explain_doctor(session: Session, number: str, as_of: date, engine: RuleEngine) -> DoctorExplanation:
    number = gmc_number("GMC number", number)
    connection = session.get(GmcConnection, number)
    people = session.execute(
        select(TisPerson.__table__).where(TisPerson.gmc_number == number).order_by(TisPerson.tis_person_id)
    ).all()
    stored = session.get(Doctor, number)
    if connection is None and not people and stored is None:
        raise RefusedRequest(f"GMC number {number} is not known to GMC, TIS or any earlier sync")
    last_connected_before = stored.last_connected_designated_body_code if stored is not None else None
    situation = situation_of(connection, people, last_connected_before, OwnerDirectory(configured_designated_bodies(session)))
    hides = list(
        session.scalars(select(DoctorHide).where(DoctorHide.gmc_number == number).order_by(DoctorHide.id))
    )
    return DoctorExplanation(number, engine.explain(situation, as_of), stored, connection, hides)


def doctor_history(session: Session, number: str) -> list[DoctorEvent]:
    number = gmc_number("GMC number", number)
    return list(session.scalars(select(DoctorEvent).where(DoctorEvent.gmc_number == number).order_by(DoctorEvent.id)))


def queue_counts_by_body(session: Session) -> dict[str, dict[str, int]]:
    """For each designated body, how many doctors it sees in each queue, its own hides applied."""
    active_hide = (
        select(DoctorHide.gmc_number, DoctorHide.designated_body_code)
        .where(DoctorHide.ended_at.is_(None))
        .subquery()
    )
    queue_seen = case((active_hide.c.gmc_number.is_not(None), Queue.HIDDEN.value), else_=Doctor.queue)
    statement = (
        select(DoctorVisibility.designated_body_code, queue_seen, func.count())
        .join(Doctor, Doctor.gmc_number == DoctorVisibility.gmc_number)
        .outerjoin(
            active_hide,
            (active_hide.c.gmc_number == DoctorVisibility.gmc_number)
            & (active_hide.c.designated_body_code == DoctorVisibility.designated_body_code),
        )
        .group_by(DoctorVisibility.designated_body_code, queue_seen)
    )
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {queue.value: 0 for queue in Queue})
    for code, queue, count in session.execute(statement):
        counts[code][queue] = count
    return dict(counts)
