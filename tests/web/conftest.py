"""The web on a small national dataset: three offices' doctors in every queue, a doctor nobody
sees, and a signed-in client per role and body."""

from __future__ import annotations

from dataclasses import dataclass
from html import unescape

import pytest

from reval.app import create_app
from reval.extensions import database
from tests.factories import (
    AS_OF,
    EAST_OF_ENGLAND,
    NORTH_EAST,
    WESSEX,
    days,
    gmc_doctor,
    person,
    placement,
    programme,
    sync_snapshots,
)
from tests.matching import first_group

EAST_CONNECTED = [f"11000{i:02d}" for i in range(25)]  # 25: more than a page
EAST_MISMATCH = ["1200001", "1200002"]  # connected to East of England, in Wessex's programme
EAST_NOT_CONNECTED = ["1300001"]  # in East of England's programme, connected nowhere
WESSEX_CONNECTED = ["2100001", "2100002"]
NORTH_EAST_CONNECTED = ["3100001"]
UNASSIGNED = "4100001"  # an ended programme of an unknown owner, never connected: no body sees them
SURNAMES = {"1100003": "Zephaniah", "1100004": "Okafor", "1200001": "Mbeki", "1300001": "Nakamura"}


@dataclass(frozen=True)
class Dataset:
    gmc_lists: dict[str, list[dict]]
    people: list[dict]
    run_id: int | None = None  # the sync that stored it


def national_dataset() -> Dataset:
    def doctor(number: str) -> dict:
        return gmc_doctor(number, DoctorLastName=SURNAMES.get(number, "Lovelace"), DoctorFirstName="Ada")

    def trainee(number: str, owner: str, **extra) -> dict:
        return person(number, programme(owner), surname=SURNAMES.get(number, "Lovelace"), **extra)

    lists = {
        EAST_OF_ENGLAND: [doctor(n) for n in EAST_CONNECTED + EAST_MISMATCH],
        WESSEX: [doctor(n) for n in WESSEX_CONNECTED],
        NORTH_EAST: [doctor(n) for n in NORTH_EAST_CONNECTED],
    }
    people = (
        [trainee(n, EAST_OF_ENGLAND) for n in EAST_CONNECTED + EAST_NOT_CONNECTED]
        + [trainee(n, WESSEX) for n in EAST_MISMATCH + WESSEX_CONNECTED]
        + [trainee(n, NORTH_EAST) for n in NORTH_EAST_CONNECTED]
        + [
            person(
                UNASSIGNED,
                programme("Nowhere LETB", start=days(-800), end=days(-10)),
                placements=[placement(end=days(-10))],
            )
        ]
    )
    return Dataset(lists, people)


@pytest.fixture
def national(app, sessions, files):
    """The dataset synced as of AS_OF."""
    data = national_dataset()
    summary = sync_snapshots(sessions, files, data.gmc_lists, data.people, as_of=AS_OF)
    return Dataset(data.gmc_lists, data.people, summary["syncRunId"])


@pytest.fixture
def web(app, tmp_path):
    """An app with development sign-in on the test database (which ``app`` has emptied), with
    cookies over plain HTTP as the test client speaks; its settings otherwise as ``app``'s."""
    settings = {key: value for key, value in app.config.items() if key.startswith("REVAL_")}
    web_app = create_app(settings | {"REVAL_AUTH": "dev", "REVAL_SECURE_COOKIES": "0", "TESTING": True})
    yield web_app
    database(web_app).engine.dispose()


def csrf_token(html: str) -> str:
    return first_group(r'name="csrf_token" value="([^"]+)"', html)


def next_field(html: str) -> str:
    """The return address the development sign-in form carries."""
    return unescape(first_group(r'name="next" value="([^"]*)"', html))


def send_dev_sign_in(client, form_html: str, next_page: str | None = None):
    """Ann Admin of East of England sends the development sign-in form (its own ``next`` unless
    another is given, as a forged form would)."""
    return client.post(
        "/auth/dev",
        data={
            "csrf_token": csrf_token(form_html),
            "name": "Ann Admin",
            "role": "admin",
            "designated_body": EAST_OF_ENGLAND,
            "next": next_field(form_html) if next_page is None else next_page,
        },
    )


class Browser:
    """A signed-in person, through the Flask test client: real requests, real CSRF tokens."""

    def __init__(self, app, name: str, role: str, body: str):
        self.client = app.test_client()
        form = self.client.get("/auth/dev")
        response = self.client.post(
            "/auth/dev",
            data={
                "csrf_token": csrf_token(form.text),
                "name": name,
                "role": role,
                "designated_body": body,
            },
        )
        assert response.status_code == 302, response.text

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, token_from: str | None = None, **kwargs):
        """POSTs a form with the CSRF token of the page ``token_from`` (default: the queues page)."""
        page = self.client.get(token_from or "/queues/discrepancies")
        return self.client.post(path, data={"csrf_token": csrf_token(page.text), **(data or {})}, **kwargs)


@pytest.fixture
def sign_in(web):
    def signed_in(role: str = "admin", body: str = EAST_OF_ENGLAND, name: str = "Ann Admin") -> Browser:
        return Browser(web, name, role, body)

    return signed_in
