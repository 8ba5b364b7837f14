"""The queues' filters the national UI has: ready for connection or disconnection, programme,
date ranges and who last changed a doctor; each narrows the pages, the tab counts and the CSV."""

from __future__ import annotations

from datetime import date

import pytest

from reval.refusals import Invalid
from reval.rules import Ready
from reval.services.context import Actor, Context, Role
from reval.services.hides import hide_doctor
from reval.services.queues import (
    QueueFilters,
    QueueTab,
    QueueView,
    SortKey,
    programme_names,
    queue_counts,
    queue_entries,
    queue_page,
    tab_counts,
)
from tests.factories import (
    EAST_OF_ENGLAND,
    THAMES_VALLEY,
    WESSEX,
    gmc_doctor,
    gmc_snapshot,
    person,
    programme,
    tis_snapshot,
)

CONNECTED, NOT_CONNECTED, NOT_IN_TIS = "1000001", "1000002", "1000003"
CONNECTED_PERSON, NOT_CONNECTED_PERSON = 501, 502  # the same people in every snapshot


@pytest.fixture
def synced(reval, files):
    """Connected as it should be; in a programme of the body but not connected (ready for
    connection); connected but unknown to TIS (ready for disconnection)."""
    sync_the_three(reval, files, "first")


def sync_the_three(reval, files, name: str, connected: dict | None = None, not_connected: dict | None = None) -> None:
    """Syncs the three doctors, the two in TIS in these programmes (or the first snapshot's)."""
    gmc = gmc_snapshot(
        files / f"gmc-{name}.json",
        {
            EAST_OF_ENGLAND: [
                gmc_doctor(CONNECTED, SubmissionDate="01/06/2027"),
                gmc_doctor(NOT_IN_TIS, SubmissionDate="01/02/2027"),
            ]
        },
    )
    tis = tis_snapshot(
        files / f"tis-{name}.json",
        [
            person(CONNECTED, connected or programme(EAST_OF_ENGLAND, end="2027-08-01"), person_id=CONNECTED_PERSON),
            person(
                NOT_CONNECTED,
                not_connected or programme(EAST_OF_ENGLAND, end="2028-08-01", kind="LAT", programmeName="Surgery"),
                person_id=NOT_CONNECTED_PERSON,
            ),
        ],
    )
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", "2026-11-21")


def admin(sessions) -> Context:
    return Context(sessions, sessions, Actor("Ann Admin", Role.ADMIN, frozenset({EAST_OF_ENGLAND})))


def numbers(sessions, tab: QueueTab, **filters: object) -> list[str]:
    view = QueueView.of_tab(tab, EAST_OF_ENGLAND, filters=QueueFilters(**filters))  # type: ignore[arg-type]
    return [entry.gmc_number for entry in queue_page(admin(sessions), view).items]


def test_ready_for_connection_and_disconnection_split_the_discrepancies(synced, sessions):
    assert numbers(sessions, QueueTab.DISCREPANCIES) == [NOT_CONNECTED, NOT_IN_TIS]
    assert numbers(sessions, QueueTab.DISCREPANCIES, ready="connect") == [NOT_CONNECTED]
    assert numbers(sessions, QueueTab.DISCREPANCIES, ready="disconnect") == [NOT_IN_TIS]
    assert ready_counts(sessions, QueueFilters()) == {Ready.CONNECT: 1, Ready.DISCONNECT: 1}
    # The other filters narrow the two counts too.
    assert ready_counts(sessions, QueueFilters(programme="Surgery")) == {Ready.CONNECT: 1, Ready.DISCONNECT: 0}
    # A readiness chosen narrows the tabs, not the two lists it is chosen from (counted together).
    counted = queue_counts(admin(sessions), EAST_OF_ENGLAND, QueueFilters(ready=Ready.DISCONNECT))
    assert counted.ready == {Ready.CONNECT: 1, Ready.DISCONNECT: 1}
    assert counted.tabs[QueueTab.DISCREPANCIES] == 1 and counted.tabs[QueueTab.CONNECTED] == 0


def ready_counts(sessions, filters):
    return queue_counts(admin(sessions), EAST_OF_ENGLAND, filters).ready


