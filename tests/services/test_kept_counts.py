"""A body's queue counts, kept in memory between pages while no view row has changed: after every
kind of write (a sync, a hide, an unhide, archiving and restoring) the tabs say what the view rows
hold, and a transaction that fails to write leaves the kept counts in use."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import delete, func, select, update

from reval.clock import utcnow
from reval.models import DoctorVisibility, ViewsVersion
from reval.reconcile.archive import archive_doctors
from reval.reconcile.common import EventLog
from reval.reconcile.sources import MassChangeGuard
from reval.reconcile.sync import SyncControls
from reval.reconcile.views_version import views_written
from reval.refusals import NotFound
from reval.rules import Queue, Ready
from reval.services.context import Actor, Context, Role
from reval.services.hides import hide_doctor, unhide_doctor
from reval.services.queues import (
    TAB_QUEUES,
    QueueFilters,
    QueueTab,
    QueueView,
    _body_counts,
    queue_counts,
    queue_page,
)
from tests.factories import (
    EAST_OF_ENGLAND,
    WESSEX,
    gmc_doctor,
    person,
    programme,
    sync_snapshots,
)

AS_OF = date(2026, 11, 21)
CONNECTED, NOT_CONNECTED, NOT_IN_TIS, ELSEWHERE = "1000001", "1000002", "1000003", "1000004"


def sync(sessions, files, name: str, as_of: date, without: str | None = None, **controls) -> dict:
    """East's three doctors (connected as they should be, ready to connect, ready to disconnect)
    and one of Wessex's; ``without``: that doctor gone from both sources."""
    gmc_lists = {
        EAST_OF_ENGLAND: [gmc_doctor(CONNECTED), gmc_doctor(NOT_IN_TIS)],
        WESSEX: [gmc_doctor(ELSEWHERE)],
    }
    people = [
        person(CONNECTED, programme(EAST_OF_ENGLAND, end="2028-08-01"), person_id=1),
        person(NOT_CONNECTED, programme(EAST_OF_ENGLAND, end="2028-08-01"), person_id=2),
        person(ELSEWHERE, programme(WESSEX, end="2028-08-01"), person_id=4),
    ]
    gmc_lists = {
        code: [d for d in doctors if d["GMCReferenceNumber"] != without] for code, doctors in gmc_lists.items()
    }
    people = [p for p in people if p["gmcNumber"] != without]
    controls_allowing = SyncControls(guard=MassChangeGuard(allowed=True), **controls)  # four doctors: one is a lot
    return sync_snapshots(sessions, files, gmc_lists, people, f"-{name}", as_of=as_of, controls=controls_allowing)


def admin(sessions, bodies: frozenset[str] = frozenset({EAST_OF_ENGLAND, WESSEX})) -> Context:
    return Context(sessions, sessions, Actor("Ann Admin", Role.ADMIN, bodies))


def shown(sessions, code: str = EAST_OF_ENGLAND) -> tuple[dict[QueueTab, int], dict[Ready, int]]:
    counts = queue_counts(admin(sessions), code, QueueFilters())
    return counts.tabs, counts.ready


def held(sessions, code: str = EAST_OF_ENGLAND) -> tuple[dict[QueueTab, int], dict[Ready, int]]:
    """What the body's view rows hold, counted here and now."""
    visibility = DoctorVisibility.__table__.c
    with sessions() as session:
        rows = session.execute(
            select(visibility.queue, visibility.ready, func.count())
            .where(visibility.designated_body_code == code)
            .group_by(visibility.queue, visibility.ready)
        ).all()
    tabs = dict.fromkeys(TAB_QUEUES, 0)
    tab_of = {queue.value: tab for tab, queue in TAB_QUEUES.items()}
    ready = dict.fromkeys(Ready, 0)
    for queue, readiness, count in rows:
        tabs[tab_of[queue]] += count
        if queue == Queue.DISCREPANCY.value and readiness:
            ready[Ready(readiness)] += count
    return tabs, ready


def assert_shown_as_held(sessions, code: str = EAST_OF_ENGLAND) -> None:
    tabs, ready = shown(sessions, code)
    held_tabs, held_ready = held(sessions, code)
    assert {tab: count for tab, count in tabs.items() if tab in held_tabs} == held_tabs
    assert ready == held_ready


def token(sessions) -> str | None:
    with sessions() as session:
        return session.scalar(select(ViewsVersion.token))


def test_the_counts_follow_every_write_to_the_views(sessions, files):
    sync(sessions, files, "first", AS_OF)
    first = shown(sessions)
    assert first[0][QueueTab.DISCREPANCIES] == 2 and first[1] == {Ready.CONNECT: 1, Ready.DISCONNECT: 1}
    assert_shown_as_held(sessions)
    assert shown(sessions) == first  # kept: the same again

    hide_doctor(admin(sessions), NOT_CONNECTED, EAST_OF_ENGLAND, "on leave")
    assert shown(sessions)[0][QueueTab.HIDDEN] == 1
    assert_shown_as_held(sessions)

    unhide_doctor(admin(sessions), NOT_CONNECTED, EAST_OF_ENGLAND)
    assert shown(sessions) == first

    # The next sync: the doctor unknown to TIS leaves GMC's list too.
    sync(sessions, files, "second", AS_OF + timedelta(days=1), without=NOT_IN_TIS)
    assert shown(sessions) != first
    assert_shown_as_held(sessions)

    # A year on, that doctor is archived out of every view; back in the sources, restored.
    later = AS_OF + timedelta(days=367)
    assert sync(sessions, files, "third", later, without=NOT_IN_TIS, archive_after_days=365)["archived"] == 1
    assert_shown_as_held(sessions)
    assert sync(sessions, files, "fourth", later + timedelta(days=1))["restored"] == 1
    assert shown(sessions) == first
    assert_shown_as_held(sessions)
    assert_shown_as_held(sessions, WESSEX)


