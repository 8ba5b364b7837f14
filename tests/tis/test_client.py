"""The TIS client against the simulator over real HTTP: tokens, paging, retries, every fault class."""

from __future__ import annotations

import time

import pytest
import requests
import time_machine

from reval.tis.client import PersonDeleted, TisClient, TisUnavailable
from reval.tis.mapping import is_placeholder, person_record
from reval.tis.records import read_person
from reval.tis.simulator import InjectedFault, tcs_person, tcs_placement
from tests.conftest import tis_settings
from tests.factories import EAST_OF_ENGLAND, person, placement, programme


@pytest.fixture
def people(tis_service):
    for number, person_id in (("1000001", 1), ("1000002", 2), ("1000003", 3), (None, 4), ("1000005", 5)):
        tis_service.state.people[person_id] = person(number, programme(EAST_OF_ENGLAND), person_id=person_id)
    tis_service.state.people[4]["role"] = "Placeholder"
    return tis_service.state.people


def client_for(simulator, **overrides) -> tuple[TisClient, list[float]]:
    delays: list[float] = []
    return TisClient(tis_settings(simulator, **overrides), sleep=delays.append), delays


def test_a_person_maps_into_exactly_the_snapshot_record(tis_service, people):
    client, _ = client_for(tis_service)
    assert client.person(1) == {key: value for key, value in people[1].items()}
    assert read_person(client.person(1))["gmcNumber"] == "1000001"


def test_the_mapping_reads_tcs_shapes():
    original = person(
        "1000009",
        programme(
            EAST_OF_ENGLAND,
            curricula=[{"curriculumName": "GP", "curriculumStartDate": "2025-01-01", "curriculumEndDate": None}],
        ),
        placements=[placement("F1")],
        person_id=9,
    )
    assert person_record(tcs_person(original), [tcs_placement(p) for p in original["placements"]]) == original


def test_dummy_and_placeholder_roles_are_skipped():
    assert is_placeholder({"role": "Placeholder"}) and is_placeholder({"role": "DR in Training,Dummy Record"})
    assert not is_placeholder({"role": "DR in Training"}) and not is_placeholder({"role": None})


def test_paging_lists_every_real_person_across_pages(tis_service, people):
    client, _ = client_for(tis_service)
    assert list(client.listed_person_ids()) == [1, 2, 3, 5]
    pages = [call for call in tis_service.state.calls if call == "/api/people"]
    assert len(pages) == 3  # five people, two a page, pages numbered from 0


def test_people_are_fetched_concurrently_in_order_and_404_means_deleted(tis_service, people):
    client, _ = client_for(tis_service)
    fetched = list(client.people([5, 1, 77, 2]))
    assert [(person_id, person is None) for person_id, person in fetched] == [
        (5, False),
        (1, False),
        (77, True),
        (2, False),
    ]
    with pytest.raises(PersonDeleted):
        client.person(77)


def test_the_token_is_cached_until_shortly_before_it_expires(tis_service, people):
    client, _ = client_for(tis_service)
    client.person(1)
    client.person(2)
    assert tis_service.state.tokens_issued == 1
    # Ten seconds before the token expires: inside the client's leeway, so it gets a new one first.
    with time_machine.travel(time.time() + tis_service.state.token_lifetime - 10):
        client.person(3)
    assert tis_service.state.tokens_issued == 2
    assert tis_service.state.tokens_refused == 0


def test_a_token_refused_early_is_replaced_once(tis_service, people):
    client, _ = client_for(tis_service)
    client.person(1)
    tis_service.state.expire_tokens()  # revoked at TIS before its expiry
    assert client.person(2)["tisPersonId"] == 2
    assert (tis_service.state.tokens_issued, tis_service.state.tokens_refused) == (2, 1)


def test_a_token_refused_early_is_replaced_within_the_same_attempt(tis_service, people):
    client, delays = client_for(tis_service, attempts=1)
    client.person(1)
    tis_service.state.expire_tokens()
    assert client.person(2)["tisPersonId"] == 2 and delays == []
    assert (tis_service.state.tokens_issued, tis_service.state.tokens_refused) == (2, 1)


def test_wrong_client_credentials_are_reported_without_the_secret(tis_service, people):
    client, _ = client_for(tis_service, client_secret="wrong-secret")
    with pytest.raises(TisUnavailable, match="invalid_client") as refused:
        client.person(1)
    assert "wrong-secret" not in str(refused.value)


def test_calls_without_a_valid_token_get_401(tis_service, people):
    assert requests.get(f"{tis_service.url}/api/people/v2/1", timeout=5).status_code == 401
    wrong = requests.get(f"{tis_service.url}/api/people/v2/1", headers={"Authorization": "Bearer forged"}, timeout=5)
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    "fault",
    [
        InjectedFault("http-500", path="/api/people/v2/", times=2),
        InjectedFault("delay", seconds=30, path="/api/people/v2/", times=1),
    ],
    ids=["server-error", "timeout"],
)
def test_transient_failures_are_retried_with_backoff(tis_service, people, fault):
    tis_service.state.faults.append(fault)
    client, delays = client_for(tis_service, read_timeout=0.3, backoff_seconds=1.0)
    assert client.person(1)["tisPersonId"] == 1
    assert delays  # it waited before retrying


def test_429_waits_for_retry_after(tis_service, people):
    tis_service.state.faults.append(InjectedFault("http-429", retry_after=7, times=1))
    client, delays = client_for(tis_service, backoff_seconds=1.0)
    assert client.person(1)["tisPersonId"] == 1
    assert delays == [7.0]


def test_retries_are_bounded(tis_service, people):
    tis_service.state.faults.append(InjectedFault("http-500"))
    client, delays = client_for(tis_service)
    with pytest.raises(TisUnavailable, match="HTTP 500, after 3 attempts"):
        client.person(1)
    assert len(delays) == 2


def test_other_client_errors_are_not_retried(tis_service, people):
    client, delays = client_for(tis_service)
    with pytest.raises(TisUnavailable, match="HTTP 404"):
        client._get("/api/nothing-here", "people")
    assert delays == []


def test_a_page_that_fails_stops_the_listing(tis_service, people):
    tis_service.state.faults.append(InjectedFault("page-fails", page=1))
    client, _ = client_for(tis_service)
    with pytest.raises(TisUnavailable, match="page 1"):
        list(client.listed_person_ids())


def test_the_simulator_refuses_an_expired_token(tis_service, people):
    token = requests.post(
        tis_service.token_url,
        data={"grant_type": "client_credentials", "client_id": "reval-test", "client_secret": "tis-Secret-42"},
        timeout=5,
    ).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(f"{tis_service.url}/api/people/v2/1", headers=headers, timeout=5).status_code == 200
    with time_machine.travel(time.time() + token["expires_in"] + 1):
        assert requests.get(f"{tis_service.url}/api/people/v2/1", headers=headers, timeout=5).status_code == 401