def test_a_filter_narrows_every_tab_count(synced, sessions):
    counts = tab_counts(admin(sessions), EAST_OF_ENGLAND, QueueFilters(ready=Ready.CONNECT))
    assert counts[QueueTab.DISCREPANCIES] == 1 and counts[QueueTab.CONNECTED] == 0
    counts = tab_counts(admin(sessions), EAST_OF_ENGLAND, QueueFilters(submitted_to=date(2027, 3, 1)))
    assert counts[QueueTab.DISCREPANCIES] == 1 and counts[QueueTab.CONNECTED] == 0


def test_programme_names_are_those_the_body_sees_and_filter_in_any_case(synced, sessions):
    assert programme_names(admin(sessions), EAST_OF_ENGLAND) == ["General Practice", "Surgery"]
    assert numbers(sessions, QueueTab.DISCREPANCIES, programme="surgery") == [NOT_CONNECTED]
    assert numbers(sessions, QueueTab.CONNECTED, programme="Surgery") == []


def test_date_ranges_include_their_ends(synced, sessions):
    assert numbers(sessions, QueueTab.DISCREPANCIES, submitted_from=date(2027, 2, 1)) == [NOT_IN_TIS]
    assert numbers(sessions, QueueTab.DISCREPANCIES, submitted_from=date(2027, 2, 2)) == []
    assert numbers(sessions, QueueTab.CONNECTED, ended_from=date(2027, 8, 1), ended_to=date(2027, 8, 1)) == [CONNECTED]
    assert numbers(sessions, QueueTab.DISCREPANCIES, ended_to=date(2027, 12, 31)) == []
    assert numbers(sessions, QueueTab.CONNECTED, changed_from=date(2026, 11, 21), changed_to=date(2026, 11, 21)) == [
        CONNECTED
    ]
    assert numbers(sessions, QueueTab.CONNECTED, changed_from=date(2026, 11, 22)) == []


def test_a_range_that_ends_before_it_starts_is_refused_naming_its_end():
    with pytest.raises(Invalid) as refused:
        QueueFilters(ended_from=date(2027, 1, 2), ended_to=date(2027, 1, 1))
    assert refused.value.field == "ended_to"


def test_an_unknown_ready_is_refused():
    with pytest.raises(Invalid, match="ready 'soon'"):
        QueueFilters(ready="soon")  # type: ignore[arg-type]


def test_last_changed_by_is_who_hid_and_filters_the_view_and_the_csv(synced, sessions):
    hide_doctor(admin(sessions), CONNECTED, EAST_OF_ENGLAND, "on leave")
    view = QueueView.of_tab(QueueTab.HIDDEN, EAST_OF_ENGLAND, filters=QueueFilters(changed_by="ann admin"))
    entries = list(queue_entries(admin(sessions), view))
    assert [(e.gmc_number, e.last_changed_by, e.programme_membership_type) for e in entries] == [
        (CONNECTED, "Ann Admin", "SUBSTANTIVE")
    ]
    assert numbers(sessions, QueueTab.HIDDEN, changed_by="Someone Else") == []
    page = queue_page(admin(sessions), QueueView.of_tab(QueueTab.DISCREPANCIES, EAST_OF_ENGLAND))
    assert [(e.programme_membership_type, e.last_changed_by) for e in page.items] == [("LAT", None), (None, None)]


def test_a_resync_that_changes_only_a_programme_refreshes_what_the_queues_sort_and_filter_by(
    synced, sessions, reval, files
):
    """A body's view rows keep copies of the doctor's programme columns: a change to them that
    leaves the decision as it was still reaches the filters, the sorts and the programme list."""
    urology = programme(EAST_OF_ENGLAND, end="2029-08-01", kind="LAT", programmeName="Urology")
    sync_the_three(reval, files, "second", not_connected=urology)

    assert programme_names(admin(sessions), EAST_OF_ENGLAND) == ["General Practice", "Urology"]
    assert numbers(sessions, QueueTab.DISCREPANCIES, programme="urology") == [NOT_CONNECTED]
    assert numbers(sessions, QueueTab.DISCREPANCIES, programme="Surgery") == []
    assert numbers(sessions, QueueTab.DISCREPANCIES, ended_from=date(2029, 1, 1)) == [NOT_CONNECTED]
    assert ready_counts(sessions, QueueFilters(programme="Urology")) == {Ready.CONNECT: 1, Ready.DISCONNECT: 0}


