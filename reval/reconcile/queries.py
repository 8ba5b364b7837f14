"""Reading one doctor back as both sources last said and the rules decided."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reval.designated_bodies import OwnerDirectory
from reval.models import ConnectionRequest, Doctor, DoctorEvent, DoctorHide, GmcConnection, RejectedTisPerson, TisPerson
from reval.reconcile.decisions import situation_of
from reval.reconcile.reference import configured_designated_bodies
from reval.rules import Explanation, RuleEngine


@dataclass(frozen=True)
class DoctorRecords:
    """Everything stored about one GMC number."""

    gmc_number: str
    stored: Doctor | None  # the current decision
    connection: GmcConnection | None
    tis_people: Sequence[Any]  # tis_person rows, in TIS id order
    hides: list[DoctorHide]  # active and ended, oldest first
    requests: list[ConnectionRequest]  # oldest first
    events: list[DoctorEvent]  # the history, oldest first
    # TIS people with this GMC number whose every record was rejected (none of theirs is held)
    rejected_tis_people: Sequence[RejectedTisPerson] = ()

    @property
    def known(self) -> bool:
        return (
            self.stored is not None
            or self.connection is not None
            or bool(self.tis_people)
            or bool(self.rejected_tis_people)
        )


def doctor_records(session: Session, number: str) -> DoctorRecords:
    return DoctorRecords(
        gmc_number=number,
        stored=session.get(Doctor, number),
        connection=session.get(GmcConnection, number),
        tis_people=session.execute(
            select(TisPerson.__table__).where(TisPerson.gmc_number == number).order_by(TisPerson.tis_person_id)
        ).all(),
        hides=list(session.scalars(select(DoctorHide).where(DoctorHide.gmc_number == number).order_by(DoctorHide.id))),
        requests=list(
            session.scalars(
                select(ConnectionRequest).where(ConnectionRequest.gmc_number == number).order_by(ConnectionRequest.id)
            )
        ),
        events=doctor_history(session, number),
        rejected_tis_people=list(
            session.scalars(
                select(RejectedTisPerson)
                .where(RejectedTisPerson.gmc_number == number)
                .order_by(RejectedTisPerson.tis_person_id)
            )
        ),
    )


def explain_records(session: Session, records: DoctorRecords, as_of: date, engine: RuleEngine) -> Explanation:
    """What the rules decide for these records on ``as_of``, with every row tried."""
    stored = records.stored
    last_connected_before = stored.last_connected_designated_body_code if stored is not None else None
    situation = situation_of(
        records.connection,
        records.tis_people,
        last_connected_before,
        OwnerDirectory(configured_designated_bodies(session)),
        [person.owners for person in records.rejected_tis_people],
    )
    return engine.explain(situation, as_of)


def doctor_history(session: Session, number: str) -> list[DoctorEvent]:
    return list(session.scalars(select(DoctorEvent).where(DoctorEvent.gmc_number == number).order_by(DoctorEvent.id)))