def test_counts_are_kept_until_a_write_commits_and_a_failed_write_keeps_them(sessions, files, monkeypatch):
    sync(sessions, files, "first", AS_OF)
    before, kept_at = shown(sessions), token(sessions)
    assert kept_at is not None

    # A row changed behind Reval's back (no writer of views does this): the kept counts stand,
    # which is how a page is spared the count.
    with sessions.begin() as session:
        session.execute(
            update(DoctorVisibility)
            .where(DoctorVisibility.gmc_number == NOT_IN_TIS, DoctorVisibility.designated_body_code == EAST_OF_ENGLAND)
            .values(queue=Queue.HISTORIC.value)
        )
    assert shown(sessions) == before

    # A hide that fails after it has written the doctor's view rolls back, token and all.
    def failing(*args):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("reval.reconcile.hides.note_last_changed_by", failing)
    with pytest.raises(RuntimeError):
        hide_doctor(admin(sessions), CONNECTED, EAST_OF_ENGLAND, "on leave")
    assert token(sessions) == kept_at
    assert shown(sessions) == before

    monkeypatch.undo()
    hide_doctor(admin(sessions), CONNECTED, EAST_OF_ENGLAND, "on leave")
    assert token(sessions) != kept_at
    assert_shown_as_held(sessions)  # counted again: the row changed above included


def test_a_savepoint_rolled_back_leaves_the_views_written_before_it_to_replace_the_token(sessions, files):
    sync(sessions, files, "first", AS_OF)
    before = token(sessions)
    with sessions.begin() as session:
        views_written(session)
        session.execute(
            update(DoctorVisibility).where(DoctorVisibility.gmc_number == NOT_IN_TIS).values(queue=Queue.HISTORIC.value)
        )
        session.begin_nested().rollback()
        session.begin_nested().commit()
        assert session.scalar(select(ViewsVersion.token)) == before  # replaced only as the whole commits
    assert token(sessions) != before
    assert_shown_as_held(sessions)


def test_with_no_token_stored_every_page_counts(sessions, files):
    sync(sessions, files, "first", AS_OF)
    shown(sessions)
    with sessions.begin() as session:
        session.execute(delete(ViewsVersion))
        session.execute(
            update(DoctorVisibility)
            .where(DoctorVisibility.gmc_number == NOT_IN_TIS, DoctorVisibility.designated_body_code == EAST_OF_ENGLAND)
            .values(queue=Queue.HISTORIC.value)
        )
    assert_shown_as_held(sessions)
    assert shown(sessions)[0][QueueTab.HISTORIC] == 1


def test_a_filtered_count_is_never_the_kept_one(sessions, files):
    sync(sessions, files, "first", AS_OF)
    shown(sessions)
    with sessions.begin() as session:
        session.execute(
            update(DoctorVisibility)
            .where(DoctorVisibility.gmc_number == NOT_IN_TIS, DoctorVisibility.designated_body_code == EAST_OF_ENGLAND)
            .values(queue=Queue.HISTORIC.value)
        )
    filtered = queue_counts(admin(sessions), EAST_OF_ENGLAND, QueueFilters(q="100"))
    assert filtered.tabs[QueueTab.HISTORIC] == 1


def test_kept_counts_are_only_shown_to_those_who_may_see_the_body(sessions, files):
    sync(sessions, files, "first", AS_OF)
    shown(sessions)  # East's counts kept
    with sessions() as session, pytest.raises(NotFound):  # the counts' own check, not the page's
        _body_counts(session, admin(sessions, frozenset({WESSEX})), EAST_OF_ENGLAND, QueueFilters())


def test_archiving_on_its_own_replaces_the_token(sessions, files):
    """A sync archives after deciding, in the same transaction: archiving says for itself that it
    writes views, so it never leans on the decisions before it having said so."""
    sync(sessions, files, "first", AS_OF)
    sync(sessions, files, "second", AS_OF + timedelta(days=1), without=NOT_IN_TIS)
    shown(sessions)
    later = AS_OF + timedelta(days=367)
    with sessions.begin() as session:
        events = EventLog(recorded_at=utcnow(), as_of=later, sync_run_id=None)
        assert archive_doctors(session, later, 365, events).archived == 1
    assert_shown_as_held(sessions)


def test_a_page_of_a_queue_or_of_every_queue_totals_what_the_rows_hold(sessions, files):
    sync(sessions, files, "first", AS_OF)
    hide_doctor(admin(sessions), CONNECTED, EAST_OF_ENGLAND, "on leave")
    held_tabs, _ = held(sessions)
    for tab, queue in TAB_QUEUES.items():
        assert queue_page(admin(sessions), QueueView(EAST_OF_ENGLAND, queue)).total == held_tabs[tab]
    assert queue_page(admin(sessions), QueueView(EAST_OF_ENGLAND)).total == sum(held_tabs.values())
    failed = queue_page(admin(sessions), QueueView.of_tab(QueueTab.FAILED_UPDATES, EAST_OF_ENGLAND))
    assert failed.total == 0