@pytest.mark.parametrize(
    "sort", [SortKey.PROGRAMME, SortKey.START, SortKey.END, SortKey.CHANGED, SortKey.PROGRAMME_OWNER]
)
@pytest.mark.parametrize("descending", [False, True])
def test_a_body_sorts_by_its_copies_as_the_national_view_sorts_by_the_doctors_own(synced, sessions, sort, descending):
    national = Context(sessions, sessions, Actor("Nat", Role.NATIONAL))
    body_order = [
        entry.gmc_number
        for entry in queue_page(admin(sessions), QueueView(EAST_OF_ENGLAND, sort=sort, descending=descending)).items
    ]
    every_order = [
        entry.gmc_number for entry in queue_page(national, QueueView(None, sort=sort, descending=descending)).items
    ]
    assert len(body_order) == 3
    assert body_order == [number for number in every_order if number in body_order]


def test_who_last_changed_a_doctor_outlives_a_resync_that_rewrites_their_views(synced, sessions, reval, files):
    hide_doctor(admin(sessions), CONNECTED, EAST_OF_ENGLAND, "on leave")
    renamed = programme(EAST_OF_ENGLAND, end="2027-08-01", programmeName="General Practice (renamed)")
    sync_the_three(reval, files, "second", connected=renamed)

    assert numbers(sessions, QueueTab.HIDDEN, programme="General Practice (renamed)") == [CONNECTED]
    assert numbers(sessions, QueueTab.HIDDEN, changed_by="Ann Admin") == [CONNECTED]
    by_who = queue_page(admin(sessions), QueueView(EAST_OF_ENGLAND, sort=SortKey.CHANGED_BY, descending=True))
    assert [entry.last_changed_by for entry in by_who.items] == ["Ann Admin", None, None]


def test_the_sort_by_owner_reads_each_doctors_first_owner_by_name_not_by_code(reval, files, sessions):
    """Yorkshire and the Humber has the least code of all and the last name: a doctor it shares
    with another owner sorts under the other's name. A doctor with no current programme sorts
    last either way."""
    yorkshire = "Yorkshire and the Humber"
    owned_by = {
        "2000001": [programme(WESSEX)],
        "2000002": [programme(yorkshire), programme(WESSEX, programmeName="Surgery")],
        "2000003": [programme(THAMES_VALLEY)],
        "2000004": [programme(yorkshire), programme(EAST_OF_ENGLAND, programmeName="Surgery")],
        "2000005": [programme(yorkshire)],
        "2000006": [],
    }
    sync_owned_by(reval, files, WESSEX, owned_by)
    # east of england, thames valley, wessex (by number), yorkshire; then no owner
    assert by_owner(sessions, False) == ["2000004", "2000003", "2000001", "2000002", "2000005", "2000006"]
    assert by_owner(sessions, True) == ["2000005", "2000002", "2000001", "2000003", "2000004", "2000006"]


def test_bodies_of_the_same_name_share_a_place_in_the_sort_by_owner(reval, files, sessions):
    """Two bodies whose names differ only in case sort as one: the GMC number decides between
    their doctors, in either direction, not the bodies' codes."""
    bodies = files / "bodies.csv"
    bodies.write_text("code,name,owner\nA-1,Same Name,Owner A\nB-1,same name,Owner B\nC-1,Other,Owner C\n")
    reval("designated-bodies", "load", bodies)
    owned_by = {
        "3000001": [programme("Owner B")],
        "3000002": [programme("Owner A")],
        "3000003": [programme("Owner A"), programme("Owner C", programmeName="Surgery")],
    }
    sync_owned_by(reval, files, "A-1", owned_by)
    assert by_owner(sessions, False) == ["3000003", "3000001", "3000002"]
    assert by_owner(sessions, True) == ["3000002", "3000001", "3000003"]


def sync_owned_by(reval, files, connected_to: str, owned_by: dict[str, list[dict]]) -> None:
    """Syncs these doctors, each connected to ``connected_to`` and in TIS in their programmes."""
    gmc = gmc_snapshot(files / "gmc.json", {connected_to: [gmc_doctor(number) for number in owned_by]})
    tis = tis_snapshot(files / "tis.json", [person(number, *programmes) for number, programmes in owned_by.items()])
    reval("sync", "--gmc-file", gmc, "--tis-file", tis, "--as-of", "2026-11-21")


def by_owner(sessions, descending: bool) -> list[str]:
    """Every doctor's GMC number, as a national user sees them sorted by programme owner."""
    national = Context(sessions, sessions, Actor("Nat", Role.NATIONAL))
    view = QueueView(None, sort=SortKey.PROGRAMME_OWNER, descending=descending)
    return [entry.gmc_number for entry in queue_page(national, view).items]
