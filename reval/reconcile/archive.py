"""Archiving doctors nobody holds: no GMC connection, no TIS person, and no change for a long
time (REVAL_ARCHIVE_AFTER_DAYS). Otherwise such a doctor stays HIDDEN, visible to nobody, for
ever, in every count. An archived doctor keeps their record and history but has no view in
any body's queues (so the queues' indexes never see them); the next sync that finds them in a
source again decides them, and so restores them (see decisions._record_decision)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from reval.models import (
    Doctor,
    DoctorEvent,
    DoctorHide,
    DoctorVisibility,
    DoctorVisibilityName,
    RejectedTisPerson,
    TisPerson,
)
from reval.reconcile.changes import ChangeFeed, doctor_views
from reval.reconcile.common import EventKind, EventLog, RowWriter, Source
from reval.reconcile.views_version import views_written

ARCHIVED_HIDE_END = "archived: no GMC connection, no TIS person"


@dataclass
class ArchiveOutcome:
    archived: int = 0
    left: Counter = field(default_factory=Counter)  # by the queue each archived doctor was in


def archivable(session: Session, as_of: date, after_days: int) -> list[Doctor]:
    """The doctors a sync on ``as_of`` archives: not archived yet, no GMC connection, no TIS
    person (nor one whose records were all rejected), and no history after ``after_days`` ago."""
    cutoff = as_of - timedelta(days=after_days)
    return list(
        session.scalars(
            select(Doctor)
            .where(
                Doctor.archived_on.is_(None),
                Doctor.designated_body_code.is_(None),
                # Implied by the history below, and what judges where there is none (a dry run's
                # scratch copy holds no history).
                Doctor.decided_as_of <= cutoff,
                ~exists().where(TisPerson.gmc_number == Doctor.gmc_number),
                ~exists().where(RejectedTisPerson.gmc_number == Doctor.gmc_number),
                ~exists().where(DoctorEvent.gmc_number == Doctor.gmc_number, DoctorEvent.as_of > cutoff),
            )
            .order_by(Doctor.gmc_number)
        )
    )


def archive_doctors(session: Session, as_of: date, after_days: int, events: EventLog) -> ArchiveOutcome:
    """Archives every archivable doctor: their views go (the changes feed tells each body that
    saw them), their hides end, and their history says so."""
    outcome = ArchiveOutcome()
    doctors = archivable(session, as_of, after_days)
    if not doctors:
        return outcome
    hides: dict[str, list[DoctorHide]] = defaultdict(list)
    for hide in session.scalars(select(DoctorHide).where(DoctorHide.ended_at.is_(None))):
        hides[hide.gmc_number].append(hide)
    views_written(session)
    views = RowWriter(session, DoctorVisibility.__table__, "gmc_number")
    names = RowWriter(session, DoctorVisibilityName.__table__, "gmc_number")
    feed = ChangeFeed(session)
    for doctor in doctors:
        number = doctor.gmc_number
        old_views = doctor_views(doctor, {hide.designated_body_code for hide in hides.get(number, ())})
        for hide in hides.get(number, ()):
            hide.ended_at, hide.end_reason = events.recorded_at, ARCHIVED_HIDE_END
        doctor.archived_on, doctor.unassigned = as_of, False
        views.delete(number)
        names.delete(number)
        feed.record(number, old_views, {}, EventKind.ARCHIVED, events.recorded_at)
        events.add(
            number,
            Source.SYNC,
            EventKind.ARCHIVED,
            {"queue": doctor.queue, "reason": doctor.reason},
            {"archivedOn": as_of.isoformat()},
            f"no GMC connection, no TIS person and no change for {after_days} days",
        )
        outcome.archived += 1
        outcome.left[doctor.queue] += 1
    for writer in (views, names, feed):
        writer.flush()
    events.flush(session, force=True)
    session.flush()
    return outcome
