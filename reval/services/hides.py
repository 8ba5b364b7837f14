"""Hiding a doctor from one designated body's queues, and undoing it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from reval.models import DoctorHide
from reval.reconcile.hides import end_expired_hides, record_hide, record_unhide
from reval.services.access import checked_gmc_number, may_see_doctor, not_visible, require_may_act, visible_body
from reval.services.context import Context


def hide_doctor(context: Context, number: str, body: str, reason: str | None, until: date | None = None) -> DoctorHide:
    """Hides the doctor from ``body`` (one of the actor's) until ``until`` (or until unhidden, or
    until their GMC connection or programme owners change)."""
    with context.sessions.begin() as session:
        number, code = _acting_for(session, context, number, body)
        return record_hide(
            session, number, code, reason, until, context.actor.name, as_of=context.today(), now=context.now()
        )


def unhide_doctor(context: Context, number: str, body: str) -> DoctorHide:
    with context.sessions.begin() as session:
        number, code = _acting_for(session, context, number, body)
        return record_unhide(session, number, code, context.actor.name, as_of=context.today(), now=context.now())


def _acting_for(session: Session, context: Context, number: str, body: str) -> tuple[str, str]:
    """The doctor's number and the body's code, once the actor may act for that body on them."""
    require_may_act(context.actor)
    number = checked_gmc_number(number)
    code = visible_body(session, context.actor, body).code
    if not may_see_doctor(session, context.actor, number):
        raise not_visible(number)
    return number, code


def end_expired_hides_now(sessions: sessionmaker[Session], *, as_of: date, now: datetime) -> int:
    """Ends every hide whose until-date has come, deciding those doctors again (the unattended job
    between syncs); returns how many ended."""
    return end_expired_hides(sessions, as_of=as_of, now=now)


def active_hides(context: Context, body: str, numbers: Sequence[str]) -> dict[str, DoctorHide]:
    """The active hides of these doctors for ``body`` (one of the actor's), by GMC number."""
    with context.reads() as session:
        code = visible_body(session, context.actor, body).code
        hides = session.scalars(
            select(DoctorHide).where(
                DoctorHide.designated_body_code == code,
                DoctorHide.gmc_number.in_(list(numbers)),
                DoctorHide.ended_at.is_(None),
            )
        )
        return {hide.gmc_number: hide for hide in hides}
