"""Admins hiding a doctor for one designated body, and undoing it."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reval.models import Doctor, DoctorHide
from reval.reconcile.common import EventKind, EventLog, RefusedRequest, Source
from reval.reconcile.decisions import hide_view
from reval.reconcile.reference import configured_code
from reval.reconcile.sync import redecide_doctors
from reval.validation import gmc_number


def _known_doctor(session: Session, number: str) -> Doctor:
    doctor = session.get(Doctor, gmc_number("GMC number", number))
    if doctor is None:
        raise RefusedRequest(f"GMC number {number} is not a doctor Reval knows; run a sync that includes it first")
    return doctor


def _active_hide(session: Session, number: str, code: str) -> DoctorHide | None:
    return session.scalars(
        select(DoctorHide).where(
            DoctorHide.gmc_number == number, DoctorHide.designated_body_code == code, DoctorHide.ended_at.is_(None)
        )
    ).first()


def record_hide(
    session: Session, number: str, designated_body: str, reason: str, until: date | None, hidden_by: str,
    as_of: date, now: datetime,
) -> DoctorHide:
    doctor = _known_doctor(session, number)
    code = configured_code(session, designated_body)
    if not reason or not reason.strip():
        raise RefusedRequest("a hide needs a reason; give one with --reason")
    if until is not None and until <= as_of:
        raise RefusedRequest(f"until-date {until.isoformat()} is not after {as_of.isoformat()}; a hide must end in the future")
    if code not in doctor.visible_to:
        raise RefusedRequest(f"doctor {doctor.gmc_number} is not visible to {code}, so {code} cannot hide them")
    if _active_hide(session, doctor.gmc_number, code) is not None:
        raise RefusedRequest(f"doctor {doctor.gmc_number} is already hidden for {code}; unhide first to change the hide")
    hide = DoctorHide(
        gmc_number=doctor.gmc_number,
        designated_body_code=code,
        reason=reason.strip(),
        until=until,
        hidden_by=hidden_by,
        hidden_at=now,
        gmc_designated_body_code=doctor.designated_body_code,
        programme_owner_designated_bodies=list(doctor.programme_owner_designated_bodies),
    )
    session.add(hide)
    events = EventLog(recorded_at=now, as_of=as_of, sync_run_id=None)
    events.add(doctor.gmc_number, Source.ADMIN, EventKind.HIDE, None, hide_view(hide), f"hidden for {code} by {hidden_by}")
    events.flush(session, force=True)
    return hide


def record_unhide(session: Session, number: str, designated_body: str, unhidden_by: str, as_of: date, now: datetime) -> DoctorHide:
    doctor = _known_doctor(session, number)
    code = configured_code(session, designated_body)
    hide = _active_hide(session, doctor.gmc_number, code)
    if hide is None:
        raise RefusedRequest(f"doctor {doctor.gmc_number} is not hidden for {code}")
    hide.ended_at = now
    hide.end_reason = f"unhidden by {unhidden_by}"
    events = EventLog(recorded_at=now, as_of=as_of, sync_run_id=None)
    events.add(doctor.gmc_number, Source.ADMIN, EventKind.UNHIDE, hide_view(hide), None, hide.end_reason)
    events.flush(session, force=True)
    return hide


def end_expired_hides(sessions: sessionmaker[Session], as_of: date, now: datetime) -> int:
    """Ends every hide whose until-date has come and decides those doctors again; returns how many ended.

    A sync does this too; this runs between syncs so a hide ends on its day whatever else happens.
    """
    with sessions.begin() as session:
        numbers = set(session.scalars(
            select(DoctorHide.gmc_number).where(DoctorHide.ended_at.is_(None), DoctorHide.until <= as_of)
        ))
        if not numbers:
            return 0
        events = EventLog(recorded_at=now, as_of=as_of, sync_run_id=None)
        return redecide_doctors(session, numbers, source=Source.ADMIN, as_of=as_of, now=now, events=events).hides_ended
