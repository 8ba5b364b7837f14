"""The use cases themselves, as every entry point calls them: who may see and do what, and the
refusals each kind of bad request gets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reval.designated_bodies import DesignatedBody
from reval.refusals import Conflict, Invalid, NotFound, NotPermitted
from reval.services.connections import action_of, request_connection_change
from reval.services.context import Actor, Context, Role
from reval.services.hides import hide_doctor, unhide_doctor
from reval.services.idempotency import Answer, StillAnswering, answered_once
from reval.services.queues import QueueTab, QueueView, queue_page
from reval.services.reference import configured_codes, replace_configured_bodies
from reval.services.runs import list_runs, run_view
from reval.services.terms import RunStatus
from tests.factories import EAST_OF_ENGLAND, WESSEX, gmc_doctor, gmc_snapshot, person, programme, tis_snapshot

EAST_DOCTOR, WESSEX_DOCTOR = "1000001", "1000002"


@pytest.fixture
def synced(reval, files):
    """One doctor connected to East of England and one to Wessex, each in a programme of their body."""
    gmc = gmc_snapshot(
        files / "gmc.json", {EAST_OF_ENGLAND: [gmc_doctor(EAST_DOCTOR)], WESSEX: [gmc_doctor(WESSEX_DOCTOR)]}
    )
    tis = tis_snapshot(
        files / "tis.json",
        [person(EAST_DOCTOR, programme(EAST_OF_ENGLAND)), person(WESSEX_DOCTOR, programme(WESSEX))],
    )
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", "2026-11-21")


def as_(sessions, role: Role, *bodies: str) -> Context:
    return Context(sessions, sessions, Actor(f"a {role.value}", role, frozenset(bodies)))


def test_a_body_s_queue_page_holds_only_the_doctors_it_sees(synced, sessions):
    page = queue_page(
        as_(sessions, Role.VIEWER, EAST_OF_ENGLAND), QueueView.of_tab(QueueTab.CONNECTED, EAST_OF_ENGLAND)
    )
    assert [entry.gmc_number for entry in page.items] == [EAST_DOCTOR]
    assert page.total == 1


def test_another_body_s_queue_is_not_found(synced, sessions):
    with pytest.raises(NotFound, match=WESSEX):
        queue_page(as_(sessions, Role.VIEWER, EAST_OF_ENGLAND), QueueView.of_tab(QueueTab.CONNECTED, WESSEX))


def test_a_viewer_may_not_hide_a_doctor(synced, sessions):
    with pytest.raises(NotPermitted):
        hide_doctor(as_(sessions, Role.VIEWER, EAST_OF_ENGLAND), EAST_DOCTOR, EAST_OF_ENGLAND, "on leave")


def test_hiding_a_doctor_another_body_sees_is_answered_as_not_found(synced, sessions):
    with pytest.raises(NotFound, match=WESSEX_DOCTOR):
        hide_doctor(as_(sessions, Role.ADMIN, EAST_OF_ENGLAND), WESSEX_DOCTOR, EAST_OF_ENGLAND, "on leave")


def test_a_bad_gmc_number_is_refused_naming_the_field(synced, sessions):
    with pytest.raises(Invalid) as refused:
        hide_doctor(as_(sessions, Role.ADMIN, EAST_OF_ENGLAND), "12", EAST_OF_ENGLAND, "on leave")
    assert refused.value.field == "gmcNumber"


def test_a_hide_is_refused_twice_and_an_unhide_once_it_has_ended(synced, sessions):
    admin = as_(sessions, Role.ADMIN, EAST_OF_ENGLAND)
    hide = hide_doctor(admin, EAST_DOCTOR, EAST_OF_ENGLAND.lower(), "on leave")
    assert hide.designated_body_code == EAST_OF_ENGLAND and hide.ended_at is None
    with pytest.raises(Conflict):
        hide_doctor(admin, EAST_DOCTOR, EAST_OF_ENGLAND, "on leave")
    assert unhide_doctor(admin, EAST_DOCTOR, EAST_OF_ENGLAND).ended_at is not None
    with pytest.raises(Conflict, match="not hidden"):
        unhide_doctor(admin, EAST_DOCTOR, EAST_OF_ENGLAND)


def test_a_viewer_may_not_ask_gmc_for_a_change(synced, sessions):
    with pytest.raises(NotPermitted):
        request_connection_change(
            as_(sessions, Role.VIEWER, EAST_OF_ENGLAND), EAST_DOCTOR, EAST_OF_ENGLAND, action_of("REMOVE"), "1"
        )


def test_a_change_for_a_doctor_another_body_sees_is_answered_as_not_found(synced, sessions):
    with pytest.raises(NotFound, match=WESSEX_DOCTOR):
        request_connection_change(
            as_(sessions, Role.ADMIN, EAST_OF_ENGLAND), WESSEX_DOCTOR, EAST_OF_ENGLAND, action_of("REMOVE"), "1"
        )


def test_an_action_other_than_add_or_remove_is_invalid():
    with pytest.raises(Invalid, match="'MOVE' is not ADD or REMOVE"):
        action_of("MOVE")


def test_runs_are_listed_newest_first_with_their_summary_as_people_read_it(synced, reval, files, sessions):
    reval("sync", "--gmc-file", files / "gmc.json", "--tis-file", files / "tis.json", "--as-of", "2026-11-22")
    runs = list_runs(as_(sessions, Role.VIEWER, EAST_OF_ENGLAND), 20)
    assert [run.as_of.isoformat() for run in runs] == ["2026-11-22", "2026-11-21"]
    view = run_view(runs[1])
    assert view["status"] == RunStatus.SUCCEEDED and view["asOf"] == "2026-11-21"
    assert view["sources"]["gmc"]["fetched"] == [EAST_OF_ENGLAND, WESSEX]


def test_a_run_listing_longer_than_a_thousand_is_refused(sessions):
    with pytest.raises(Invalid) as refused:
        list_runs(as_(sessions, Role.VIEWER), 1001)
    assert refused.value.field == "limit"


def test_claimed_bodies_are_kept_when_configured_in_their_configured_spelling(sessions):
    assert configured_codes(sessions, [WESSEX.lower(), "1-NOWHERE", EAST_OF_ENGLAND]) == [EAST_OF_ENGLAND, WESSEX]


def test_only_national_users_configure_the_designated_bodies(sessions):
    with pytest.raises(NotPermitted):
        replace_configured_bodies(as_(sessions, Role.ADMIN, WESSEX), [DesignatedBody("1-X", "X", "X")])
    national = as_(sessions, Role.NATIONAL)
    replace_configured_bodies(national, [DesignatedBody("1-X", "X", "X")])
    assert configured_codes(sessions, ["1-x", WESSEX]) == ["1-X"]


NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_a_key_used_again_for_the_same_request_answers_the_first_answer_without_acting(sessions):
    answers = iter([Answer(201, '{"id": 1}', "/requests/1"), Answer(201, '{"id": 2}', "/requests/2")])

    def once_more() -> Answer:
        return answered_once(
            sessions, caller="iss sub", key="k1", fingerprint="f", now=NOW, answer=lambda: next(answers)
        )

    assert once_more() == Answer(201, '{"id": 1}', "/requests/1")
    assert once_more() == Answer(201, '{"id": 1}', "/requests/1", replayed=True)


def test_a_key_used_again_for_another_request_is_invalid(sessions):
    answered_once(sessions, caller="c", key="k", fingerprint="f", now=NOW, answer=lambda: Answer(201, "{}", "/r/1"))
    with pytest.raises(Invalid) as refused:
        answered_once(sessions, caller="c", key="k", fingerprint="g", now=NOW, answer=lambda: Answer(201, "{}", "/r/2"))
    assert refused.value.field == "Idempotency-Key"


def test_a_key_is_refused_while_its_first_request_is_answered_and_freed_if_that_fails(sessions):
    def first() -> Answer:
        with pytest.raises(StillAnswering):
            answered_once(sessions, caller="c", key="k", fingerprint="f", now=NOW, answer=first)
        raise RuntimeError("GMC fell over")

    with pytest.raises(RuntimeError):
        answered_once(sessions, caller="c", key="k", fingerprint="f", now=NOW, answer=first)
    again = answered_once(
        sessions, caller="c", key="k", fingerprint="f", now=NOW, answer=lambda: Answer(201, "{}", "/r")
    )
    assert again == Answer(201, "{}", "/r")
