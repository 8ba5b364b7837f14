"""Admins hiding a doctor for one designated body, and undoing it."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from reval.models import Doctor, DoctorHide, DoctorVisibility, DoctorVisibilityName
from reval.reconcile.changes import ChangeFeed
from reval.reconcile.common import EventKind, EventLog, Source, checked_person_name, refused_as_invalid
from reval.reconcile.decisions import hide_view, note_last_changed_by
from reval.reconcile.reference import configured_code
from reval.reconcile.sync import redecide_doctors
from reval.reconcile.views_version import views_written
from reval.refusals import Conflict, Invalid, NotFound
from reval.rules import HIDDEN_BY_ADMIN, Queue
from reval.validation import free_text, gmc_number

HIDE_REASON_LENGTH = 500


def known_doctor(session: Session, number: str) -> Doctor:
    with refused_as_invalid("gmcNumber"):
        number = gmc_number("GMC number", number)
    doctor = session.get(Doctor, number)
    if doctor is None:
        raise NotFound(f"GMC number {number} is not a doctor Reval knows; a sync must include them first")
    return doctor


def active_hide(session: Session, number: str, code: str) -> DoctorHide | None:
    return session.scalars(
        select(DoctorHide).where(
            DoctorHide.gmc_number == number, DoctorHide.designated_body_code == code, DoctorHide.ended_at.is_(None)
        )
    ).first()


def checked_hide_reason(reason: str | None) -> str:
    with refused_as_invalid("reason"):
        text = free_text("reason", reason, HIDE_REASON_LENGTH)
    if text is None:
        raise Invalid("a hide needs a reason", field="reason")
    return text


def record_hide(
    session: Session,
    number: str,
    designated_body: str,
    reason: str | None,  # checked here
    until: date | None,
    hidden_by: str,
    as_of: date,
    now: datetime,
) -> DoctorHide:
    reason = checked_hide_reason(reason)
    hidden_by = checked_person_name("hiddenBy", hidden_by)
    doctor = known_doctor(session, number)
    code = configured_code(session, designated_body)
    if until is not None and until <= as_of:
        raise Invalid(
            f"until-date {until.isoformat()} is not after {as_of.isoformat()}; a hide must end in the future",
            field="until",
        )
    if code not in doctor.visible_to:
        raise Invalid(f"doctor {doctor.gmc_number} is not visible to {code}, so {code} cannot hide them")
    already_hidden = Conflict(
        f"doctor {doctor.gmc_number} is already hidden for {code}; unhide them first to change the hide"
    )
    if active_hide(session, doctor.gmc_number, code) is not None:
        raise already_hidden
    hide = DoctorHide(
        gmc_number=doctor.gmc_number,
        designated_body_code=code,
        reason=reason,
        until=until,
        hidden_by=hidden_by,
        hidden_at=now,
        gmc_designated_body_code=doctor.designated_body_code,
        programme_owner_designated_bodies=list(doctor.programme_owner_designated_bodies),
    )
    session.add(hide)
    try:
        session.flush()
    except IntegrityError:  # another hide of this doctor for this body committed since the check above
        raise already_hidden from None
    _set_view(session, doctor, code, (Queue.HIDDEN.value, HIDDEN_BY_ADMIN), EventKind.HIDE, now)
    note_last_changed_by(session, doctor.gmc_number, hidden_by)
    events = EventLog(recorded_at=now, as_of=as_of, sync_run_id=None)
    events.add(
        doctor.gmc_number, Source.ADMIN, EventKind.HIDE, None, hide_view(hide), f"hidden for {code} by {hidden_by}"
    )
    events.flush(session, force=True)
    return hide


def record_unhide(
    session: Session, number: str, designated_body: str, unhidden_by: str, as_of: date, now: datetime
) -> DoctorHide:
    unhidden_by = checked_person_name("unhiddenBy", unhidden_by)
    doctor = known_doctor(session, number)
    code = configured_code(session, designated_body)
    hide = active_hide(session, doctor.gmc_number, code)
    if hide is None:
        raise Conflict(f"doctor {doctor.gmc_number} is not hidden for {code}")
    hide.ended_at = now
    hide.end_reason = f"unhidden by {unhidden_by}"
    _set_view(session, doctor, code, (doctor.queue, doctor.reason), EventKind.UNHIDE, now)
    note_last_changed_by(session, doctor.gmc_number, unhidden_by)
    events = EventLog(recorded_at=now, as_of=as_of, sync_run_id=None)
    events.add(doctor.gmc_number, Source.ADMIN, EventKind.UNHIDE, hide_view(hide), None, hide.end_reason)
    events.flush(session, force=True)
    return hide


def _set_view(
    session: Session, doctor: Doctor, code: str, view: tuple[str, str], kind: EventKind, now: datetime
) -> None:
    """What one body sees of a doctor, after its admin hid or unhid them, and the changes feed's
    row saying so."""
    queue, reason = view
    views_written(session)
    session.execute(
        update(DoctorVisibility)
        .where(DoctorVisibility.gmc_number == doctor.gmc_number, DoctorVisibility.designated_body_code == code)
        .values(queue=queue, reason=reason)
    )
    session.execute(
        update(DoctorVisibilityName)
        .where(DoctorVisibilityName.gmc_number == doctor.gmc_number, DoctorVisibilityName.designated_body_code == code)
        .values(queue=queue)
    )
    feed = ChangeFeed(session)
    feed.record(doctor.gmc_number, {}, {code: view}, kind, now)
    feed.flush()


def end_expired_hides(sessions: sessionmaker[Session], as_of: date, now: datetime) -> int:
    """Ends every hide whose until-date has come and decides those doctors again; returns how many ended.

    A sync does this too; this runs between syncs so a hide ends on its day whatever else happens.
    """
    with sessions.begin() as session:
        numbers = set(
            session.scalars(
                select(DoctorHide.gmc_number).where(DoctorHide.ended_at.is_(None), DoctorHide.until <= as_of)
            )
        )
        if not numbers:
            return 0
        events = EventLog(recorded_at=now, as_of=as_of, sync_run_id=None)
        return redecide_doctors(session, numbers, source=Source.ADMIN, as_of=as_of, now=now, events=events).hides_ended
